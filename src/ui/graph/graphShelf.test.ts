import { describe, expect, it } from 'vitest';
import { GraphShelf, SHELF_GRAPHS } from './graphShelf.ts';
import type { Graph } from '../../graph/ir.ts';

const graph = (i: number): Graph => ({
  name: `g${i}`,
  form: 'fragment',
  inputs: [],
  nodes: [],
  outputs: [],
  submodules: {},
});

describe('GraphShelf', () => {
  it('sends a graph once, then by key, and again once the worker dropped it', () => {
    const page = new GraphShelf(),
      worker = new GraphShelf();
    const graphs = Array.from({ length: SHELF_GRAPHS + 3 }, (_, i) => graph(i));
    let sent = 0;
    // Seeded walk over the graphs, favouring a few (as stages are revisited).
    let seed = 7;
    for (let step = 0; step < 500; step++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const i = seed % 10 < 7 ? seed % 3 : seed % graphs.length;
      const ref = page.refer(i, graphs[i]);
      if (ref.graph) sent++;
      // Whatever the page sends, the worker resolves to the very graph the page meant.
      expect(worker.take(ref)).toBe(graphs[i]);
    }
    // Far fewer crossings than requests, but more than the distinct graphs (evictions happened).
    expect(sent).toBeGreaterThan(graphs.length);
    expect(sent).toBeLessThan(250);
  });

  it('the worker names a key it no longer holds', () => {
    const worker = new GraphShelf();
    expect(() => worker.take({ key: 42 })).toThrow(/graph #42 is no longer held/);
  });
});
