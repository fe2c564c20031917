// The smallest case of PR #28841's argument, run for real: two ranks each hold a partial sum
// (a matmul with their own weight shard), 6 columns wide; the all-reduce adds them and a slice
// keeps 4 columns. Run before and after slice-hoist, the numbers show slice(Σᵣ xᵣ) = Σᵣ slice(xᵣ).

import { importGraph } from '../../graph/formats.ts';
import { PASSES } from '../../graph/passes/pipeline.ts';
import { hostValues, bitwiseEqual } from '../../runtime/hostTensor.ts';
import { runGraph, type BackendName } from '../../runtime/index.ts';

export const TOY_FX = `def forward(self, x: "f32[2, 3]", w: "f32[6, 3]"):
    t: "f32[3, 6]" = torch.ops.aten.t.default(w)
    partial: "f32[2, 6]" = torch.ops.aten.mm.default(x, t)
    all_reduce_1: "f32[2, 6]" = torch.ops.vllm.all_reduce.default(partial, 'tp:0')
    slice_1: "f32[2, 4]" = torch.ops.aten.slice.Tensor(all_reduce_1, 1, 0, 4)
    return (slice_1, partial)
`;

export interface ToyResult {
  /** Row 0 of each rank's partial sum, all 6 columns. */
  partials: number[][];
  /** Row 0 of slice(Σ x), the graph as imported. */
  sumThenSlice: number[];
  /** Row 0 of Σ slice(x), after slice-hoist. */
  sliceThenSum: number[];
  /** Every element of both results, bit for bit. */
  bitwiseEqual: boolean;
  backend: BackendName;
  device: string;
}

const row0 = (v: ArrayLike<number>, cols: number) => Array.from(v).slice(0, cols);

export async function runToy(backend: BackendName, gpu?: GPU): Promise<ToyResult> {
  const before = importGraph(TOY_FX).graph;
  const hoisted = PASSES['slice-hoist'](before, { worldSize: 2 });
  if (hoisted.matches.length !== 1)
    throw new Error(`slice-hoist should rewrite the toy once, it rewrote ${hoisted.matches.length} sites`);
  const opts = {
    backend,
    ranks: 2,
    preset: 'tiny' as const,
    dtype: 'f32' as const,
    allreduce: 'one-shot' as const,
    workers: false,
    gpu,
  };
  const a = await runGraph(before, opts);
  const b = await runGraph(hoisted.graph, opts);
  const result = (m: Map<string, import('../../runtime/index.ts').HostTensor>) => [...m.values()][0];
  const partialOf = (m: Map<string, import('../../runtime/index.ts').HostTensor>) => [...m.values()][1];
  return {
    partials: a.outputs.map((m) => row0(hostValues(partialOf(m)), 6)),
    sumThenSlice: row0(hostValues(result(a.outputs[0])), 4),
    sliceThenSum: row0(hostValues(result(b.outputs[0])), 4),
    bitwiseEqual: a.outputs.every((m, r) => bitwiseEqual(result(m), result(b.outputs[r]))),
    backend,
    device: a.trace.device,
  };
}
