// RMSNorm + dynamic FP8 quant as one kernel (KERNELS.rms_norm_dynamic_quant /
// fused_add_rms_norm_dynamic_quant: the bf16 word-row norm with the quant in its store,
// rmsNormRows.ts): on the CPU reference and WebGPU, bitwise the norm → fp8_quant_rows pair it
// decomposes into (KERNEL_DECOMPOSITIONS) on the same backend — per token and per group of 64 and
// 128 (scales row- and column-major), with and without the residual, rows the word-row kernel takes
// (256, 384 columns) and rows it does not (36: not a multiple of 8, 40 as f32), T = 1 and 9, with
// the device's subgroups (SwiftShader's 4 lanes: a butterfly for groups of 32 and 8 columns, the
// scales of a thread's two items shared by a shuffle at 2048 columns, partials per subgroup for a
// row) and without (workgroup-memory trees); and inputs whose values the kernel's fast quant leaves
// to the division (quotients under 2^-6, zeros, a NaN row) at 4096 columns as well.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { planGraph, type RunOptions } from '../runtime/index.ts';
import { cpuBackend } from '../runtime/cpuBackend.ts';
import { executePlan, webgpuBackend } from '../runtime/webgpuBackend.ts';
import { nodeGpu } from '../runtime/nodeGpu.ts';
import { openRanks } from '../runtime/webgpu/rankDevice.ts';
import { decomposed } from '../runtime/plan.ts';
import { hostValues, toHostTensor } from '../runtime/hostTensor.ts';
import { f8e4m3fnBits, f8e4m3fnValue } from '../graph/fp8.ts';
import { freshSeed, tinyRuns } from '../runtime/testRuns.ts';
import type { Backend } from '../runtime/backend.ts';

const run = tinyRuns({ ranks: 1 });

interface Case {
  cols: number;
  /** Columns per scale; null: per token. */
  group: number | null;
  transposed: boolean;
  residual: boolean;
}

/** rms_norm_dynamic_per_token_quant or rms_norm_per_block_quant on [T, cols]. */
function normQuantGraph(dt: 'bf16' | 'f32', { cols, group, transposed, residual }: Case) {
  const G = group === null ? 1 : cols / group;
  const common = `result = empty, input = arg1_1, weight = arg2_1, scale = arg3_1, epsilon = 1e-06, scale_ub = None, residual = ${residual ? 'arg4_1' : 'None'}`;
  const call =
    group === null
      ? `torch.ops._C.rms_norm_dynamic_per_token_quant.default, ${common}`
      : `torch.ops._C.rms_norm_per_block_quant.default, ${common}, group_size = ${group}, is_scale_transposed = ${transposed ? 'True' : 'False'}`;
  return parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      `    def forward(self, arg0_1: "Sym(s72)", arg1_1: "${dt}[s72, ${cols}]", arg2_1: "${dt}[${cols}]", arg3_1: "f32[s72, ${G}]", arg4_1: "${dt}[s72, ${cols}]"):`,
      `        empty: "${dt}[s72, ${cols}]" = torch.ops.aten.empty_like.default(arg1_1)`,
      `        auto_functionalized = torch.ops.higher_order.auto_functionalized(${call});  empty = None`,
      `        getitem: "${dt}[s72, ${cols}]" = auto_functionalized[1]`,
      `        getitem_1: "f32[s72, ${G}]" = auto_functionalized[2]`,
      ...(residual
        ? [
            `        getitem_2: "${dt}[s72, ${cols}]" = auto_functionalized[3];  auto_functionalized = None`,
            '        return (getitem, getitem_1, getitem_2)',
          ]
        : ['        return (getitem, getitem_1)']),
    ].join('\n'),
  ).graph;
}

const values = async (b: Backend, plan: ReturnType<typeof planGraph>, o: RunOptions) =>
  [...(await b.run(plan, o)).outputs[0]!.values()].map((v) => [...hostValues(v)]);

const CASES: Case[] = [
  { cols: 256, group: null, transposed: false, residual: false },
  { cols: 256, group: null, transposed: false, residual: true },
  { cols: 384, group: 128, transposed: false, residual: false },
  { cols: 384, group: 128, transposed: true, residual: true },
  { cols: 256, group: 64, transposed: false, residual: true },
  { cols: 256, group: 64, transposed: true, residual: false },
  { cols: 256, group: 32, transposed: true, residual: false },
  { cols: 64, group: 8, transposed: false, residual: true },
  { cols: 2048, group: 32, transposed: false, residual: true },
  { cols: 36, group: null, transposed: false, residual: true },
  { cols: 40, group: 8, transposed: true, residual: false },
];

