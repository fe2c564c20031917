// What encoding one plan step on one rank gets, and the shape of a table of step encoders
// (encoders.ts assembles the table from each kernel family's part).

import type { Plan, Step, Storage, View } from '../plan.ts';
import type { HostTensor } from '../hostTensor.ts';
import type { RankDevice } from './rankDevice.ts';

export interface StepContext {
  r: RankDevice;
  plan: Plan;
  /** The run's seed (seeded inputs and expert weights). */
  seed: number;
  /** Tensors the user gave by name; a seed step with one has nothing to encode. */
  inputs?: Map<string, HostTensor>;
  /** The storage the step writes (its `out`). */
  out: Storage;
  /** The rank's buffer of a view's storage, or of a storage id. */
  buf(v: View | string): GPUBuffer;
}

/** Encoders of the steps of kernels K, one per kernel. */
export type StepEncoders<K extends Step['kernel']> = {
  [P in K]: (s: Extract<Step, { kernel: P }>, c: StepContext) => void;
};
