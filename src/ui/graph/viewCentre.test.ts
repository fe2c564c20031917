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
};

describe('view centre', () => {
  it('names the node nearest the centre, skipping stubs, with the offset from it', () => {
    // Centre of an 800×600 view at k 1.5 lands at graph (255, 420): 5 right, 5 below all_reduce_2's centre.
    const t = { x: 400 - 255 * 1.5, y: 300 - 420 * 1.5, k: 1.5 };
    expect(centreOf(layout, t, { w: 800, h: 600 })).toEqual({ node: 'all_reduce_2', dx: 5, dy: 5, k: 1.5 });
  });

  it('shows the same graph point at the centre of a window of another size', () => {
    const c = { node: 'all_reduce_2', dx: 5, dy: -7, k: 2 };
    for (const size of [
      { w: 800, h: 600 },
      { w: 1440, h: 900 },
    ]) {
      const t = transformAt(layout, c, size)!;
      expect((size.w / 2 - t.x) / t.k).toBeCloseTo(255);
      expect((size.h / 2 - t.y) / t.k).toBeCloseTo(408);
      expect(centreOf(layout, t, size)).toEqual(c);
    }
  });

  it('has no transform for a node the layout lacks (folded away, or another graph)', () => {
    expect(transformAt(layout, { node: 'rms_norm_9', dx: 0, dy: 0, k: 1 }, { w: 800, h: 600 })).toBeNull();
    expect(transformAt(layout, { node: 'stub', dx: 0, dy: 0, k: 1 }, { w: 800, h: 600 })).toBeNull();
    expect(centreOf({ nodes: [] }, { x: 0, y: 0, k: 1 }, { w: 800, h: 600 })).toBeNull();
  });
});
