import type { GraphLayout } from './layout.ts';

// A layout polyline as a smooth path: each segment is a cubic whose tangents are vertical at
// both ends, so chains through dummy nodes read as one flowing wire.

export function edgePath(points: readonly number[]): string {
  let d = '';
  traceEdge(
    {
      moveTo: (x, y) => {
        d = `M${x.toFixed(1)},${y.toFixed(1)}`;
      },
      bezierCurveTo: (ax, ay, bx, by, x, y) => {
        d += `C${ax.toFixed(1)},${ay.toFixed(1)} ${bx.toFixed(1)},${by.toFixed(1)} ${x.toFixed(1)},${y.toFixed(1)}`;
      },
    },
    points,
  );
  return d;
}

/**
 * One label per value, not per wire: every edge leaving a node carries the same tensor, so its
 * type is written once, just under the node's output port.
 */
const labelCache = new WeakMap<GraphLayout, ValueLabel[]>();

export interface ValueLabel {
  from: string;
  label: string;
  x: number;
  y: number;
}

export function valueLabels(layout: GraphLayout): ValueLabel[] {
  const cached = labelCache.get(layout);
  if (cached) return cached;
  const seen = new Set<string>();
  const out: ValueLabel[] = [];
  for (const e of layout.edges) {
    if (!e.label || seen.has(e.from) || e.points.length < 4) continue;
    seen.add(e.from);
    out.push({ from: e.from, label: e.label, x: e.points[0] + 6, y: e.points[1] + 12 });
  }
  labelCache.set(layout, out);
  return out;
}

/** Draws the curve on a canvas path (or anything that takes the same two calls, as `edgePath` does). */
export function traceEdge(
  ctx: Pick<CanvasRenderingContext2D, 'moveTo' | 'bezierCurveTo'>,
  points: readonly number[],
): void {
  ctx.moveTo(points[0], points[1]);
  for (let i = 2; i + 1 < points.length; i += 2) {
    const px = points[i - 2],
      py = points[i - 1],
      qx = points[i],
      qy = points[i + 1];
    const my = (py + qy) / 2;
    ctx.bezierCurveTo(px, my, qx, my, qx, qy);
  }
}

const boundsCache = new WeakMap<GraphLayout, Float64Array>();

/** Each edge's bounding box (x0, y0, x1, y1 per edge), for culling what is out of view. */
export function edgeBounds(layout: GraphLayout): Float64Array {
  let b = boundsCache.get(layout);
  if (b) return b;
  b = new Float64Array(layout.edges.length * 4);
  layout.edges.forEach((e, i) => {
    let x0 = Infinity,
      y0 = Infinity,
      x1 = -Infinity,
      y1 = -Infinity;
    for (let k = 0; k < e.points.length; k += 2) {
      x0 = Math.min(x0, e.points[k]);
      x1 = Math.max(x1, e.points[k]);
      y0 = Math.min(y0, e.points[k + 1]);
      y1 = Math.max(y1, e.points[k + 1]);
    }
    b![i * 4] = x0;
    b![i * 4 + 1] = y0;
    b![i * 4 + 2] = x1;
    b![i * 4 + 3] = y1;
  });
  boundsCache.set(layout, b);
  return b;
}
