import { describe, expect, it } from 'vitest';
import { exportExtent } from './exportImage.ts';
import type { GraphLayout } from './layout.ts';

describe('exportExtent', () => {
  it('widens the picture for a value label that runs past the right-most node', () => {
    // One node at the right edge; its output's type is written right of the edge leaving it.
    const label = 'bf16[s72, 2880, 128, 64]';
    const layout: GraphLayout = {
      nodes: [{ name: 'a', x: 100, y: 0, w: 100, h: 40 } as GraphLayout['nodes'][number]],
      edges: [{ from: 'a', to: 'b', points: [190, 40, 190, 100], label }],
      groups: [],
      width: 200,
      height: 140,
    };
    const { width, height } = exportExtent(layout);
    // The label starts 6 px right of the edge; each 9.5 px monospace glyph is at most 6 px wide.
    expect(width).toBeGreaterThanOrEqual(190 + 6 + label.length * 6);
    expect(height).toBe(140);
    // Nothing to widen for: the layout's own size.
    expect(exportExtent({ ...layout, edges: [] }).width).toBe(200);
  });
});