describe('norm + dynamic FP8 quant in one kernel', { timeout: 600_000 }, () => {
  // WebGPU with its subgroup reductions turned off (a fresh device each run).
  const noSubgroups = {
    name: 'webgpu without subgroups',
    run: async (plan: ReturnType<typeof planGraph>, o: RunOptions) => {
      const ranks = await openRanks(await nodeGpu(), 1, { f16: false });
      for (const r of ranks) r.subgroupSize = 0;
      try {
        return await executePlan(plan, { ...o, backend: 'webgpu' }, ranks, () => {
          throw new Error('no collectives here');
        });
      } finally {
        for (const r of ranks) r.destroy();
      }
    },
  } as unknown as Backend;

  for (const dt of ['bf16', 'f32'] as const)
    it(`${dt}: one step, bitwise its norm → fp8_quant_rows steps on the CPU reference and WebGPU`, async () => {
      const seed = freshSeed();
      for (const c of CASES)
        for (const tokens of [1, 9]) {
          const opts: RunOptions = run({ dtype: dt, tokens, seed });
          const plan = planGraph(normQuantGraph(dt, c), opts);
          const kernels = plan.steps.filter((s) => s.kernel !== 'seed').map((s) => s.kernel);
          expect(kernels).toEqual([
            c.residual ? 'fused_add_rms_norm_dynamic_quant' : 'rms_norm_dynamic_quant',
          ]);
          const pair = decomposed(plan);
          expect(pair.steps.map((s) => s.kernel)).toContain(c.residual ? 'fused_add_rms_norm' : 'rms_norm');
          for (const backend of [cpuBackend, webgpuBackend, noSubgroups]) {
            const what = `${backend.name} ${dt} ${JSON.stringify(c)} T ${tokens} seed ${seed}`;
            const got = await values(backend, plan, opts);
            expect(got, what).toEqual(await values(backend, pair, opts));
            // Not vacuous: fp8 values, many of them, each row reaching ±448; one positive scale per group.
            expect(got[0]!.every((v) => f8e4m3fnValue(f8e4m3fnBits(v)) === v)).toBe(true);
            expect(new Set(got[0]).size, what).toBeGreaterThan(8);
            expect(Math.max(...got[0]!.slice(0, c.cols).map(Math.abs))).toBe(448);
            expect(got[1]!.length).toBe(tokens * (c.group === null ? 1 : c.cols / c.group));
            expect(got[1]!.every((s) => s > 0)).toBe(true);
          }
        }
    });

  // The values the kernel's fast quant leaves to quant's division, after the row's stores: quotients
  // under 2^-6 (a row, or every other group, with one outlier), zeros, a NaN row (a NaN scale: every
  // value). At 4096 columns a lane holds three words, the last item two thirds full.
  it('bf16: quotients under 2^-6, zeros and NaN, 4096 columns: bitwise the pair on the CPU reference and WebGPU', async () => {
    const seed = freshSeed();
    let x = seed || 1;
    const draw = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 31 - 1;
    };
    const tokens = 4;
    for (const c of [
      { cols: 4096, group: null, transposed: false, residual: false },
      { cols: 4096, group: 128, transposed: true, residual: true },
      { cols: 384, group: 128, transposed: false, residual: false },
      { cols: 256, group: 64, transposed: false, residual: true },
    ] satisfies Case[]) {
      const g = c.group ?? c.cols;
      const xs = Array.from({ length: tokens * c.cols }, (_, i) => {
        const [t, j] = [Math.floor(i / c.cols), i % c.cols];
        if (t === 1 && j % 7 === 0) return 0;
        if (t === 2 && j === 5) return NaN;
        // One outlier in row 0 (per token) or in every other group of row 0 and 3.
        if ((t === 0 || t === 3) && j % g === 3 && (c.group === null || Math.floor(j / g) % 2 === 0))
          return 1e5;
        return draw();
      });
      const inputs = new Map([
        ['arg1_1', toHostTensor('bf16', [tokens, c.cols], xs)],
        [
          'arg2_1',
          toHostTensor(
            'bf16',
            [c.cols],
            Array.from({ length: c.cols }, () => 1 + draw() / 4),
          ),
        ],
        // The residual is 0 where x is (row 1): zeros in z.
        [
          'arg4_1',
          toHostTensor(
            'bf16',
            [tokens, c.cols],
            xs.map((v) => (v === 0 ? 0 : draw())),
          ),
        ],
      ]);
      const opts: RunOptions = run({ dtype: 'bf16', tokens, seed, inputs });
      const plan = planGraph(normQuantGraph('bf16', c), opts);
      const pair = decomposed(plan);
      for (const backend of [cpuBackend, webgpuBackend]) {
        const what = `${backend.name} ${JSON.stringify(c)} seed ${seed}`;
        const got = await values(backend, plan, opts);
        expect(got, what).toEqual(await values(backend, pair, opts));
        // Not vacuous: e4m3 subnormals (only the division gives them), zeros, the NaN row.
        expect(
          got[0]!.some((v) => v !== 0 && Math.abs(v) < 2 ** -6),
          `${what}: e4m3 subnormals`,
        ).toBe(true);
        expect(got[0]!.slice(c.cols, 2 * c.cols).filter((v) => v === 0).length, what).toBeGreaterThan(
          c.cols / 7,
        );
        expect(got[0]!.slice(2 * c.cols, 3 * c.cols).every(Number.isNaN), `${what}: the NaN row`).toBe(true);
      }
    }
  });
});
