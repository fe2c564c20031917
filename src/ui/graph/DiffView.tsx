// Before and after side by side. The after layout is anchored to the before layout, so the
// same pan/zoom shows the same nodes on both sides; selection crosses over through the
// rewrite's node mapping (a removed node selects what replaced it).

import { useCallback, useMemo, useState } from 'react';
import type { Graph } from '../../graph/ir.ts';
import { changeMarks, diffGraphs, type GraphDiff, type RewriteSite } from '../../graph/diff.ts';
import { GraphView, type ViewTransform } from './GraphView.tsx';
import type { ViewCentre } from './viewCentre.ts';
import type { PaneOverlay } from './overlay.ts';
import type { KernelGroup } from '../../graph/artifacts/outputCode.ts';

export interface DiffViewProps {
  before: Graph;
  after: Graph;
  matches: readonly RewriteSite[];
  selected: string | null;
  onSelect(n: string | null): void;
  /** Nodes of `after` a rewrite just changed (see GraphView's `focus`). */
  focus?: { names: readonly string[]; nonce: number } | null;
  testMode?: boolean;
  /** Folded layer groups, the same on both sides. */
  collapsed?: ReadonlySet<string>;
  onToggleGroup?: (group: string) => void;
  onSetCollapsed?: (groups: string[]) => void;
  /**
   * Where the after side's first view looks, and where it rests: the after graph is the one shown
   * alone too, and the before side follows it through the shared view.
   */
  initialView?: ViewCentre | null;
  onViewRest?: (c: ViewCentre) => void;
  /** Node-data overlays of the two sides, on one scale. */
  overlays?: readonly [PaneOverlay | undefined, PaneOverlay | undefined];
  /** Inductor's launches drawn on each side (kernelOverlay.ts). */
  kernels?: readonly [readonly KernelGroup[] | undefined, readonly KernelGroup[] | undefined];
}

export function DiffView(props: DiffViewProps): React.JSX.Element {
  const {
    before,
    after,
    matches,
    selected,
    onSelect,
    testMode,
    focus,
    collapsed,
    onToggleGroup: toggle,
    onSetCollapsed,
    initialView,
    onViewRest,
    overlays,
    kernels,
  } = props;
  const diff = useMemo(() => diffGraphs(before, after, matches), [before, after, matches]);
  const beforeMarks = useMemo(() => changeMarks(diff.before), [diff]);
  const afterMarks = useMemo(() => changeMarks(diff.after), [diff]);
  const animateFrom = useMemo(() => ({ graph: before, mapping: diff.afterToBefore }), [before, diff]);
  const [view, setView] = useState<ViewTransform | undefined>();

  const afterNames = useMemo(() => new Set(after.nodes.map((n) => n.name)), [after]);
  const beforeNames = useMemo(() => new Set(before.nodes.map((n) => n.name)), [before]);
  // The after view centres on the change; the before view lines its counterpart up with it.
  const [anchor, setAnchor] = useState<{ after: string; before: string } | null>(null);
  const onFocus = useCallback(
    (name: string) => {
      const other = counterpart(diff, name);
      setAnchor(other ? { after: name, before: other } : null);
      return other !== null;
    },
    [diff],
  );
  // Selection crosses by provenance only (diff.counterparts): an after-only node with no
  // counterpart highlights nothing before, whatever names look alike.
  const selectedBefore =
    selected === null
      ? null
      : (diff.counterparts.get(selected) ?? (beforeNames.has(selected) ? selected : null));
  const selectedAfter =
    selected === null
      ? null
      : afterNames.has(selected) && (diff.counterparts.has(selected) || !beforeNames.has(selected))
        ? selected
        : (diff.counterpartsBefore.get(selected) ?? diff.mergedInto.get(selected) ?? null);

  // What both sides share: selection, the synced view, folds.
  const both = {
    onSelect,
    view,
    onViewChange: setView,
    collapsed,
    onToggleGroup: toggle,
    onSetCollapsed,
    testMode,
  };
  return (
    <div className="fl-diff-view" data-testid="diff-view">
      <GraphView
        {...both}
        graph={before}
        label="before"
        marks={beforeMarks}
        selected={selectedBefore}
        anchor={anchor?.before ?? null}
        overlay={overlays?.[0]}
        kernels={kernels?.[0]}
      />
      <GraphView
        {...both}
        graph={after}
        label="after"
        marks={afterMarks}
        selected={selectedAfter}
        animateFrom={animateFrom}
        anchor={anchor?.after ?? null}
        focus={focus}
        onFocus={onFocus}
        initialView={initialView}
        onViewRest={onViewRest}
        overlay={overlays?.[1]}
        kernels={kernels?.[1]}
      />
    </div>
  );
}

/**
 * The before-node an after-node stands for: what it was paired with by provenance, else the node
 * the rewrite merged into it (the all-reduce a fused op replaced); never a look-alike by name.
 */
export function counterpart(diff: GraphDiff, after: string): string | null {
  const paired = diff.counterparts.get(after);
  if (paired) return paired;
  for (const [b, a] of diff.mergedInto) if (a === after) return b;
  return null;
}
