// Draws a laid-out scene on a canvas, for graphs too big for one SVG element per node. Level
// of detail follows the zoom: far out, nodes are coloured blocks and wires thin lines; closer,
// boxes get their titles, then names, then the edge labels. Only what is in view is drawn.

import type { GraphLayout } from './layout.ts';
import { changesByGroup, groupTitle, type SceneNode } from './scene.ts';
import type { Palette } from './palette.ts';
import { edgeBounds, traceEdge, valueLabels } from './edgePath.ts';
import type { KernelBox } from './kernelOverlay.ts';

export interface CanvasFrame {
  ctx: CanvasRenderingContext2D;
  width: number;
  height: number;
  transform: { x: number; y: number; k: number };
  layout: GraphLayout;
  byName: Map<string, SceneNode>;
  palette: Palette;
  marks?: Map<string, 'added' | 'removed' | 'moved' | 'fused'>;
  selected: string | null;
  matches: ReadonlySet<string>;
  /** Titles, names and labels at any zoom (image export). */
  fullDetail?: boolean;
  /** A node-data overlay's fills (null: no data); absent: fills by kind. */
  fills?: ReadonlyMap<string, string | null>;
  /** Inductor's launches, fitted around their nodes (kernelOverlay.ts `kernelBoxes`). */
  kernels?: readonly KernelBox[];
}

/**
 * The kernel boxes as the SVG view draws them (graph.css `.fl-kernel`): a dashed rounded box in the
 * group border's colour, its launch label at the top left; the label from the zoom group titles show at.
 */
export function drawKernelBoxes(
  ctx: CanvasRenderingContext2D,
  boxes: readonly KernelBox[],
  p: Palette,
  k: number,
  visible: (x: number, y: number, w: number, h: number) => boolean,
): void {
  const shown = boxes.filter((b) => visible(b.x, b.y, b.w, b.h));
  if (!shown.length) return;
  ctx.strokeStyle = p.groupBorder;
  ctx.lineWidth = 1.4 / Math.min(1, Math.max(k, 0.2));
  ctx.setLineDash([5, 3]);
  ctx.beginPath();
  for (const b of shown) ctx.roundRect(b.x, b.y, b.w, b.h, 6);
  ctx.stroke();
  ctx.setLineDash([]);
  if (k < LOD_TITLES * 0.5) return;
  ctx.fillStyle = p.groupText;
  ctx.font = `600 10px ${p.font}`;
  for (const b of shown) ctx.fillText(b.label, b.x + 6, b.y + 11);
}

/**
 * A box's fill: the overlay's colour for the node's value, its no-data grey, or (no overlay) the
 * kind's fill; far out, where a box is only a block, the kind's stroke.
 */
export function boxFill(
  p: Palette,
  kind: keyof Palette['kind'],
  far: boolean,
  fills: ReadonlyMap<string, string | null> | undefined,
  name: string,
): string {
  if (fills) return fills.get(name) ?? p.overlayNone;
  return far ? p.kind[kind].stroke : p.kind[kind].fill;
}

export const LOD_TITLES = 0.45;
export const LOD_DETAIL = 0.7;

