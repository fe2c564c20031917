// Where a graph view looks, in a form a link can carry: the node nearest the view's centre, the
// centre's offset from that node's centre in graph units, and the zoom. A node rather than a raw
// pixel translate (or a bare graph-space point): the receiver's window has another size, and a
// folded layer or a newer layout moves coordinates but keeps the node; the name also lets the
// before | after panes line up by provenance as they do when synced.

import type { GraphLayout, LaidNode } from './layout.ts';

export interface ViewCentre {
  node: string;
  dx: number;
  dy: number;
  k: number;
}

/** The zoom range of every graph view (d3-zoom's scaleExtent); a link's zoom must lie in it. */
export const ZOOM_EXTENT = [0.01, 4] as const;
/** An offset from the nearest node larger than this is not a view of the graph. */
export const MAX_CENTRE_OFFSET = 1e7;
/** How long a view must rest after a pan or zoom before it is reported (the URL follows then). */
export const VIEW_REST_MS = 250;

/** A view's pan/zoom: the screen position of the graph's origin, and the scale. */
export interface ViewTransform {
  x: number;
  y: number;
  k: number;
}
/** A view's size on screen, in CSS pixels. */
export interface ViewSize {
  w: number;
  h: number;
}
/**
 * The part of a view a centre is measured in, in view pixels from its top left corner: the area
 * its chrome (toolbar, minimap, legend) leaves clear. Sender and receiver measure in it, so a
 * link opened in a window whose chrome takes other room still shows the node at the centre of
 * what is visible.
 */
export interface ViewFrame extends ViewSize {
  x: number;
  y: number;
}

// Rounded so a link stays short and a restored view, reported again, writes the same URL
// (`+ 0` turns -0 into 0, which JSON would write as 0 anyway).
const round = (v: number, perUnit: number) => Math.round(v * perUnit) / perUnit + 0;

/** The view's centre as a node and an offset; null when the layout has no node to hold on to. */
export function centreOf(
  layout: Pick<GraphLayout, 'nodes'>,
  t: ViewTransform,
  frame: ViewFrame,
): ViewCentre | null {
  const cx = (frame.x + frame.w / 2 - t.x) / t.k,
    cy = (frame.y + frame.h / 2 - t.y) / t.k;
  let best: LaidNode | undefined;
  let bestD = Infinity;
  for (const n of layout.nodes) {
    if (n.ref) continue; // a stub stands for a node drawn elsewhere
    const d = Math.hypot(n.x + n.w / 2 - cx, n.y + n.h / 2 - cy);
    if (d < bestD) {
      best = n;
      bestD = d;
    }
  }
  if (!best) return null;
  return {
    node: best.name,
    dx: round(cx - (best.x + best.w / 2), 10),
    dy: round(cy - (best.y + best.h / 2), 10),
    k: round(t.k, 1e4),
  };
}

/**
 * The transform that shows `c` at the centre of the frame. A node folded into its layer's
 * box (the sender had the layer open) shows that box at the centre instead. Null when neither is laid out.
 */
export function transformAt(
  layout: Pick<GraphLayout, 'nodes' | 'groups'>,
  c: ViewCentre,
  frame: ViewFrame,
  groupOf?: (node: string) => string | undefined,
): ViewTransform | null {
  const n = layout.nodes.find((m) => m.name === c.node && !m.ref);
  const group = n ? undefined : groupOf?.(c.node);
  const box = n ?? layout.groups.find((g) => g.id === group && g.collapsed);
  if (!box) return null;
  const cx = box.x + box.w / 2 + (n ? c.dx : 0),
    cy = box.y + box.h / 2 + (n ? c.dy : 0);
  return { x: frame.x + frame.w / 2 - cx * c.k, y: frame.y + frame.h / 2 - cy * c.k, k: c.k };
}
