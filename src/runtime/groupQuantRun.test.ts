// The per-token-group FP8 quant (vLLM's per_token_group_fp8_quant, groups of 128 / 64) and the fused
// rms_norm_per_block_quant that RMSNormQuantFusionPass makes of a norm and that quant, run on the CPU
// reference and on WebGPU. The quant is checked against a reference written here from vLLM's CUDA
// kernel (csrc/quantization/w8a8/fp8/per_token_group_quant.cu: absmax starts at eps, y_s = absmax /
// fp8_max, q = fminf(fmaxf(x / y_s, fp8_min), fp8_max), the cast), bitwise; the rewrite before ≡ after.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { expectBeforeAfter, freshSeed, outputValues, tinyRuns } from './testRuns.ts';

const run = tinyRuns();

const DEVICE = "device = device(type='cuda', index=0), pin_memory = False";
const empty = (name: string, type: string, dims: string, dtype: string) =>
  `        ${name}: "${type}" = torch.ops.aten.empty.memory_format(${dims}, dtype = torch.${dtype}, ${DEVICE})`;
const groupQuant = (n: string, input: string, H: number, group: number, transposed: boolean) => {
  const G = H / group;
  // A transposed (column-major) scale is empty([G, T]).permute(1, 0), as fp8_utils.py makes it.
  const scale = transposed
    ? [
        empty(`empty_st${n}`, `f32[${G}, s72]`, `[${G}, arg0_1]`, 'float32'),
        `        empty_s${n}: "f32[s72, ${G}]" = torch.ops.aten.permute.default(empty_st${n}, [1, 0])`,
      ]
    : [empty(`empty_s${n}`, `f32[s72, ${G}]`, `[arg0_1, ${G}]`, 'float32')];
  return [
    empty(`empty_q${n}`, `f8e4m3fn[s72, ${H}]`, `[arg0_1, ${H}]`, 'float8_e4m3fn'),
    ...scale,
    `        af_q${n} = torch.ops.higher_order.auto_functionalized(torch.ops._C.per_token_group_fp8_quant.default, input = ${input}, output_q = empty_q${n}, output_s = empty_s${n}, group_size = ${group}, eps = 1e-10, fp8_min = -448.0, fp8_max = 448.0, scale_ue8m0 = False, dummy_is_scale_transposed = ${transposed ? 'True' : 'False'}, dummy_is_tma_aligned = False)`,
    `        q${n}: "f8e4m3fn[s72, ${H}]" = af_q${n}[1]`,
    `        s${n}: "f32[s72, ${G}]" = af_q${n}[2];  af_q${n} = None`,
  ];
};

// --- an independent reference: f32 arithmetic through Math.fround, e4m3fn by search ---------------

const f = Math.fround;
/** Every finite non-negative e4m3fn value, ascending. */
const E4M3: number[] = (() => {
  const v: number[] = [];
  for (let e = 0; e < 16; e++)
    for (let m = 0; m < 8; m++) {
      if (e === 15 && m === 7) continue;
      v.push(e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7));
    }
  return v.sort((a, b) => a - b);
})();
/** The nearest e4m3fn value to |x| ≤ 448, ties to the even code (E4M3's index is the code). */
function nearestE4m3(x: number): number {
  const a = Math.abs(x);
  let i = 0;
  while (i + 1 < E4M3.length && E4M3[i + 1]! <= a) i++;
  let r = i;
  if (i + 1 < E4M3.length) {
    const lo = a - E4M3[i]!,
      hi = E4M3[i + 1]! - a;
    if (hi < lo || (hi === lo && i % 2 === 1)) r = i + 1;
  }
  return x < 0 ? -E4M3[r]! : E4M3[r]!;
}
function referenceGroupQuant(x: ArrayLike<number>, H: number, group: number): { q: number[]; s: number[] } {
  const q: number[] = [],
    s: number[] = [];
  for (let g = 0; g < x.length / group; g++) {
    let absmax = f(1e-10);
    for (let i = 0; i < group; i++) absmax = Math.max(absmax, Math.abs(x[g * group + i]!));
    const ys = f(absmax / 448);
    s.push(ys);
    for (let i = 0; i < group; i++)
      q.push(nearestE4m3(Math.min(Math.max(f(x[g * group + i]! / ys), -448), 448)));
  }
  expect(s.length).toBe((x.length / H) * (H / group));
  return { q, s };
}

