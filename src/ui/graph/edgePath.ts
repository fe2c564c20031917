import type { GraphLayout } from './layout.ts';

// A layout polyline as a smooth path: each segment is a cubic whose tangents are vertical at
// both ends, so chains through dummy nodes read as one flowing wire.

export function edgePath(points: readonly number[]): string {
  let d = `M${points[0].toFixed(1)},${points[1].toFixed(1)}`;
  for (let i = 2; i + 1 < points.length; i += 2) {
    const px = points[i - 2], py = points[i - 1], qx = points[i], qy = points[i + 1];
    const my = (py + qy) / 2;
    d += `C${px.toFixed(1)},${my.toFixed(1)} ${qx.toFixed(1)},${my.toFixed(1)} ${qx.toFixed(1)},${qy.toFixed(1)}`;
  }
  return d;
}

/**
 * One label per value, not per wire: every edge leaving a node carries the same tensor, so its
 * type is written once, just under the node's output port.
 */
export function valueLabels(layout: GraphLayout): { from: string; label: string; x: number; y: number }[] {
  const seen = new Set<string>();
  const out: { from: string; label: string; x: number; y: number }[] = [];
  for (const e of layout.edges) {
    if (!e.label || seen.has(e.from) || e.points.length < 4) continue;
    seen.add(e.from);
    out.push({ from: e.from, label: e.label, x: e.points[0] + 6, y: e.points[1] + 12 });
  }
  return out;
}

/** Draws the same curve on a canvas path. */
export function traceEdge(ctx: CanvasRenderingContext2D | Path2D, points: readonly number[]): void {
  ctx.moveTo(points[0], points[1]);
  for (let i = 2; i + 1 < points.length; i += 2) {
    const px = points[i - 2], py = points[i - 1], qx = points[i], qy = points[i + 1];
    const my = (py + qy) / 2;
    ctx.bezierCurveTo(px, my, qx, my, qx, qy);
  }
}
