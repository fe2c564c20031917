// attn-quant runs before and after, on the CPU reference and on WebGPU: the attention → static FP8
// quant pair becomes one unified_attention_with_output with output_scale, whose kernel quantizes the
// output it would have stored (rounded to the model dtype) by the same 1/scale, clamp and e4m3
// rounding as static_scaled_fp8_quant — so every output is bitwise the unfused pair's. (vLLM's Triton
// kernel quantizes its f32 accumulator before that rounding: it may differ from its own unfused pair
// by one e4m3 step; fusionlab's fused op is specified as the pair.)

import { describe, expect, it } from 'vitest';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { attentionGraph } from '../graph/passes/attnQuantForms.ts';
import { runGraph } from './index.ts';
import { hostValues } from './hostTensor.ts';
import { expectBeforeAfter, expectFp8Values, tinyRuns } from './testRuns.ts';

const run = tinyRuns({ ranks: 1 });

describe('attention + quant, run', { timeout: 300_000 }, () => {
  // The custom quant: the native form seeds its scale as the reciprocal's operand, not as a scale
  // (nativeForms.test.ts proves that form equal to the custom op).
  it('the static quant fused into the attention is bitwise the pair on CPU and WebGPU; the output is fp8 values', async () => {
    const before = attentionGraph();
    const r = runPipeline(before, ['attn-quant'], { attentionBackend: 'TRITON_ATTN' });
    expect(r.stages[0]!.matches).toHaveLength(1);
    for (const { backend, options, report } of await expectBeforeAfter(
      before,
      r.output,
      ['attn-quant'],
      run,
    )) {
      expect(report.outputs).toHaveLength(1);
      const q = hostValues([...(await runGraph(r.output, options)).outputs[0]!.values()][0]!);
      expectFp8Values(q, backend, 4);
    }
  });

  // vLLM's swizzled 128×4 scale tiles: scaled_fp4_quant's lowering writes them (nvfp4Swizzle.test.ts),
  // so the fused attention's NVFP4 output is computed, not fed.
  it('the NVFP4 output with swizzled block scales is bitwise the pair on CPU and WebGPU, nothing fed', async () => {
    const before = attentionGraph({ quant: 'nvfp4' });
    const r = runPipeline(before, ['attn-quant'], { platform: 'sm100', kvCacheDtype: 'fp8' });
    expect(r.stages[0]!.matches).toHaveLength(1);
    for (const { report } of await expectBeforeAfter(before, r.output, ['attn-quant'], run))
      expect(report.verdict).toBe('proven');
  });
});
