// The canvas renderer's fill choice under a node-data overlay, drawn through a recording 2D
// context: each node's box is filled with its value's colour, a node without a value with the
// no-data grey, and the kind keeps the stroke.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFx } from '../../graph/fx/parse.ts';
import { generateSample } from '../../graph/samples/index.ts';
import { buildScene } from './scene.ts';
import { layoutScene } from './layout.ts';
import { boxFill, drawCanvas, type CanvasFrame } from './canvasRenderer.ts';
import { TEST_PALETTE } from './testPalette.ts';
import { nodeFills, overlayScale } from './overlay.ts';
import { kernelBoxes } from './kernelOverlay.ts';

/** A path that remembers the boxes traced into it (their top-left corners). */
class RecordingPath {
  boxes: string[] = [];
  rect(x: number, y: number) {
    this.boxes.push(`${x},${y}`);
  }
  roundRect(x: number, y: number) {
    this.boxes.push(`${x},${y}`);
  }
  moveTo() {}
  lineTo() {}
  bezierCurveTo() {}
  quadraticCurveTo() {}
  closePath() {}
}

const had = (globalThis as { Path2D?: unknown }).Path2D;
beforeAll(() => {
  (globalThis as { Path2D?: unknown }).Path2D = RecordingPath;
});
afterAll(() => {
  (globalThis as { Path2D?: unknown }).Path2D = had;
});

const palette = TEST_PALETTE;

/** The one-layer GPT-OSS sample, built and laid out. */
function sample() {
  const scene = buildScene(parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 4 })).graph);
  return { scene, layout: layoutScene(scene) };
}

/**
 * Draws the sample at zoom `k` through a 2D context that records what `calls` intercepts (each
 * method given the context's current state); every other method does nothing.
 */
function drawSample(
  { scene, layout }: ReturnType<typeof sample>,
  k: number,
  calls: Record<string, (state: Record<string, unknown>, ...args: never[]) => void>,
  extra: Partial<CanvasFrame> = {},
) {
  const ctx = new Proxy({ fillStyle: '', strokeStyle: '' } as Record<string, unknown>, {
    get(t, p) {
      if (typeof p === 'string' && p in calls) return (...args: never[]) => calls[p](t, ...args);
      if (p in t) return t[p as string];
      return () => {};
    },
    set(t, p, v) {
      t[p as string] = v;
      return true;
    },
  }) as unknown as CanvasRenderingContext2D;
  drawCanvas({
    ctx,
    width: layout.width,
    height: layout.height,
    transform: { x: 0, y: 0, k },
    layout,
    byName: new Map(scene.nodes.map((n) => [n.name, n])),
    palette,
    selected: null,
    matches: new Set(),
    ...extra,
  });
}

/** Every fill of a path: its style and the boxes in it. */
function draw(fills?: ReadonlyMap<string, string | null>, k = 1) {
  const s = sample();
  const filled: { style: string; boxes: string[] }[] = [];
  const fill = (t: Record<string, unknown>, path?: RecordingPath) => {
    if (path) filled.push({ style: String(t.fillStyle), boxes: path.boxes });
  };
  drawSample(s, k, { fill }, { fills });
  const fillOf = (name: string) => {
    const n = s.layout.nodes.find((m) => m.name === name)!;
    return filled.filter((f) => f.boxes.includes(`${n.x},${n.y}`)).map((f) => f.style);
  };
  return { scene: s.scene, fillOf };
}

describe('drawCanvas under an overlay', () => {
  it("fills each box with its value's colour, no value with the no-data grey, and never the kind's fill", () => {
    const { scene } = draw();
    const [a, b, c] = scene.nodes.filter((n) => n.kind === 'compute').map((n) => n.name);
    const values = new Map([
      [a, 1],
      [b, 9],
    ]);
    const fills = nodeFills(
      scene.nodes.map((n) => n.name),
      values,
      overlayScale(values.values()),
    );
    const { fillOf } = draw(fills);
    const compute = palette.kind.compute.fill;
    expect(fillOf(a)).toEqual([fills.get(a)]);
    expect(fillOf(b)).toEqual([fills.get(b)]);
    expect(fills.get(a)).not.toBe(fills.get(b));
    expect(fillOf(c)).toEqual([palette.overlayNone]);
    expect(fillOf(a)).not.toContain(compute);
  });

  it("fills by kind with no overlay: the kind's fill close up, its stroke far out", () => {
    const { scene, fillOf } = draw();
    const a = scene.nodes.find((n) => n.kind === 'compute')!.name;
    expect(fillOf(a)).toEqual([palette.kind.compute.fill]);
    expect(draw(undefined, 0.2).fillOf(a)).toEqual([palette.kind.compute.stroke]);
    expect(boxFill(palette, 'compute', true, new Map([[a, null]]), a)).toBe(palette.overlayNone);
  });
});

describe('kernel boxes on the canvas', () => {
  /** The dashed boxes stroked and the texts written, through a context that records them. */
  function drawKernels(k: number) {
    const s = sample();
    const { scene, layout } = s;
    const compute = layout.nodes.filter(
      (n) => scene.nodes.find((m) => m.name === n.name)?.kind === 'compute',
    );
    const launch = (index: number, kernel: string) => ({
      index,
      kernel,
      kind: 'triton' as const,
      line: 1,
      comments: { sourceNodes: [], dynamoNames: false, originalAten: [], atenMapping: new Map() },
    });
    const groups = [
      {
        launch: launch(0, 'triton_poi_fused_0'),
        nodes: [compute[0].name, compute[1].name],
        source: 'source-nodes' as const,
      },
      { launch: launch(1, 'extern_kernels.mm'), nodes: [compute[2].name], source: 'aten-mapping' as const },
    ];
    const boxes = kernelBoxes(layout.nodes, groups);
    let dash: number[] = [];
    const dashed: number[][] = [];
    const texts: string[] = [];
    drawSample(
      s,
      k,
      {
        setLineDash: (_, d: number[]) => (dash = d),
        roundRect: (_, x: number, y: number, w: number, h: number) => {
          if (dash.length) dashed.push([x, y, w, h]);
        },
        fillText: (_, text: string) => texts.push(text),
      },
      { kernels: boxes },
    );
    return { boxes, dashed, texts };
  }

  it("draws each launch's box dashed, with the SVG overlay's geometry, and its launch label", () => {
    const { boxes, dashed, texts } = drawKernels(1);
    expect(boxes).toHaveLength(2);
    for (const b of boxes) expect(dashed).toContainEqual([b.x, b.y, b.w, b.h]);
    expect(texts).toContain('#0 triton_poi_fused_0');
    expect(texts).toContain('#1 extern_kernels.mm');
  });

  it('far out keeps the boxes and drops their labels, as the group titles go', () => {
    const { boxes, dashed, texts } = drawKernels(0.1);
    for (const b of boxes) expect(dashed).toContainEqual([b.x, b.y, b.w, b.h]);
    expect(texts.filter((t) => t.startsWith('#'))).toEqual([]);
  });
});
