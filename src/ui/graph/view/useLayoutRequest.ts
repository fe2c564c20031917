// The layout a graph view shows: requested from the layout client whenever the graph, its folds
// or the graph it was rewritten from change; on a first load, painted block by block while the
// rest is laid out.

import { useCallback, useEffect, useState } from 'react';
import type { Graph } from '../../../graph/ir.ts';
import type { GraphLayout } from '../layout.ts';
import type { LayoutResult } from '../layoutProtocol.ts';
import type { Scene } from '../scene.ts';
import { layoutClient, type PartialLayout } from '../layoutClient.ts';
import type { ViewRefs } from './viewRefs.ts';

/** A layout still running after this long paints the blocks it has so far. */
const PARTIAL_PAINT_AFTER_MS = 120;

/**
 * What the view shows: a complete layout, or (on a first load) the blocks laid out so far,
 * each already where the complete layout puts it, up to the frame's sideways shift.
 */
export interface Shown {
  /** The graph this layout is of (a relayout keeps the previous one on screen until it is in). */
  graph: Graph;
  scene: Scene;
  layout: GraphLayout;
  previous?: LayoutResult['previous'];
  ms: number;
  complete: boolean;
}

/** The graph a view's graph was rewritten from, and the mapping after-name → before-name. */
export interface RewrittenFrom {
  graph: Graph;
  mapping: Map<string, string>;
}

export interface LayoutRequest {
  graph: Graph;
  collapsed?: ReadonlySet<string>;
  /** The graph this one was rewritten from: the layout keeps its unchanged nodes in place. */
  animateFrom?: RewrittenFrom;
  /** Partial layouts are painted until they reach the view's bottom edge. */
  refs: Pick<ViewRefs, 'transform' | 'size'>;
}

export interface RequestedLayout {
  result: Shown | null;
  error: string | null;
  /** Blocks (layer groups and the ungrouped runs between them) laid out so far / in all. */
  progress: { done: number; total: number };
  /** The requested layout is complete and every box of it painted (see `markReady`). */
  ready: boolean;
  markReady(): void;
}

export function useLayoutRequest({ graph, collapsed, animateFrom, refs }: LayoutRequest): RequestedLayout {
  const [result, setResult] = useState<Shown | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [ready, setReady] = useState(false);
  const [progress, setProgress] = useState({ done: 0, total: 0 });
  const collapsedKey = collapsed ? [...collapsed].sort().join('\n') : '';
  useEffect(() => {
    let live = true;
    let frameId = 0;
    let latest: PartialLayout | null = null;
    let paintedBottom = -Infinity;
    setReady(false);
    setError(null);
    setProgress({ done: 0, total: 0 });
    // Blocks are painted as they arrive, at most once a frame, until they fill the window down
    // to its bottom edge: blocks further down would change nothing on screen and only take the
    // page's time from the layout. A rewrite's relayout is not painted in parts: the old graph
    // stays until the new one can animate from it.
    // A layout that is done within PARTIAL_PAINT_AFTER_MS is not painted in parts either: painting
    // the first blocks and then the whole would lay the SVG out twice.
    const requestedAt = performance.now();
    const onProgress = animateFrom
      ? undefined
      : (p: PartialLayout) => {
          latest = p;
          if (frameId || performance.now() - requestedAt < PARTIAL_PAINT_AFTER_MS) return;
          frameId = requestAnimationFrame(() => {
            frameId = 0;
            if (!live || !latest) return;
            const q = latest;
            setProgress({ done: q.blocksDone, total: q.blocks });
            const t = refs.transform.current;
            if (paintedBottom >= (refs.size.current.h - t.y) / t.k) return;
            const partial = q.assemble();
            paintedBottom = partial.height;
            setResult({ graph, scene: q.scene, layout: partial, ms: 0, complete: false });
          });
        };
    layoutClient
      .layout(
        {
          graph,
          collapsed: collapsedKey ? collapsedKey.split('\n') : [],
          previous: animateFrom ? { graph: animateFrom.graph, mapping: [...animateFrom.mapping] } : undefined,
        },
        onProgress,
      )
      .then(
        (r) => {
          if (!live) return;
          cancelAnimationFrame(frameId);
          frameId = 0;
          setResult({
            graph,
            scene: r.scene,
            layout: r.layout,
            previous: r.previous,
            ms: r.ms,
            complete: true,
          });
          setProgress({ done: r.blocks, total: r.blocks });
        },
        (e: unknown) => {
          if (live) setError(e instanceof Error ? e.message : String(e));
        },
      );
    return () => {
      live = false;
      cancelAnimationFrame(frameId);
    };
  }, [graph, collapsedKey, animateFrom, refs]);
  const markReady = useCallback(() => setReady(true), []);
  return { result, error, progress, ready, markReady };
}
