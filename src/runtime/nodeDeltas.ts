// Per-node |after − before| on the same inputs, for the graph view's |Δ| overlay. The backends
// keep only a graph's outputs (a run frees every other buffer after its last reader), so the
// values of every node are recomputed on the CPU reference with each graph returning all of
// them, under the run's own settings and seed: the same inputs the comparison ran on.

import { ref, type Graph } from '../graph/ir.ts';
import type { RunOptions, RunProgress } from './backend.ts';
import { hostValues, type HostTensor } from './hostTensor.ts';
import { runGraph } from './index.ts';

/** The graph with every node's value among its outputs, so a run keeps them all. */
export function returningEveryValue(g: Graph): Graph {
  return { ...g, outputs: g.nodes.map((n) => ref(n.name)) };
}

/** max |a − b| over every element; NaN on one side only counts as an infinite difference. */
export function maxAbsDifference(a: HostTensor, b: HostTensor): number {
  const x = hostValues(a),
    y = hostValues(b);
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    if (d > worst) worst = d;
    else if (Number.isNaN(d) && !(Number.isNaN(x[i]) && Number.isNaN(y[i]))) worst = Infinity;
  }
  return worst;
}

/**
 * For every after-node with a before-counterpart (`afterToBefore`, the diff's provenance mapping)
 * whose value has the same shape on both sides: the largest |after − before| over its elements
 * and over the ranks. Nodes left out have no comparable value (a fused node with no counterpart,
 * a tuple, a value whose shape the rewrite changed).
 */
export async function nodeDeltas(
  before: Graph,
  after: Graph,
  afterToBefore: ReadonlyMap<string, string>,
  opts: Omit<RunOptions, 'backend' | 'workers' | 'gpu' | 'onProgress'>,
  /** 0..1 over both runs, as their steps complete. */
  onFraction?: (f: number) => void,
): Promise<Map<string, number>> {
  const run = (side: number) => ({
    ...opts,
    backend: 'cpu' as const,
    workers: false,
    onProgress: onFraction
      ? (p: RunProgress) => {
          if (p.phase === 'run' && p.total) onFraction((side + p.done / p.total) / 2);
        }
      : undefined,
  });
  const b = await runGraph(returningEveryValue(before), run(0));
  const a = await runGraph(returningEveryValue(after), run(1));
  const deltas = new Map<string, number>();
  for (const [an, bn] of afterToBefore) {
    let worst = -1;
    for (let r = 0; r < a.outputs.length; r++) {
      const x = a.outputs[r].get(an),
        y = b.outputs[r].get(bn);
      if (!x || !y || x.shape.join() !== y.shape.join()) {
        worst = -1;
        break;
      }
      worst = Math.max(worst, maxAbsDifference(x, y));
    }
    if (worst >= 0) deltas.set(an, worst);
  }
  return deltas;
}
