// Where a graph view looks: a new graph's first view (a link's node, else the top of the graph),
// the change a rewrite made, a view shared with a partner (the other side of a diff, exchanged
// relative to an anchor node so counterparts line up), and where the view rests (to the store
// and the URL, never per frame).

import { useCallback, useEffect, useMemo, useRef } from 'react';
import { zoomIdentity, type ZoomTransform } from 'd3';
import type { Graph } from '../../../graph/ir.ts';
import type { GraphLayout, LaidNode } from '../layout.ts';
import type { SceneNode } from '../scene.ts';
import {
  ZOOM_EXTENT,
  centreOf,
  transformAt,
  type ViewCentre,
  type ViewSize,
  type ViewTransform,
} from '../viewCentre.ts';
import type { PanZoom } from './usePanZoom.ts';
import type { RewrittenFrom, Shown } from './useLayoutRequest.ts';
import type { ViewRefs } from './viewRefs.ts';
import { clearArea, type ClearArea, type ViewInsets } from './viewInsets.ts';

export interface PlacementOptions {
  result: Shown | null;
  /** The graph the view was given (the result may still be the previous one's). */
  graph: Graph;
  size: ViewSize;
  /** What the chrome covers: the graph is placed in the rest (see viewInsets.ts). */
  insets: ViewInsets;
  byName: ReadonlyMap<string, SceneNode>;
  panZoom: PanZoom;
  /** A view pushed from outside, relative to `anchor`; the view reports its own through `onViewChange`. */
  view?: ViewTransform;
  onViewChange?: (v: ViewTransform) => void;
  anchor?: string | null;
  /** Where a new graph's first view looks, once its node is laid out. */
  initialView?: ViewCentre | null;
  onViewRest?: (c: ViewCentre) => void;
  /** Nodes a rewrite just changed: the view centres on the one nearest to what it shows. */
  focus?: { names: readonly string[]; nonce: number } | null;
  /** Returns true when the parent now anchors the shared view at that node. */
  onFocus?: (name: string) => boolean | void;
  /** A rewrite's relayout keeps the view where it was (the focus moves it). */
  animateFrom?: RewrittenFrom;
}

export interface Placement {
  /** Moves the view; `notify` (default) tells a partner through `onViewChange`. */
  setTransform(t: ZoomTransform, animate: boolean, notify?: boolean): void;
  /** The whole graph in view. */
  fit(animate: boolean): void;
  /** A node in the middle of the view, at zoom `k` (default: the current one, at least 0.8). */
  centerOn(name: string, animate: boolean, k?: number): void;
  /** A user's gesture moved the view. */
  userMoved(t: ZoomTransform): void;
  /** The view rests: report its centre, from the complete layout of the graph it was given. */
  reportRest(): void;
  /** Where the view is, or is about to be once this layout is placed (what a first frame needs). */
  upcoming(layout: GraphLayout): ViewTransform;
  /** The clear area the view places nodes in (view pixels). */
  area(): ClearArea;
}

/** A new graph's first view: its top, just below the toolbar, as wide as fits (30-100 %). */
function topOfGraph(layout: GraphLayout, area: ClearArea): ZoomTransform {
  const k = Math.max(0.3, Math.min(1, (area.w - 40) / layout.width));
  return zoomIdentity.translate(area.x + (area.w - layout.width * k) / 2, area.y + 12).scale(k);
}

/**
 * The transform that puts a box's centre in the middle of the clear area at zoom k, or less where
 * the box would not fit the area at k (a narrow pane beside the minimap).
 */
function centring(n: LaidNode, area: ClearArea, want: number): ZoomTransform {
  const k = Math.max(ZOOM_EXTENT[0], Math.min(want, (area.w - 16) / n.w, (area.h - 16) / n.h));
  return zoomIdentity
    .translate(area.x + area.w / 2 - (n.x + n.w / 2) * k, area.y + area.h / 2 - (n.y + n.h / 2) * k)
    .scale(k);
}

/** The whole graph in the clear area, 16 px inside its edges (zoom at most 2). */
function fitting(layout: GraphLayout, area: ClearArea): ZoomTransform {
  const k = Math.min(
    2,
    Math.max(ZOOM_EXTENT[0], Math.min((area.w - 32) / layout.width, (area.h - 32) / layout.height)),
  );
  return zoomIdentity
    .translate(area.x + (area.w - layout.width * k) / 2, area.y + (area.h - layout.height * k) / 2)
    .scale(k);
}

