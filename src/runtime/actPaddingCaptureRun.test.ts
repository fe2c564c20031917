// act-padding on vLLM's own test model as torch.compile captured it (fixtures/capture/tp/
// act-padding.bf16.py, tests/compile/passes/test_fuse_act_padding.py: three layers of AITER's fused
// add + RMSNorm → rocm_unquantized_gemm and pad), run before and after on the CPU reference and on
// WebGPU: AITER's norm, the router GEMMs and the fused add + RMSNorm + pad all have kernels, so every
// output (the padded activation, the residual, the three router logits) is compared, nothing fed.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../graph/formats.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { compareGraphs } from './index.ts';
import { freshSeed, tinyRuns } from './testRuns.ts';

const run = tinyRuns({ ranks: 1 });
const FILE = 'act-padding.bf16.py';
const PASSES = ['noop-elimination', 'act-padding'];

describe("vLLM's act-padding test model, run", { timeout: 300_000 }, () => {
  it('three sites fused, every output bitwise the unfused graph on CPU and WebGPU', async () => {
    const text = readFileSync(new URL(`../../fixtures/capture/tp/${FILE}`, import.meta.url), 'utf8');
    const before = importGraph(text, { fileName: FILE }).graph;
    const r = runPipeline(before, PASSES, { worldSize: 1, platform: 'rocm', aiter: true });
    expect(r.stages[1]!.matches).toHaveLength(3);
    const seed = freshSeed();
    for (const backend of ['cpu', 'webgpu'] as const) {
      const rep = await compareGraphs(before, r.output, PASSES, run({ backend, seed }));
      expect(rep.outputs).toHaveLength(5);
      expect(
        rep.outputs.map((o) => [o.bitwiseEqual, o.fedFrom]),
        `seed ${seed} ${backend}: ${JSON.stringify(rep.outputs)}`,
      ).toEqual(rep.outputs.map(() => [true, []]));
      expect(rep.ok).toBe(true);
    }
  });
});
