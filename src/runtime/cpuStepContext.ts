// What running one plan step on one rank of the CPU reference gets, and the shape of a table of
// step runners (cpuBackend.ts assembles the table from each kernel family's part).

import type { Plan, Step, Storage, View } from './plan.ts';
import type { HostTensor } from './hostTensor.ts';
import { readView, rounded, type HostArray } from './cpuKernels.ts';

export interface CpuStepContext {
  plan: Plan;
  rank: number;
  /** The run's seed (seeded inputs and expert weights). */
  seed: number;
  /** Tensors the user gave by name; a seed step with one stores it. */
  inputs?: Map<string, HostTensor>;
  /** The rank's memory: each live storage's values, already rounded to its dtype. */
  mem: Map<string, HostArray>;
  /** The storage the step writes (its `out`). */
  out: Storage;
  /** A view's values in f64, dense, broadcast to `shape` when given. */
  read(v: View, shape?: number[]): Float64Array;
  /** Stores `values` in storage `id`, rounded to its dtype. */
  store(id: string, values: Float64Array | number[]): void;
}

export type CpuSteps<K extends Step['kernel']> = {
  [P in K]: (s: Extract<Step, { kernel: P }>, c: CpuStepContext) => void;
};

/** The context of step `s` on the rank whose memory is `mem`. */
export function cpuStepContext(
  s: Step,
  mem: Map<string, HostArray>,
  plan: Plan,
  rank: number,
  seed: number,
  inputs: Map<string, HostTensor> | undefined,
): CpuStepContext {
  return {
    plan,
    rank,
    seed,
    inputs,
    mem,
    out: plan.storages.get(s.out)!,
    read: (v, shape) => readView(v, mem.get(v.storage)!, shape),
    store: (id, values) => mem.set(id, rounded(plan.storages.get(id)!.dtype, values)),
  };
}
