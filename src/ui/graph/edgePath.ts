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

/** Where an edge's label goes: beside the middle of its first segment. */
export function edgeLabelAnchor(points: readonly number[]): [number, number] {
  const x0 = points[0], y0 = points[1], x1 = points[2], y1 = points[3];
  return [(x0 + x1) / 2 + 5, (y0 + y1) / 2 + 3];
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
