// Run options for the runtime's tests: the tiny preset on 2 ranks, bf16, one-shot all-reduce, one
// thread; on the CPU reference, or on Dawn's GPU for WebGPU runs (opened once per test file,
// before its tests).

import { beforeAll } from 'vitest';
import { nodeGpu } from './nodeGpu.ts';
import type { RunOptions } from './index.ts';
import { TINY_RUN } from './backend.ts';

/** The tiny run on the CPU reference, with the test's own options: no device to open. */
export const tinyCpuRun = (o: Partial<RunOptions> = {}): RunOptions => ({
  ...TINY_RUN,
  backend: 'cpu',
  ...o,
});

/** A builder of run options over these defaults and the file's own; call it inside tests. */
export function tinyRuns(defaults: Partial<RunOptions> = {}): (o?: Partial<RunOptions>) => RunOptions {
  let gpu: GPU | undefined;
  beforeAll(async () => {
    gpu = await nodeGpu();
  });
  return (o = {}) => ({ backend: 'webgpu', ...TINY_RUN, gpu, ...defaults, ...o });
}

/** A seed for a run whose inputs should differ from run to run (the test prints it on failure). */
export const freshSeed = (): number => (Math.random() * 2 ** 32) >>> 0;