/** Of the named nodes, the one nearest to the clear area's centre. */
function nearestToCentre(
  layout: GraphLayout,
  names: readonly string[],
  t: ZoomTransform,
  area: ClearArea,
): LaidNode | undefined {
  const byNode = new Map(layout.nodes.map((n) => [n.name, n]));
  const cx = (area.x + area.w / 2 - t.x) / t.k,
    cy = (area.y + area.h / 2 - t.y) / t.k;
  let best: LaidNode | undefined;
  let bestD = Infinity;
  for (const name of names) {
    const n = byNode.get(name);
    if (!n) continue;
    const d = Math.hypot(n.x + n.w / 2 - cx, n.y + n.h / 2 - cy);
    if (d < bestD) {
      best = n;
      bestD = d;
    }
  }
  return best;
}

export function useViewPlacement(refs: ViewRefs, o: PlacementOptions): Placement {
  const { result, graph, size, byName, panZoom, view, anchor, initialView, focus } = o;
  const { animateFrom } = o;
  // Read when the view is placed, not a reason to place it again: the chrome's size settles on its own.
  const insetsRef = useRef(o.insets);
  insetsRef.current = o.insets;
  const area = useCallback(() => clearArea(size, insetsRef.current), [size]);
  const areaRef = useRef(area);
  areaRef.current = area;
  const layout = result?.layout ?? null;
  const callbacks = useRef(o);
  callbacks.current = o;
  const groupOf = useCallback((n: string) => byName.get(n)?.group, [byName]);

  // The anchor's centre in graph coordinates: views are exchanged relative to it.
  const anchorAt = useMemo(() => {
    const n = anchor ? layout?.nodes.find((m) => m.name === anchor) : undefined;
    return n ? { x: n.x + n.w / 2, y: n.y + n.h / 2 } : { x: 0, y: 0 };
  }, [anchor, layout]);
  const anchorRef = useRef(anchorAt);
  anchorRef.current = anchorAt;
  const announce = useCallback((t: ViewTransform) => {
    const a = anchorRef.current;
    callbacks.current.onViewChange?.({ x: t.x + a.x * t.k, y: t.y + a.y * t.k, k: t.k });
  }, []);
  const fromShared = useCallback((v: ViewTransform) => {
    const a = anchorRef.current;
    return zoomIdentity.translate(v.x - a.x * v.k, v.y - a.y * v.k).scale(v.k);
  }, []);

  const { moveTo } = panZoom;
  const setTransform = useCallback(
    (t: ZoomTransform, animate: boolean, notify = true) => {
      if (moveTo(t, animate) && notify) announce(t);
    },
    [moveTo, announce],
  );

  // The link's centre the view was opened at, until the user moves or the view is placed otherwise:
  // while the chrome settles the clear area changes, and the centre is re-applied in the new one.
  const heldCentre = useRef<ViewCentre | null>(null);

  const fit = useCallback(
    (animate: boolean) => {
      if (!layout || !size.w) return;
      heldCentre.current = null;
      setTransform(fitting(layout, area()), animate);
    },
    [layout, size, area, setTransform],
  );

  const centerOn = useCallback(
    (name: string, animate: boolean, k?: number) => {
      const n = layout?.nodes.find((m) => m.name === name);
      if (!n || !size.w) return;
      heldCentre.current = null;
      setTransform(centring(n, area(), k ?? Math.max(refs.transform.current.k, 0.8)), animate);
    },
    [layout, size, area, setTransform, refs],
  );

  const fittedFor = useRef<Shown | null>(null);
  // The view was fitted to a partial layout and the user has not moved it since: fit again.
  const provisionalView = useRef(false);

  // First view of a new layout: the given view, else the top of the graph at a readable zoom,
  // just below the toolbar.
  useEffect(() => {
    if (!result || !layout || !size.w || !panZoom.bound() || fittedFor.current === result) return;
    const before = fittedFor.current;
    const firstForGraph = before === null || before.layout.nodes.length === 0 || provisionalView.current;
    fittedFor.current = result;
    const wanted = firstForGraph && initialView ? transformAt(layout, initialView, area(), groupOf) : null;
    heldCentre.current = wanted && initialView ? initialView : null;
    if (wanted) {
      // Re-applied as more blocks arrive, until the user moves: a wider block shifts the frame.
      provisionalView.current = !result.complete;
      setTransform(zoomIdentity.translate(wanted.x, wanted.y).scale(wanted.k), false, true);
      return;
    }
    if (view) {
      setTransform(fromShared(view), false, false);
      return;
    }
    // A rewrite's relayout keeps the view where it was: the focus (below) moves it to the change.
    if (!firstForGraph && animateFrom) return;
    if (!firstForGraph) {
      // Moved by the user while blocks were arriving: a wider block shifts the frame sideways;
      // shift the view with it so painted blocks stay where they are on screen.
      const a = before && !before.complete ? before.layout.nodes[0] : undefined;
      const b = a ? layout.nodes.find((n) => n.name === a.name) : undefined;
      if (a && b && (a.x !== b.x || a.y !== b.y)) {
        const t = refs.transform.current;
        setTransform(
          zoomIdentity.translate(t.x + (a.x - b.x) * t.k, t.y + (a.y - b.y) * t.k).scale(t.k),
          false,
          true,
        );
      }
      return;
    }
    provisionalView.current = !result.complete;
    // Announced, so a synced partner (the other side of a diff) starts from the same view.
    setTransform(topOfGraph(layout, area()), false, true);
    // panZoom.bound and refs are stable.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [result, layout, size, area, view, animateFrom, setTransform, fromShared, initialView, groupOf]);

  // The docked toolbar grew or shrank (it wraps with the pane's width, a button came): the graph
  // moves with its edge, so what was clear of the bar stays clear.
  const topInset = useRef(o.insets.top);
  useEffect(() => {
    const d = o.insets.top - topInset.current;
    topInset.current = o.insets.top;
    if (d === 0 || !panZoom.bound()) return;
    const held =
      heldCentre.current && layout ? transformAt(layout, heldCentre.current, area(), groupOf) : null;
    if (held) {
      setTransform(zoomIdentity.translate(held.x, held.y).scale(held.k), false, false);
      return;
    }
    const t = refs.transform.current;
    setTransform(zoomIdentity.translate(t.x, t.y + d).scale(t.k), false, false);
    // panZoom.bound and refs are stable.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [o.insets.top, setTransform, layout, area, groupOf]);

  // Centre on the change once this graph's own layout is in; the nearest candidate to the view's
  // centre, so applying every site keeps the user where they were looking.
  const focusedNonce = useRef<number | null>(null);
  useEffect(() => {
    if (
      !focus ||
      focusedNonce.current === focus.nonce ||
      !result?.complete ||
      result.graph !== graph ||
      !size.w ||
      !panZoom.bound()
    )
      return;
    const t = refs.transform.current;
    const best = nearestToCentre(result.layout, focus.names, t, area());
    focusedNonce.current = focus.nonce;
    if (!best) return;
    // The parent re-anchors the shared view at this node: announce relative to it already.
    if (callbacks.current.onFocus?.(best.name))
      anchorRef.current = { x: best.x + best.w / 2, y: best.y + best.h / 2 };
    heldCentre.current = null;
    setTransform(centring(best, area(), Math.max(0.6, t.k)), true);
    // panZoom.bound and refs are stable.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [focus, result, graph, size, area, setTransform]);

  // A view pushed from outside (the other side of a diff).
  useEffect(() => {
    if (!view || !panZoom.bound()) return;
    const want = fromShared(view);
    const t = refs.transform.current;
    if (Math.abs(t.x - want.x) < 0.5 && Math.abs(t.y - want.y) < 0.5 && Math.abs(t.k - want.k) < 1e-4) return;
    setTransform(want, false, false);
    // anchorAt: the same view means another transform once the anchor moves.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [view, setTransform, fromShared, anchorAt]);

  // Reports where the view rests, from the complete layout of the graph it was given.
  const shownRef = useRef({ result, graph });
  shownRef.current = { result, graph };
  const reportRest = useCallback(() => {
    const { result: r, graph: g } = shownRef.current;
    if (!r?.complete || r.graph !== g || !refs.size.current.w) return;
    const c = centreOf(r.layout, refs.transform.current, areaRef.current());
    if (c) callbacks.current.onViewRest?.(c);
  }, [refs]);

  const userMoved = useCallback(
    (t: ZoomTransform) => {
      provisionalView.current = false;
      heldCentre.current = null;
      announce(t);
    },
    [announce],
  );

  const upcoming = (l: GraphLayout) =>
    fittedFor.current === null
      ? ((initialView && transformAt(l, initialView, area(), groupOf)) ?? topOfGraph(l, area()))
      : refs.transform.current;

  return { setTransform, fit, centerOn, userMoved, reportRest, upcoming, area };
}
