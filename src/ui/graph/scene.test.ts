// A folded layer names the changes folded into it, so folding never hides what a rewrite did.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../../graph/fx/parse.ts';
import { generateSample } from '../../graph/samples/index.ts';
import { buildScene, changesByGroup, groupTitle } from './scene.ts';

describe('a folded layer', () => {
  it('says how many changed nodes it holds; an open one and one without changes do not', () => {
    const scene = buildScene(parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 4 })).graph);
    const byName = new Map(scene.nodes.map((n) => [n.name, n]));
    const inLayer = scene.nodes.filter((n) => n.group !== undefined);
    const group = inLayer[0]!.group!;
    const marked = inLayer.filter((n) => n.group === group).slice(0, 2);
    const outside = scene.nodes.find((n) => n.group === undefined)!;
    const marks = new Map([
      ...marked.map((n) => [n.name, 'fused'] as const),
      [outside.name, 'added'] as const,
    ]);
    const changes = changesByGroup(marks, byName);
    expect(changes.get(group)).toBe(2);
    expect([...changes.values()].reduce((a, b) => a + b, 0)).toBe(2);
    const g = { label: 'layer 0', count: 41, collapsed: true };
    expect(groupTitle(g, 2)).toBe('▸ layer 0 · 41 nodes · 2 changes inside');
    expect(groupTitle(g, 1)).toBe('▸ layer 0 · 41 nodes · 1 change inside');
    expect(groupTitle(g, 0)).toBe('▸ layer 0 · 41 nodes');
    expect(groupTitle({ ...g, collapsed: false }, 2)).toBe('▾ layer 0');
  });
});