export function drawCanvas(f: CanvasFrame): void {
  const { ctx, palette: p, layout } = f;
  // Level of detail reads the zoom; an export draws as if close up, whatever its scale.
  const t = f.fullDetail ? { ...f.transform, k: Math.max(f.transform.k, 1) } : f.transform;
  const scale = f.transform.k;
  ctx.save();
  ctx.fillStyle = p.bg;
  ctx.fillRect(0, 0, f.width, f.height);
  ctx.translate(t.x, t.y);
  ctx.scale(scale, scale);
  const x0 = -t.x / scale,
    y0 = -t.y / scale,
    x1 = x0 + f.width / scale,
    y1 = y0 + f.height / scale;
  const visible = (x: number, y: number, w: number, h: number) =>
    x + w >= x0 && x <= x1 && y + h >= y0 && y <= y1;

  const changes = changesByGroup(f.marks, f.byName);
  for (const g of layout.groups) {
    if (!visible(g.x, g.y, g.w, g.h)) continue;
    ctx.fillStyle = g.collapsed ? p.nodeBg : p.groupBg;
    ctx.strokeStyle = g.collapsed ? p.kind.input.stroke : p.groupBorder;
    ctx.lineWidth = 1 / Math.max(t.k, 0.2);
    ctx.beginPath();
    ctx.roundRect(g.x, g.y, g.w, g.h, 8);
    ctx.fill();
    ctx.stroke();
    if (t.k >= LOD_TITLES * 0.5) {
      ctx.fillStyle = p.groupText;
      ctx.font = `600 ${g.collapsed ? 13 : 11}px ${p.font}`;
      const label = groupTitle(g, changes.get(g.id) ?? 0);
      ctx.fillText(label, g.x + 12, g.collapsed ? g.y + g.h / 2 + 4 : g.y + 17);
    }
  }

  if (f.kernels) drawKernelBoxes(ctx, f.kernels, p, t.k, visible);

  ctx.lineWidth = t.k < 0.25 ? 1 / t.k : 1.2;
  ctx.strokeStyle = p.edge;
  const edges = new Path2D();
  const hot = new Path2D();
  const bounds = edgeBounds(layout);
  for (let i = 0; i < layout.edges.length; i++) {
    const e = layout.edges[i];
    const pts = e.points;
    if (
      !visible(
        bounds[i * 4],
        bounds[i * 4 + 1],
        bounds[i * 4 + 2] - bounds[i * 4],
        bounds[i * 4 + 3] - bounds[i * 4 + 1],
      )
    )
      continue;
    const path = f.selected && (e.from === f.selected || e.to === f.selected) ? hot : edges;
    if (t.k < 0.25) {
      path.moveTo(pts[0], pts[1]);
      for (let i = 2; i < pts.length; i += 2) path.lineTo(pts[i], pts[i + 1]);
    } else traceEdge(path, pts);
  }
  ctx.stroke(edges);
  ctx.strokeStyle = p.edgeStrong;
  ctx.lineWidth = 2 / Math.min(1, t.k);
  ctx.stroke(hot);
  if (t.k >= LOD_TITLES) {
    // Arrowheads where wires enter their targets.
    const heads = new Path2D();
    for (let i = 0; i < layout.edges.length; i++) {
      const pts = layout.edges[i].points;
      const x = pts[pts.length - 2],
        y = pts[pts.length - 1];
      if (!visible(x - 4, y - 6, 8, 6)) continue;
      heads.moveTo(x - 3.6, y - 6.4);
      heads.lineTo(x, y);
      heads.lineTo(x + 3.6, y - 6.4);
      heads.closePath();
    }
    ctx.fillStyle = p.edge;
    ctx.fill(heads);
  }

  if (t.k >= LOD_DETAIL) {
    ctx.font = `9.5px ${p.mono}`;
    ctx.fillStyle = p.edgeLabel;
    for (const l of valueLabels(layout))
      if (visible(l.x - 2, l.y - 10, 120, 12)) ctx.fillText(l.label, l.x, l.y);
  }

  // Boxes are batched by kind: one fill and one stroke per colour, not per node. An overlay's
  // fills are batched by their colour, the kind keeping the stroke and accent.
  const shown = layout.nodes.filter((n) => visible(n.x, n.y, n.w, n.h));
  const far = t.k < 0.25;
  const boxes = new Map<string, { box: Path2D; accent: Path2D }>();
  const valueBoxes = new Map<string, Path2D>();
  const refs = new Path2D();
  for (const n of shown) {
    if (n.ref) {
      refs.roundRect(n.x, n.y, n.w, n.h, n.h / 2);
      continue;
    }
    const kind = f.byName.get(n.name)?.kind ?? 'opaque';
    let b = boxes.get(kind);
    if (!b) boxes.set(kind, (b = { box: new Path2D(), accent: new Path2D() }));
    const paths = [b.box];
    if (f.fills) {
      const c = boxFill(p, kind, far, f.fills, n.name);
      let v = valueBoxes.get(c);
      if (!v) valueBoxes.set(c, (v = new Path2D()));
      paths.push(v);
    }
    for (const path of paths) {
      if (far) path.rect(n.x, n.y, n.w, n.h);
      // Values (inputs, tuple items) are pills, as in the SVG view.
      else if (kind === 'input' || f.byName.get(n.name)?.op === 'getitem')
        path.roundRect(n.x, n.y, n.w, n.h, n.h / 2);
      else path.roundRect(n.x, n.y, n.w, n.h, 5);
    }
    if (!far && kind !== 'input' && f.byName.get(n.name)?.op !== 'getitem')
      b.accent.rect(n.x, n.y + 3, 3, n.h - 6);
  }
  ctx.lineWidth = 1.2;
  for (const [colour, path] of valueBoxes) {
    ctx.fillStyle = colour;
    ctx.fill(path);
  }
  for (const [kind, b] of boxes) {
    const c = p.kind[kind as keyof Palette['kind']];
    if (!f.fills) {
      ctx.fillStyle = boxFill(p, kind as keyof Palette['kind'], far, undefined, '');
      ctx.fill(b.box);
    }
    if (!far) {
      ctx.strokeStyle = c.stroke;
      ctx.stroke(b.box);
      ctx.fillStyle = c.stroke;
      ctx.fill(b.accent);
    }
  }
  if (!far) {
    ctx.strokeStyle = p.edge;
    ctx.setLineDash([3, 2]);
    ctx.lineWidth = 1;
    ctx.stroke(refs);
    ctx.setLineDash([]);
  }
  for (const n of shown) {
    const mark = f.marks?.get(n.name);
    const ring =
      f.selected === n.name ? p.selected : f.matches.has(n.name) ? p.match : mark ? p.mark[mark] : null;
    if (!ring) continue;
    ctx.strokeStyle = ring;
    ctx.lineWidth = 3 / Math.min(1, t.k);
    if (mark === 'removed' && ring === p.mark.removed) ctx.setLineDash([5, 3]);
    ctx.beginPath();
    ctx.roundRect(n.x - 3, n.y - 3, n.w + 6, n.h + 6, 7);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  if (t.k >= LOD_TITLES) {
    for (const n of shown) {
      if (n.ref) {
        ctx.fillStyle = p.sub;
        ctx.font = `10px ${p.mono}`;
        ctx.fillText(`↗ ${n.ref}`, n.x + 8, n.y + n.h / 2 + 3.5);
        continue;
      }
      const sn = f.byName.get(n.name);
      if (!sn) continue;
      ctx.fillStyle = p.text;
      const small = sn.op === 'getitem';
      ctx.font = small ? `500 10px ${p.mono}` : `600 12px ${p.font}`;
      if (small || !sn.subtitle || sn.subtitle === sn.title)
        ctx.fillText(small ? `${sn.title} ${sn.name}` : sn.title, n.x + (small ? 8 : 12), n.y + n.h / 2 + 4);
      else {
        ctx.fillText(sn.title, n.x + 12, n.y + (t.k >= LOD_DETAIL ? 17 : n.h / 2 + 4));
        if (t.k >= LOD_DETAIL) {
          ctx.fillStyle = p.sub;
          ctx.font = `10px ${p.mono}`;
          ctx.fillText(sn.subtitle, n.x + 12, n.y + 31);
        }
      }
    }
  }
  ctx.restore();
}

/**
 * How the minimap maps the layout: always the whole graph, scaled to fit and centred, so it is an
 * overview at any zoom. The view's box is clipped to it. `minimapSize` shapes the minimap to the
 * graph (a tall strip for 24 layers, a wide box for a fragment) within its maximum size.
 */
export function minimapFrame(
  w: number,
  h: number,
  layout: GraphLayout,
): { scale: number; ox: number; oy: number } {
  const scale = Math.min(w / Math.max(1, layout.width), h / Math.max(1, layout.height));
  return { scale, ox: (w - layout.width * scale) / 2, oy: (h - layout.height * scale) / 2 };
}

/** The minimap's size in CSS pixels: the graph's aspect, at most maxW × maxH, at least 36 on a side. */
export function minimapSize(layout: GraphLayout, maxW: number, maxH: number): { w: number; h: number } {
  const scale = Math.min(maxW / Math.max(1, layout.width), maxH / Math.max(1, layout.height));
  return {
    w: Math.max(36, Math.round(layout.width * scale)),
    h: Math.max(36, Math.round(layout.height * scale)),
  };
}

/** The overview, drawn once per layout and theme, then reused every frame. */
export function drawMinimapBase(
  w: number,
  h: number,
  dpr: number,
  layout: GraphLayout,
  byName: Map<string, SceneNode>,
  palette: Palette,
  /** A node-data overlay's fills: the overview shows the values too. */
  fills?: ReadonlyMap<string, string | null>,
): HTMLCanvasElement {
  const { scale, ox, oy } = minimapFrame(w, h, layout);
  const base = document.createElement('canvas');
  base.width = Math.round(w * dpr);
  base.height = Math.round(h * dpr);
  const ctx = base.getContext('2d')!;
  ctx.setTransform(dpr * scale, 0, 0, dpr * scale, dpr * ox, dpr * oy);
  ctx.fillStyle = palette.groupBorder;
  ctx.globalAlpha = 0.35;
  for (const g of layout.groups) ctx.fillRect(g.x, g.y, g.w, g.h);
  ctx.globalAlpha = 1;
  // One path per colour: the kind's, or the overlay's (as far out on the canvas, see boxFill).
  const byColour = new Map<string, Path2D>();
  for (const n of layout.nodes) {
    if (n.ref) continue;
    const c = boxFill(palette, byName.get(n.name)?.kind ?? 'opaque', true, fills, n.name);
    let path = byColour.get(c);
    if (!path) byColour.set(c, (path = new Path2D()));
    path.rect(n.x, n.y, Math.max(n.w, 1.5 / scale), Math.max(n.h, 1.5 / scale));
  }
  for (const [c, path] of byColour) {
    ctx.fillStyle = c;
    ctx.fill(path);
  }
  return base;
}

/** The cached overview (the part around the view) and the window currently in view. */
export function drawMinimap(
  ctx: CanvasRenderingContext2D,
  w: number,
  h: number,
  layout: GraphLayout,
  base: HTMLCanvasElement,
  palette: Palette,
  view: { x0: number; y0: number; x1: number; y1: number },
): void {
  const { scale, ox, oy } = minimapFrame(w, h, layout);
  ctx.clearRect(0, 0, w, h);
  ctx.drawImage(base, 0, 0, base.width, base.height, 0, 0, w, h);
  // The view's box, clipped to the minimap: zoomed out past the graph it is the whole minimap.
  const x0 = Math.max(0.75, ox + view.x0 * scale),
    y0 = Math.max(0.75, oy + view.y0 * scale);
  const x1 = Math.min(w - 0.75, ox + view.x1 * scale),
    y1 = Math.min(h - 0.75, oy + view.y1 * scale);
  if (x1 <= x0 || y1 <= y0) return;
  ctx.strokeStyle = palette.selected;
  ctx.lineWidth = 1.5;
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
}
