// qk-norm-rope run before and after, on the CPU reference and on WebGPU: the Qwen3 capture
// (fixtures/capture/qwen3-qknorm-tp1.py: two layers, head_dim 64, neox, bf16) and the same graph
// with GPT-J rotation and in f16. (vLLM's QKNormRoPETestModel captures split a 3072-wide qkv input
// with literal sizes, which the tiny run preset cannot shrink.) The
// fused op runs as one qk_norm_rope kernel rounding where the pair it replaces rounds
// (lower/attention.ts), so every output — q and k after the rotary, v through the new split — is
// bitwise the unfused graph's where the norm is the custom rms_norm, and nothing is fed: proven.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../graph/formats.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { expectBeforeAfter, tinyRuns } from './testRuns.ts';

const run = tinyRuns({ ranks: 1 });
const FILE = new URL('../../fixtures/capture/qwen3-qknorm-tp1.py', import.meta.url).pathname;
const PASSES = ['noop-elimination', 'qk-norm-rope'];

describe('the QK-norm + RoPE fusion, run', { timeout: 600_000 }, () => {
  const qwen3 = readFileSync(FILE, 'utf8');
  const gptj = qwen3.replaceAll('is_neox = True', 'is_neox = False');
  it.each([
    ['neox, bf16', qwen3],
    ['GPT-J, bf16', gptj],
    ['GPT-J, f16', gptj.replaceAll('bf16[', 'f16[').replaceAll('torch.bfloat16', 'torch.float16')],
  ])('Qwen3, %s: after ≡ before bitwise on CPU and WebGPU, nothing fed', async (_, text) => {
    const before = importGraph(text, { fileName: 'qwen3-qknorm-tp1.py' }).graph;
    const r = runPipeline(before, PASSES, { worldSize: 1 });
    expect(r.stages[1]!.matches).toHaveLength(2);
    await expectBeforeAfter(before, r.output, PASSES, run);
  });
});
