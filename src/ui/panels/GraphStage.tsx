// The graph area: before and after side by side (the rewrite's diff, pan/zoom and selection
// synced), or the shown stage alone. Both come from the graph views in src/ui/graph.

import { useMemo } from 'react';
import { changeMarks, diffGraphs } from '../../graph/diff.ts';
import { DiffView } from '../graph/DiffView.tsx';
import { GraphView } from '../graph/GraphView.tsx';
import { useStore } from '../store/index.ts';

export function GraphStage() {
  const stages = useStore((s) => s.stages);
  const scrub = useStore((s) => s.scrub);
  const layout = useStore((s) => s.layout);
  const selected = useStore((s) => s.selected);
  const select = useStore((s) => s.select);
  const testMode = useStore((s) => s.testMode);
  const shownIndex = scrub ?? stages.length - 1;
  const before = stages[0]?.graph;
  const after = stages[shownIndex]?.graph;
  // Every match from the imported graph up to the shown stage: the diff spans all of them.
  const matches = useMemo(() => stages.slice(1, shownIndex + 1).flatMap((st) => st.matches), [stages, shownIndex]);
  const singleMarks = useMemo(
    () => (before && after && shownIndex > 0 ? changeMarks(diffGraphs(before, after, matches).after) : undefined),
    [before, after, matches, shownIndex],
  );

  if (!before || !after) return <div className="graph-stage empty">Load a graph to begin.</div>;
  const onSelect = (name: string | null) => {
    // A name only the imported graph has was removed by the rewrite: inspect it there.
    const inAfter = name !== null && after.nodes.some((n) => n.name === name);
    select(name, inAfter ? 'after' : 'before');
  };
  if (layout === 'split' && shownIndex > 0) {
    return (
      <div className="graph-stage split">
        <DiffView before={before} after={after} matches={matches} selected={selected} onSelect={onSelect} testMode={testMode} />
      </div>
    );
  }
  return (
    <div className="graph-stage single">
      <GraphView
        graph={after}
        label={shownIndex === 0 ? 'imported' : `stage ${shownIndex}`}
        marks={singleMarks}
        selected={selected}
        onSelect={onSelect}
        testMode={testMode}
      />
    </div>
  );
}
