import { describe, expect, it } from 'vitest';
import type { LaidNode } from './layout.ts';
import { centreOf, transformAt } from './viewCentre.ts';

const node = (name: string, x: number, y: number, ref?: string): LaidNode => ({
  name,
  x,
  y,
  w: 100,
  h: 30,
  layer: 0,
  ...(ref ? { ref } : {}),
});
const layout = {
  nodes: [node('embed', 0, 0), node('all_reduce_2', 200, 400), node('stub', 210, 420, 'embed')],
  groups: [
    { id: 'layer.3', label: 'layer 3', x: 0, y: 1000, w: 300, h: 40, collapsed: true, count: 40 },
    { id: 'layer.4', label: 'layer 4', x: 0, y: 1100, w: 300, h: 400, collapsed: false, count: 40 },
  ],
};

describe('view centre', () => {
  it('names the node nearest the centre, skipping stubs, with the offset from it', () => {
    // Centre of an 800×600 view at k 1.5 lands at graph (255, 420): 5 right, 5 below all_reduce_2's centre.
    const t = { x: 400 - 255 * 1.5, y: 300 - 420 * 1.5, k: 1.5 };
    expect(centreOf(layout, t, { x: 0, y: 0, w: 800, h: 600 })).toEqual({
      node: 'all_reduce_2',
      dx: 5,
      dy: 5,
      k: 1.5,
    });
  });

  it('shows the same graph point at the centre of a window of another size and other chrome', () => {
    const c = { node: 'all_reduce_2', dx: 5, dy: -7, k: 2 };
    // The second frame is a view whose docked toolbar takes 44 px and whose minimap takes a 180 px band.
    for (const frame of [
      { x: 0, y: 0, w: 800, h: 600 },
      { x: 0, y: 44, w: 1440 - 180, h: 900 - 44 },
    ]) {
      const t = transformAt(layout, c, frame)!;
      expect((frame.x + frame.w / 2 - t.x) / t.k).toBeCloseTo(255);
      expect((frame.y + frame.h / 2 - t.y) / t.k).toBeCloseTo(408);
      expect(centreOf(layout, t, frame)).toEqual(c);
    }
  });

  it('has no transform for a node the layout lacks (another graph, or no layer to stand for it)', () => {
    expect(
      transformAt(layout, { node: 'rms_norm_9', dx: 0, dy: 0, k: 1 }, { x: 0, y: 0, w: 800, h: 600 }),
    ).toBeNull();
    expect(
      transformAt(layout, { node: 'stub', dx: 0, dy: 0, k: 1 }, { x: 0, y: 0, w: 800, h: 600 }),
    ).toBeNull();
    expect(centreOf({ nodes: [] }, { x: 0, y: 0, k: 1 }, { x: 0, y: 0, w: 800, h: 600 })).toBeNull();
  });

  it("shows the folded layer's box for a node inside it, at the link's zoom", () => {
    const groupOf = (n: string) => ({ rms_norm_9: 'layer.3', mul_40: 'layer.4' })[n];
    const c = { node: 'rms_norm_9', dx: 30, dy: 30, k: 2 };
    // The box's centre (150, 1020) at the view's centre; the offset was from the hidden node.
    expect(transformAt(layout, c, { x: 0, y: 0, w: 800, h: 600 }, groupOf)).toEqual({
      x: 100,
      y: -1740,
      k: 2,
    });
    // An open layer's node missing from the layout is not a place to show.
    expect(transformAt(layout, { ...c, node: 'mul_40' }, { x: 0, y: 0, w: 800, h: 600 }, groupOf)).toBeNull();
  });
});
