// The graph area: before and after side by side (the rewrite's diff, pan/zoom and selection
// synced), or the shown stage alone. Both come from the graph views in src/ui/graph.

import { useEffect, useMemo, useRef, useState, type RefObject } from 'react';
import { changeMarks, diffGraphs } from '../../graph/diff.ts';
import { DiffView } from '../graph/DiffView.tsx';
import { GraphView } from '../graph/GraphView.tsx';
import { viewOf } from '../graph/viewRegistry.ts';
import { useStore } from '../store/index.ts';
import { changedNames } from '../store/passesSlice.ts';
import { usePaneOverlays } from './ColourBy.tsx';
import { usePaneKernels } from './KernelsPanel.tsx';

export function GraphStage() {
  const stages = useStore((s) => s.stages);
  const scrub = useStore((s) => s.scrub);
  const layout = useStore((s) => s.layout);
  const selected = useStore((s) => s.selected);
  const select = useStore((s) => s.select);
  const testMode = useStore((s) => s.testMode);
  const focus = useStore((s) => s.focus);
  const collapsed = useStore((s) => s.collapsed);
  const toggleGroup = useStore((s) => s.toggleGroup);
  const setCollapsed = useStore((s) => s.setCollapsed);
  // Read, not subscribed: it changes at every rest of a view, and only a view opening now uses it.
  const viewCentre = useStore.getState().viewCentre;
  const setViewCentre = useStore((s) => s.setViewCentre);
  const stageRef = useRef<HTMLDivElement>(null);
  const shownIndex = scrub ?? stages.length - 1;

  useCentreOnReveal(stageRef);
  const before = stages[0]?.graph;
  const after = stages[shownIndex]?.graph;
  // Every match from the imported graph up to the shown stage: the diff spans all of them.
  const matches = useMemo(
    () => stages.slice(1, shownIndex + 1).flatMap((st) => st.matches),
    [stages, shownIndex],
  );
  // Before | after diffs the two itself; the marks and the animation below are the single view's
  // (each a diff of a 300-layer graph: not computed when nothing shows them).
  const single = !(layout === 'split' && shownIndex > 0);
  const splitOverlays = usePaneOverlays(single ? undefined : before, single ? undefined : after);
  const [singleOverlay] = usePaneOverlays(single ? after : undefined);
  const kernels = usePaneKernels(single ? undefined : before, after);
  const singleMarks = useMemo(
    () =>
      single && before && after && shownIndex > 0
        ? changeMarks(diffGraphs(before, after, matches).after)
        : undefined,
    [single, before, after, matches, shownIndex],
  );
  // Alone, the view animates each step from the stage before it, so scrubbing replays the rewrite.
  const previous = shownIndex > 0 ? stages[shownIndex - 1] : undefined;
  const current = stages[shownIndex];
  const animateFrom = useMemo(
    () =>
      single && previous && current
        ? {
            graph: previous.graph,
            mapping: diffGraphs(previous.graph, current.graph, current.matches).afterToBefore,
          }
        : undefined,
    [single, previous, current],
  );

  if (!before || !after) return <div className="graph-stage empty">Load a graph to begin.</div>;
  const walker = <ChangeWalker key={`${before.name}:${shownIndex}`} />;
  const onSelect = (name: string | null) => {
    // A name only the imported graph has was removed by the rewrite: inspect it there.
    const inAfter = name !== null && after.nodes.some((n) => n.name === name);
    select(name, inAfter ? 'after' : 'before');
  };
  // What the views share, side by side or alone.
  const views = {
    selected,
    onSelect,
    testMode,
    focus,
    collapsed,
    onToggleGroup: toggleGroup,
    onSetCollapsed: setCollapsed,
    initialView: viewCentre,
    onViewRest: setViewCentre,
  };
  if (!single) {
    return (
      <div className="graph-stage split" ref={stageRef}>
        <DiffView {...views} {...{ before, after, matches, kernels }} overlays={splitOverlays} />
        {walker}
      </div>
    );
  }
  return (
    <div className="graph-stage single" ref={stageRef}>
      <GraphView
        graph={after}
        label={shownIndex === 0 ? 'imported' : `stage ${shownIndex}`}
        marks={singleMarks}
        animateFrom={animateFrom}
        overlay={singleOverlay}
        kernels={kernels[1]}
        {...views}
      />
      {walker}
    </div>
  );
}

/**
 * Centres the views under `stageRef` on a node selected from outside them, once a view has it laid
 * out (a tour step may have just loaded the graph; its layout arrives from the worker later).
 */
function useCentreOnReveal(stageRef: RefObject<HTMLDivElement | null>): void {
  const reveal = useStore((s) => s.reveal);
  useEffect(() => {
    if (!reveal) return;
    let raf = 0;
    const deadline = performance.now() + 5000;
    const tryCenter = () => {
      const roots = [...(stageRef.current?.querySelectorAll('[data-testid="graph-view"]') ?? [])].reverse();
      const handle = roots.map((r) => viewOf(r)).find((h) => h?.nodeCenter(reveal.name));
      if (handle) handle.centerOn(reveal.name);
      else if (performance.now() < deadline) raf = requestAnimationFrame(tryCenter);
    };
    tryCenter();
    return () => cancelAnimationFrame(raf);
  }, [reveal, stageRef]);
}

/**
 * ◂ previous change / next change ▸: walks the sites every step up to the shown stage rewrote,
 * in graph order, centring the views on each and selecting it.
 */
function ChangeWalker() {
  const stages = useStore((s) => s.stages);
  const scrub = useStore((s) => s.scrub);
  const shownIndex = scrub ?? stages.length - 1;
  const sites = useMemo(() => {
    const g = stages[shownIndex]?.graph;
    if (!g || shownIndex === 0) return [];
    const heads = new Set(changedNames(stages, 0, shownIndex));
    return g.nodes.map((n) => n.name).filter((n) => heads.has(n));
  }, [stages, shownIndex]);
  const [at, setAt] = useState(-1);
  const select = useStore((s) => s.select);
  const setFocus = useStore((s) => s.setFocus);
  if (sites.length === 0) return null;
  const go = (delta: number) => {
    const i = at < 0 ? (delta > 0 ? 0 : sites.length - 1) : (at + delta + sites.length) % sites.length;
    setAt(i);
    select(sites[i], 'after');
    setFocus([sites[i]]);
  };
  return (
    <div className="change-walker" role="group" aria-label="Changes">
      <button type="button" onClick={() => go(-1)}>
        ◂ previous change
      </button>
      <span className="muted" data-testid="change-position">
        {at < 0 ? `${sites.length} change${sites.length > 1 ? 's' : ''}` : `${at + 1} / ${sites.length}`}
      </span>
      <button type="button" onClick={() => go(1)}>
        next change ▸
      </button>
    </div>
  );
}
