// GEMM: the addmm kernel, [M, K] · [N, K]ᵀ (a Linear layer), through the executor's step encoder.

import { encodeStep } from '../../src/runtime/webgpu/encoders.ts';
import type { Plan, Step } from '../../src/runtime/plan.ts';
import { bufferBytes } from '../../src/wgsl/dtype.ts';
import { fill, type KernelBench } from './context.ts';

export async function gemmSuite(ctx: KernelBench): Promise<void> {
  const { dev, dtype, bp } = ctx;
  for (const [M, N, K] of ctx.quick
    ? [[37, 29, 83]]
    : [
        [64, 2880, 2880],
        [2048, 2880, 2880],
        [4096, 5120, 2880],
      ]) {
    // The step reads its operands by storage id: seeded here, bound by encodeStep.
    fill(ctx, 'a', M * K);
    fill(ctx, 'b', N * K);
    dev.alloc('c', bufferBytes(dtype, M * N));
    const view = (storage: string, shape: number[], strides: number[]) => ({
      storage,
      dtype,
      offset: 0,
      shape,
      strides,
    });
    const step = {
      kernel: 'gemm',
      node: 'gemm',
      op: 'aten.mm.default',
      a: view('a', [M, K], [K, 1]),
      b: view('b', [K, N], [1, K]),
      bias: null,
      alpha: 1,
      beta: 0,
      out: 'c',
    } as Step;
    const plan = {
      storages: new Map([['c', { id: 'c', dtype, shape: [M, N], numel: M * N }]]),
    } as unknown as Plan;
    const t = await ctx.timeBoth(ctx.iters, () => encodeStep(step, dev, plan, 0));
    ctx.add({
      suite: 'gemm',
      T: M,
      us: t.us,
      b2b_us: t.b2b,
      bytes: (M * K + N * K + M * N) * bp,
      flops: 2 * M * N * K,
      note: `${M}×${N}×${K}`,
    });
    dev.endRun();
  }
}