const QUANTS = parseFx(
  [
    'class GraphModule(torch.nn.Module):',
    '    def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 256]", arg2_1: "bf16[s72, 128]"):',
    '        x: "bf16[s72, 256]" = torch.ops.aten.mul.Tensor(arg1_1, 40.0)',
    ...groupQuant('1', 'x', 256, 128, false),
    ...groupQuant('2', 'arg2_1', 128, 64, true),
    '        return (q1, s1, x, q2, s2, arg2_1)',
  ].join('\n'),
).graph;

describe('per_token_group_fp8_quant, run', { timeout: 300_000 }, () => {
  it('groups of 128 and 64 (row- and column-major scales) are bitwise the reference on the CPU and WebGPU', async () => {
    const seed = freshSeed();
    for (const backend of ['cpu', 'webgpu'] as const) {
      const [q1, s1, x, q2, s2, x2] = await outputValues(QUANTS, run({ backend, seed }));
      for (const [q, s, input, H, group] of [
        [q1!, s1!, x!, 256, 128],
        [q2!, s2!, x2!, 128, 64],
      ] as const) {
        const ref = referenceGroupQuant(input, H, group);
        expect([...s], `${backend} seed ${seed} scales, group ${group}`).toEqual(ref.s);
        expect([...q], `${backend} seed ${seed} values, group ${group}`).toEqual(ref.q);
        // Inputs scaled by 40 reach past 448 before the scale: each group's largest maps to ±448.
        expect(Math.max(...[...q].map(Math.abs))).toBe(448);
        expect(new Set(q).size).toBeGreaterThan(16);
      }
    }
  });
});

const NORMS = parseFx(
  [
    'class GraphModule(torch.nn.Module):',
    '    def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 256]", arg2_1: "bf16[256]", arg4_1: "bf16[256, 256]", arg5_1: "bf16[256]"):',
    empty('empty', 'bf16[s72, 256]', '[arg0_1, 256]', 'bfloat16'),
    '        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty, input = arg1_1, weight = arg2_1, epsilon = 1e-06);  empty = arg2_1 = None',
    '        getitem_1: "bf16[s72, 256]" = auto_functionalized[1];  auto_functionalized = None',
    ...groupQuant('1', 'getitem_1', 256, 128, false),
    '        mm: "bf16[s72, 256]" = torch.ops.aten.mm.default(arg1_1, arg4_1)',
    '        auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = mm, residual = arg1_1, weight = arg5_1, epsilon = 1e-06);  mm = arg1_1 = arg5_1 = None',
    '        getitem_5: "bf16[s72, 256]" = auto_functionalized_2[1]',
    '        getitem_6: "bf16[s72, 256]" = auto_functionalized_2[2];  auto_functionalized_2 = None',
    ...groupQuant('2', 'getitem_5', 256, 64, true),
    '        return (q1, s1, q2, s2, getitem_6)',
  ].join('\n'),
).graph;

describe('norm + per-token-group quant, run', { timeout: 300_000 }, () => {
  it('rms_norm_per_block_quant (128, and 64 with a residual and transposed scales) equals the pair bitwise on CPU and WebGPU', async () => {
    const r = runPipeline(NORMS, ['norm-quant']);
    expect(r.stages[0]!.matches).toHaveLength(2);
    expect(
      r.output.nodes.filter((n) => JSON.stringify(n.args[0] ?? null).includes('per_block')),
    ).toHaveLength(2);
    // The fused kernel floors a group's scale at 1/(448·512) where the pair floors its absmax at
    // eps (lower/fusedQuant.ts): normed groups here all reach past 1/512, so every bit agrees.
    await expectBeforeAfter(NORMS, r.output, ['norm-quant'], run);
  });
});
