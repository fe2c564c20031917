// NVFP4, emulated: vLLM's scaled_fp4_quant and the silu_and_mul_nvfp4_quant that ActivationQuantFusionPass
// makes of silu_and_mul → scaled_fp4_quant on Blackwell, run on the CPU reference and on WebGPU. The
// quant is checked against a reference written here from vLLM's cvt_warp_fp16_to_fp4
// (csrc/quantization/fp4/nvfp4_utils.cuh), bitwise; the rewrite before ≡ after.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { expectBeforeAfter, freshSeed, outputValues, tinyRuns } from './testRuns.ts';

const run = tinyRuns();

const DEVICE = "device = device(type='cuda', index=0), pin_memory = False";
const empty = (name: string, type: string, dims: string, dtype: string) =>
  `        ${name}: "${type}" = torch.ops.aten.empty.memory_format(${dims}, dtype = torch.${dtype}, ${DEVICE})`;
const fp4Quant = (n: string, input: string, K: number, scale: string) => [
  empty(`empty_q${n}`, `u8[s72, ${K / 2}]`, `[arg0_1, ${K / 2}]`, 'uint8'),
  empty(`empty_s${n}`, `f8e4m3fn[s72, ${K / 16}]`, `[arg0_1, ${K / 16}]`, 'float8_e4m3fn'),
  `        af_q${n} = torch.ops.higher_order.auto_functionalized(torch.ops._C.scaled_fp4_quant.default, output = empty_q${n}, input = ${input}, output_scale = empty_s${n}, input_scale = ${scale})`,
  `        q${n}: "u8[s72, ${K / 2}]" = af_q${n}[1]`,
  `        s${n}: "f8e4m3fn[s72, ${K / 16}]" = af_q${n}[2];  af_q${n} = None`,
];

// --- an independent reference: the kernel's f32 steps through Math.fround, formats by search -----

const f = Math.fround;
const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
/** Every finite non-negative e4m3 value, ascending (the index is the code). */
const E4M3 = Array.from({ length: 127 }, (_, c) =>
  c < 8 ? c * 2 ** -9 : (1 + (c % 8) / 8) * 2 ** ((c >> 3) - 7),
);
/** Nearest in a sorted list of non-negative values, ties to the even index; past the end, the last. */
function nearestIndex(values: number[], a: number): number {
  let i = 0;
  while (i + 1 < values.length && values[i + 1]! <= a) i++;
  if (i + 1 === values.length) return i;
  const lo = a - values[i]!,
    hi = values[i + 1]! - a;
  return hi < lo || (hi === lo && i % 2 === 1) ? i + 1 : i;
}
function referenceFp4(x: ArrayLike<number>, K: number, S: number): { packed: number[]; sf: number[] } {
  const packed: number[] = [],
    sf: number[] = [];
  for (let blk = 0; blk < x.length / 16; blk++) {
    const v = Array.from({ length: 16 }, (_, i) => x[blk * 16 + i]!);
    const vecMax = Math.max(...v.map(Math.abs));
    const SF = f(S * f(vecMax * f(1 / 6)));
    const sf8 = E4M3[nearestIndex(E4M3, Math.min(SF, 448))]!;
    sf.push(sf8);
    const outScale = f(1 / f(sf8 * f(1 / S)));
    const code = (y: number) => nearestIndex(E2M1, Math.abs(y)) | (y < 0 || Object.is(y, -0) ? 8 : 0);
    for (let i = 0; i < 16; i += 2)
      packed.push(code(f(v[i]! * outScale)) + 16 * code(f(v[i + 1]! * outScale)));
  }
  expect(packed.length).toBe(x.length / 2);
  expect(sf.length).toBe((x.length / K) * (K / 16));
  return { packed, sf };
}

const QUANT = parseFx(
  [
    'class GraphModule(torch.nn.Module):',
    '    def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 64]", arg2_1: "f32[1]"):',
    '        x: "bf16[s72, 64]" = torch.ops.aten.mul.Tensor(arg1_1, 3.0)',
    ...fp4Quant('1', 'x', 64, 'arg2_1'),
    '        return (q1, s1, x, arg2_1)',
  ].join('\n'),
).graph;

describe('scaled_fp4_quant, run', { timeout: 300_000 }, () => {
  it('packs e2m1 pairs and e4m3 block scales bitwise as the reference on the CPU and WebGPU', async () => {
    const seed = freshSeed();
    for (const backend of ['cpu', 'webgpu'] as const) {
      const [q, s, x, S] = await outputValues(QUANT, run({ backend, seed }));
      const ref = referenceFp4(x!, 64, S![0]!);
      expect([...s!], `${backend} seed ${seed} block scales`).toEqual(ref.sf);
      expect([...q!], `${backend} seed ${seed} packed values`).toEqual(ref.packed);
      // Every byte is a pair of codes; each block's largest element maps to ±6 (magnitude code 7),
      // since its e4m3 scale is within 1/16 of max|block| / 6.
      expect([...q!].every((b) => Number.isInteger(b) && b >= 0 && b < 256)).toBe(true);
      expect(new Set([...q!].map((b) => b >> 4)).size).toBeGreaterThan(8);
      for (let blk = 0; blk < q!.length / 8; blk++) {
        const nibbles = [...q!.slice(blk * 8, blk * 8 + 8)].flatMap((b) => [b & 7, (b >> 4) & 7]);
        expect(Math.max(...nibbles), `${backend} block ${blk}`).toBe(7);
      }
    }
  });
});

const ACT = parseFx(
  [
    'class GraphModule(torch.nn.Module):',
    '    def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 128]", arg2_1: "f32[1]"):',
    empty('empty', 'bf16[s72, 64]', '[arg0_1, 64]', 'bfloat16'),
    '        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.silu_and_mul.default, result = empty, input = arg1_1);  empty = None',
    '        getitem_1: "bf16[s72, 64]" = auto_functionalized[1];  auto_functionalized = None',
    ...fp4Quant('1', 'getitem_1', 64, 'arg2_1'),
    '        return (q1, s1)',
  ].join('\n'),
).graph;

describe('silu_and_mul + NVFP4 quant, run', { timeout: 300_000 }, () => {
  it('silu_and_mul_nvfp4_quant (Blackwell) is bitwise the pair on the CPU and WebGPU, nothing fed', async () => {
    const r = runPipeline(ACT, ['act-quant'], { gpu: 'blackwell' });
    expect(r.stages[0]!.matches).toHaveLength(1);
    await expectBeforeAfter(ACT, r.output, ['act-quant'], run);
  });
});
