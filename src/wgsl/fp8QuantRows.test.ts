// fp8_quant_rows, bitwise: the one-dispatch dynamic FP8 quant (src/wgsl/fp8QuantRows.ts) and the
// CPU backend's kernel against the unfused steps it rounds as (KERNEL_DECOMPOSITIONS, run on the
// CPU reference: abs, reduce_rows' max, the scale's maps, div, the clamp, the cast) — per token
// and per group, rows narrower and wider than the workgroup, odd and not a multiple of 4, rows of
// zeros and rows under the 1/(448·512) scale floor, bf16 and f32.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { planGraph, type RunOptions } from '../runtime/index.ts';
import { cpuBackend } from '../runtime/cpuBackend.ts';
import { webgpuBackend } from '../runtime/webgpuBackend.ts';
import { decomposed } from '../runtime/plan.ts';
import { hostValues, toHostTensor } from '../runtime/hostTensor.ts';
import { roundTo } from '../runtime/weights.ts';
import { freshSeed, tinyRuns } from '../runtime/testRuns.ts';

const run = tinyRuns({ ranks: 1 });
const T = 7;

/** A graph quantizing one [T, cols] input: per token, or per group of `group` columns. */
function quantGraph(dt: 'bf16' | 'f32', cols: number, group: number | null) {
  const call =
    group === null
      ? `torch.ops._C.dynamic_per_token_scaled_fp8_quant.default, result = empty, input = arg1_1, scale = arg2_1, scale_ub = None`
      : `torch.ops._C.per_token_group_fp8_quant.default, input = arg1_1, output_q = empty, output_s = arg2_1, group_size = ${group}, eps = 1e-10, fp8_min = -448.0, fp8_max = 448.0, scale_ue8m0 = False`;
  const scales = group === null ? 1 : cols / group;
  return parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      `    def forward(self, arg0_1: "Sym(s72)", arg1_1: "${dt}[s72, ${cols}]", arg2_1: "f32[s72, ${scales}]"):`,
      `        empty: "${dt}[s72, ${cols}]" = torch.ops.aten.empty_like.default(arg1_1)`,
      `        auto_functionalized = torch.ops.higher_order.auto_functionalized(${call});  empty = arg1_1 = arg2_1 = None`,
      `        getitem: "${dt}[s72, ${cols}]" = auto_functionalized[1]`,
      `        getitem_1: "f32[s72, ${scales}]" = auto_functionalized[2];  auto_functionalized = None`,
      '        return (getitem, getitem_1)',
    ].join('\n'),
  ).graph;
}

/** Inputs whose rows span magnitudes: large (past 448 before the scale), ordinary, tiny, zero. */
function inputs(dt: 'bf16' | 'f32', cols: number, seed: number) {
  let s = seed || 1;
  const values = Float64Array.from({ length: T * cols }, (_, i) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const row = Math.floor(i / cols);
    const mag = [40, 1, 2 ** -14, 0, 3, 2 ** -20, 0.5][row]!;
    return roundTo(dt, (s / 2 ** 32 - 0.5) * 2 * mag);
  });
  return new Map([['arg1_1', toHostTensor(dt, [T, cols], values)]]);
}

const SHAPES: [cols: number, group: number | null][] = [
  [5, null],
  [40, null],
  [1001, null],
  [2050, null],
  [384, 128],
  [192, 64],
  [96, 3],
];

describe('fp8_quant_rows', { timeout: 300_000 }, () => {
  for (const dt of ['bf16', 'f32'] as const)
    it(`${dt}: one step, bitwise its unfused steps on the CPU reference and WebGPU`, async () => {
      const seed = freshSeed();
      for (const [cols, group] of SHAPES) {
        const opts: RunOptions = run({ dtype: dt, tokens: T, inputs: inputs(dt, cols, seed) });
        const plan = planGraph(quantGraph(dt, cols, group), opts);
        const kernels = plan.steps.filter((s) => s.kernel !== 'seed').map((s) => s.kernel);
        expect(kernels).toEqual(['fp8_quant_rows']);
        const values = async (r: Promise<{ outputs: Map<string, unknown>[] }>) =>
          [...(await r).outputs[0]!.values()].map((v) => [...hostValues(v as never)]);
        const want = await values(cpuBackend.run(decomposed(plan), opts));
        expect(decomposed(plan).steps.length).toBeGreaterThan(plan.steps.length);
        const what = `${dt} [${T}, ${cols}] group ${group} seed ${seed}`;
        expect(await values(cpuBackend.run(plan, opts)), `cpu ${what}`).toEqual(want);
        expect(await values(webgpuBackend.run(plan, opts)), `webgpu ${what}`).toEqual(want);
        // Not vacuous: the first row reaches ±448, the zero row's scale is the floor or eps / 448.
        expect(Math.max(...want[0]!.map(Math.abs))).toBe(448);
        expect(new Set(want[0]).size).toBeGreaterThan(Math.min(cols, 8));
      }
    });
});
