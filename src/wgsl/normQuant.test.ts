// The static norm + FP8 quant as one norm kernel (KERNELS.rms_norm / fused_add_rms_norm with a
// scale, src/wgsl/normQuant.ts): on the CPU reference and WebGPU, bitwise the norm → fp8_quant
// steps it decomposes into (KERNEL_DECOMPOSITIONS) on the same backend — bf16 rows the packed
// word-row kernel takes (256 columns), rows it does not (40, and 37: not a multiple of 4), f32.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { planGraph, type RunOptions } from '../runtime/index.ts';
import { cpuBackend } from '../runtime/cpuBackend.ts';
import { webgpuBackend } from '../runtime/webgpuBackend.ts';
import { decomposed } from '../runtime/plan.ts';
import { hostValues } from '../runtime/hostTensor.ts';
import { f8e4m3fnBits, f8e4m3fnValue } from '../graph/fp8.ts';
import { freshSeed, tinyRuns } from '../runtime/testRuns.ts';
import type { Backend } from '../runtime/backend.ts';

const run = tinyRuns({ ranks: 1 });

/** rms_norm_static_fp8_quant, or with a residual fused_add_rms_norm_static_fp8_quant, on [T, cols]. */
function normQuantGraph(dt: 'bf16' | 'f32', cols: number, residual: boolean) {
  const call = residual
    ? `torch.ops._C.fused_add_rms_norm_static_fp8_quant.default, result = empty, input = arg1_1, residual = arg4_1, weight = arg2_1, scale = arg3_1, epsilon = 1e-06`
    : `torch.ops._C.rms_norm_static_fp8_quant.default, result = empty, input = arg1_1, weight = arg2_1, scale = arg3_1, epsilon = 1e-06`;
  return parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      `    def forward(self, arg0_1: "Sym(s72)", arg1_1: "${dt}[s72, ${cols}]", arg2_1: "${dt}[${cols}]", arg3_1: "f32[]", arg4_1: "${dt}[s72, ${cols}]"):`,
      `        empty: "${dt}[s72, ${cols}]" = torch.ops.aten.empty_like.default(arg1_1)`,
      `        auto_functionalized = torch.ops.higher_order.auto_functionalized(${call});  empty = None`,
      `        getitem: "${dt}[s72, ${cols}]" = auto_functionalized[1]`,
      ...(residual
        ? [
            `        getitem_1: "${dt}[s72, ${cols}]" = auto_functionalized[2];  auto_functionalized = None`,
            '        return (getitem, getitem_1)',
          ]
        : ['        return (getitem,)']),
    ].join('\n'),
  ).graph;
}

const values = async (b: Backend, plan: ReturnType<typeof planGraph>, o: RunOptions) =>
  [...(await b.run(plan, o)).outputs[0]!.values()].map((v) => [...hostValues(v)]);

describe('norm + static FP8 quant in one norm kernel', { timeout: 300_000 }, () => {
  for (const dt of ['bf16', 'f32'] as const)
    it(`${dt}: one norm step, bitwise its norm → fp8_quant steps on the CPU reference and WebGPU`, async () => {
      const seed = freshSeed();
      for (const cols of [256, 40, 37])
        for (const residual of [false, true]) {
          const opts: RunOptions = run({ dtype: dt, tokens: 9, seed });
          const plan = planGraph(normQuantGraph(dt, cols, residual), opts);
          const kernels = plan.steps.filter((s) => s.kernel !== 'seed').map((s) => s.kernel);
          expect(kernels).toEqual([residual ? 'fused_add_rms_norm' : 'rms_norm']);
          const pair = decomposed(plan);
          expect(pair.steps.map((s) => s.kernel).slice(-1)).toEqual(['fp8_quant']);
          for (const backend of [cpuBackend, webgpuBackend]) {
            const what = `${backend.name} ${dt} cols ${cols} residual ${residual} seed ${seed}`;
            const got = await values(backend, plan, opts);
            expect(got, what).toEqual(await values(backend, pair, opts));
            // Not vacuous: fp8 values, many of them.
            expect(got[0]!.every((v) => f8e4m3fnValue(f8e4m3fnBits(v)) === v)).toBe(true);
            expect(new Set(got[0]).size).toBeGreaterThan(8);
          }
        }
    });
});
