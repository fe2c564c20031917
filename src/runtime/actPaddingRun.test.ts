// act-padding runs before and after, on the CPU reference and on WebGPU: GPT-OSS's post-attention
// fused_add_rms_norm → pad (ROCm, x_pad_to_multiple 256: 2880 → 3072) becomes AITER's
// rocm_aiter_triton_add_rmsnorm_pad, which lowers to the same fused_add_rms_norm and pad kernels
// (the norm stored in the model dtype, then zero columns): every output bitwise the unfused graph's.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { generateSample } from '../graph/samples/index.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { expectBeforeAfter, tinyRuns } from './testRuns.ts';

const run = tinyRuns({ ranks: 1 });

describe('add + RMSNorm + pad, run', { timeout: 300_000 }, () => {
  it('the GPT-OSS ROCm layer fused is bitwise the unfused one on CPU and WebGPU', async () => {
    const before = parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 1, rocmPadMultiple: 256 })).graph;
    const r = runPipeline(before, ['act-padding'], { platform: 'rocm', aiter: true });
    expect(r.stages[0]!.matches).toHaveLength(1);
    await expectBeforeAfter(before, r.output, ['act-padding'], run);
  });
});
