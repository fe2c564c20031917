// attn-quant's NVFP4 variant runs before and after (AttnNvfp4QuantPattern,
// vllm/compilation/passes/fusion/attn_quant_fusion.py): the attention → scaled_fp4_quant pair becomes
// one unified_attention_with_output writing the packed e2m1 output and its e4m3 block scales
// (output_scale the global scale, output_block_scale the quant's buffer). The fused attention
// quantizes what it would have stored through the same lowering as _C.scaled_fp4_quant
// (lower/attention.ts), so both outputs are bitwise the pair's on CPU and WebGPU. The block scales
// follow that lowering's layout: linear runs; a swizzled buffer is fed on both sides, and said so
// (attnQuantRun.test.ts).

import { describe, expect, it } from 'vitest';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { attentionGraph } from '../graph/passes/attnQuantForms.ts';
import { compareGraphs, runGraph } from './index.ts';
import { hostValues } from './hostTensor.ts';
import { f8e4m3fnBits, f8e4m3fnValue } from '../graph/fp8.ts';
import { freshSeed, tinyRuns } from './testRuns.ts';

const run = tinyRuns({ ranks: 1 });
// FLASHINFER fuses NVFP4 on sm100 with an FP8 KV cache (its fused_output_quant_supported).
const SM100 = { platform: 'sm100', kvCacheDtype: 'fp8' } as const;

describe('attention + NVFP4 quant, run', { timeout: 300_000 }, () => {
  it('linear block scales: the fused attention is bitwise the pair on CPU and WebGPU, nothing fed', async () => {
    const before = attentionGraph({ quant: 'nvfp4', blockScales: 'linear' });
    const r = runPipeline(before, ['attn-quant'], SM100);
    expect(r.stages[0]!.matches).toHaveLength(1);
    const seed = freshSeed();
    for (const backend of ['cpu', 'webgpu'] as const) {
      const rep = await compareGraphs(before, r.output, ['attn-quant'], run({ backend, seed }));
      expect(
        rep.outputs.map((o) => [o.bitwiseEqual, o.fedFrom]),
        `seed ${seed} ${backend}: ${JSON.stringify(rep.outputs)}`,
      ).toEqual([
        [true, []],
        [true, []],
      ]);
      expect(rep.ok).toBe(true);
      // Packed bytes (two e2m1 codes) and e4m3 block scales, not the attention's values.
      const [packed, scales] = [
        ...(await runGraph(r.output, run({ backend, seed }))).outputs[0]!.values(),
      ].map((t) => hostValues(t!));
      expect(
        [...packed!].every((v) => Number.isInteger(v) && v >= 0 && v < 256),
        backend,
      ).toBe(true);
      expect(new Set(packed).size).toBeGreaterThan(16);
      expect(
        [...scales!].every((v) => f8e4m3fnValue(f8e4m3fnBits(v)) === v && v > 0),
        backend,
      ).toBe(true);
    }
  });
});
