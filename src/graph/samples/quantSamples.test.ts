// The quantized Llama samples (the app's FP8 / NVFP4 entries) at 2 layers: the fusions vLLM runs on
// them fire where its rules say (the same counts as the captures in fixtures/capture/expected.json).

import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import { runPipeline } from '../passes/pipeline.ts';
import { generateSample, type SampleQuant } from './index.ts';

// quant, tp, platform, passes, matches per pass (L = 2 layers).
const CASES: [SampleQuant, number, 'hopper' | 'blackwell', string[], number[]][] = [
  // TP 1: 2L norm → quant sites (the final norm feeds no quant), L silu_and_mul → quant.
  ['fp8-static', 1, 'hopper', ['norm-quant', 'act-quant'], [4, 2]],
  // No silu_and_mul pattern for a dynamic per-token quant in vLLM.
  ['fp8-dynamic', 1, 'hopper', ['norm-quant', 'act-quant'], [4, 0]],
  // TP 2: the all-reduce fusion runs first and takes every all-reduced norm with its quant (2L + 1,
  // the final norm's without one), so norm-quant finds none left.
  ['fp8-static', 2, 'hopper', ['allreduce-rmsnorm', 'norm-quant', 'act-quant'], [5, 0, 2]],
  // No norm + NVFP4 op in RMSNormQuantFusionPass; silu_and_mul_nvfp4_quant on Blackwell only.
  ['nvfp4', 1, 'blackwell', ['norm-quant', 'act-quant'], [0, 2]],
  ['nvfp4', 1, 'hopper', ['norm-quant', 'act-quant'], [0, 0]],
];

describe('the quantized Llama samples', () => {
  for (const [quant, tp, gpu, passes, matches] of CASES) {
    it(`${quant} at TP ${tp} on ${gpu}: ${passes.join(', ')} → ${matches.join(', ')}`, () => {
      const g = importGraph(generateSample('llama', { layers: 2, tp, quant })).graph;
      const r = runPipeline(g, passes, { worldSize: tp, gpu });
      expect(r.stages.map((s) => s.matches.length)).toEqual(matches);
    });
  }

  it('only the llama sample is quantized', () => {
    expect(() => generateSample('qwen3-moe', { layers: 1, quant: 'nvfp4' })).toThrow(/only the llama/);
  });
});
