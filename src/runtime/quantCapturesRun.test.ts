// The FP8 / NVFP4 Llama captures at TP 1 (fixtures/capture, scripts/capture/capture.py) run before
// and after norm-quant and act-quant on the CPU reference and WebGPU: every output bitwise the
// unfused one. They are the app's quantized Llama samples' layers at small sizes (the tiny preset
// keeps Llama-3.1-8B's own dims, too large for a test run).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../graph/formats.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { expectBeforeAfter, tinyRuns } from './testRuns.ts';

const run = tinyRuns();

const PASSES = ['norm-quant', 'act-quant'];
const load = (file: string) =>
  importGraph(readFileSync(new URL(`../../fixtures/capture/${file}`, import.meta.url).pathname, 'utf8'), {
    fileName: file,
  }).graph;

describe('the FP8 and NVFP4 Llama captures at TP 1, run', { timeout: 300_000 }, () => {
  // File, platform, fused sites (norm-quant, act-quant; expected.json says why).
  for (const [file, gpu, sites] of [
    ['llama-fp8-dynamic-tp1.py', 'hopper', [4, 0]],
    ['llama-fp8-group128-tp1.py', 'hopper', [4, 2]],
    ['llama-nvfp4-tp1.py', 'blackwell', [0, 2]],
  ] as const) {
    it(`${file}: after the fusions every output is bitwise the unfused one`, async () => {
      const g = load(file);
      const r = runPipeline(g, PASSES, { worldSize: 1, gpu });
      expect(r.stages.map((st) => st.matches.length)).toEqual(sites);
      // Every node has a kernel, NVFP4's GEMM (cutlass_scaled_fp4_mm) included: nothing is fed.
      for (const { report } of await expectBeforeAfter(g, r.output, PASSES, run, { options: { ranks: 1 } }))
        expect(report.verdict).toBe('proven');
    });
  }
});
