// silu_and_mul and silu_and_mul_quant as one step (KERNELS.silu_and_mul, src/wgsl/siluMul.ts): on the
// CPU reference and WebGPU, bitwise the silu_and_mul → static quant steps it decomposes into
// (KERNEL_DECOMPOSITIONS) on the same backend, and WebGPU within the silu map function's ulps of the
// CPU reference (a quantized value within one e4m3 step) — bf16 rows the packed layout takes (I a multiple of 8, up to a row of 257
// words, wider than a workgroup), rows it does not (I = 12, 5, 601), T = 1, f16 and f32.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { compareGraphs, planGraph, type RunOptions } from '../runtime/index.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { swizzledScaleDims } from '../graph/fp4.ts';
import { asRows } from '../runtime/plan.ts';
import type { View } from '../graph/opTable.ts';
import { cpuBackend } from '../runtime/cpuBackend.ts';
import { webgpuBackend } from '../runtime/webgpuBackend.ts';
import { decomposed } from '../runtime/plan.ts';
import { hostValues, toHostTensor } from '../runtime/hostTensor.ts';
import { roundTo } from '../runtime/weights.ts';
import { f8e4m3fnBits, f8e4m3fnValue } from '../graph/fp8.ts';
import { freshSeed, tinyRuns } from '../runtime/testRuns.ts';
import { siluMulNvfp4Wgsl, siluMulPacked, siluMulWgsl } from './siluMul.ts';
import { nodeGpu } from '../runtime/nodeGpu.ts';
import type { Backend } from '../runtime/backend.ts';
import { compareTensor } from '../runtime/compareOutputs.ts';
import { MAP_FNS, SILU_MUL_BY_DTYPE, mapFnUlps } from '../graph/opTable.ts';

const run = tinyRuns({ ranks: 1 });
type Dt = 'bf16' | 'f16' | 'f32';

/** silu_and_mul, or with a scale silu_and_mul_quant, of one [T, 2·I] input. */
function siluMulGraph(dt: Dt, I: number, quant: boolean) {
  const call = quant
    ? 'torch.ops._C.silu_and_mul_quant.default, result = empty, input = arg1_1, scale = arg2_1'
    : 'torch.ops._C.silu_and_mul.default, result = empty, input = arg1_1';
  return parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      `    def forward(self, arg0_1: "Sym(s72)", arg1_1: "${dt}[s72, ${2 * I}]", arg2_1: "f32[]"):`,
      `        empty: "${dt}[s72, ${I}]" = torch.ops.aten.empty.memory_format([arg0_1, ${I}], dtype = torch.${{ bf16: 'bfloat16', f16: 'float16', f32: 'float32' }[dt]}, device = device(type='cuda', index=0), pin_memory = False)`,
      `        auto_functionalized = torch.ops.higher_order.auto_functionalized(${call});  empty = None`,
      `        getitem: "${dt}[s72, ${I}]" = auto_functionalized[1];  auto_functionalized = None`,
      '        return (getitem,)',
    ].join('\n'),
  ).graph;
}

/** Gate and up values in ±8 (past 448 / scale at the top), a few special points first, and the scale. */
function inputs(dt: Dt, T: number, I: number, seed: number) {
  let s = seed || 1;
  const special = [0, -0, 1, -1, 88, -89, 100, -100, 2 ** -14, 7.5, -7.5];
  const x = Float64Array.from({ length: T * 2 * I }, (_, i) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return roundTo(dt, i < special.length ? special[i]! : (s / 2 ** 32 - 0.5) * 16);
  });
  return new Map([
    ['arg1_1', toHostTensor(dt, [T, 2 * I], x)],
    ['arg2_1', toHostTensor('f32', [], [0.0625])],
  ]);
}

const SHAPES: [T: number, I: number][] = [
  [7, 16],
  [3, 2056],
  [1, 24],
  [7, 12],
  [5, 5],
  [2, 601],
];

const values = async (b: Backend, plan: ReturnType<typeof planGraph>, o: RunOptions) =>
  [...(await b.run(plan, o)).outputs[0]!.values()].map((v) => [...hostValues(v)]);

// WebGPU runs f16 only where the adapter has shader-f16 (Dawn's SwiftShader has not); the f16 kernels
// use no f16 type (values pack through pack2x16float), so Dawn compiles them here all the same.
it('the f16 kernels compile on Dawn (scalar layout, with and without the quant, and with NVFP4)', async () => {
  const device = await (await (await nodeGpu()).requestAdapter())!.requestDevice();
  try {
    for (const code of [
      siluMulWgsl('f16', null, false),
      siluMulWgsl('f16', 'f32', false),
      siluMulNvfp4Wgsl('f16', 'f32', true, false),
    ]) {
      const info = await device.createShaderModule({ code }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => m.message)).toEqual([]);
    }
  } finally {
    device.destroy();
  }
});

/** Sign-magnitude order of e4m3 codes: neighbouring values differ by 1. */
const e4m3Key = (v: number) => {
  const b = f8e4m3fnBits(v);
  return b & 0x80 ? -(b & 0x7f) : b;
};

describe('silu_and_mul (+ static FP8 quant) in one kernel', { timeout: 300_000 }, () => {
  // f16 runs on the CPU reference only: WebGPU runs f16 where the adapter has shader-f16 (Dawn's
  // SwiftShader has not).
  for (const dt of ['bf16', 'f16', 'f32'] as const)
    it(`${dt}: one step, bitwise its silu_and_mul → fp8_quant steps on ${dt === 'f16' ? 'the CPU reference' : 'the CPU reference and WebGPU'}`, async () => {
      const seed = freshSeed();
      const backends = dt === 'f16' ? [cpuBackend] : [cpuBackend, webgpuBackend];
      const ulps = dt === 'f16' ? 0 : mapFnUlps(MAP_FNS[SILU_MUL_BY_DTYPE[dt]].rounding, dt);
      let packed = 0;
      for (const [T, I] of SHAPES)
        for (const quant of [false, true]) {
          const opts: RunOptions = run({ dtype: dt, tokens: T, inputs: inputs(dt, T, I, seed) });
          const plan = planGraph(siluMulGraph(dt, I, quant), opts);
          const kernels = plan.steps.filter((s) => s.kernel !== 'seed').map((s) => s.kernel);
          expect(kernels).toEqual(['silu_and_mul']);
          const pair = decomposed(plan);
          expect(pair.steps.map((s) => s.kernel).slice(-1)).toEqual([quant ? 'fp8_quant' : 'map']);
          if (siluMulPacked(dt, { rows: T, cols: I, xOffset: 0, xRowStride: 2 * I })) packed++;
          const what = `${dt} [${T}, ${2 * I}] quant ${quant} seed ${seed}`;
          const got: number[][][] = [];
          for (const b of backends) {
            const fused = await values(b, plan, opts);
            expect(fused, `${b.name} ${what}`).toEqual(await values(b, pair, opts));
            got.push(fused);
          }
          const cpu = got[0]![0]!;
          // Not vacuous: many distinct values; quantized ones are e4m3 values, some clamped to ±448.
          expect(new Set(cpu).size).toBeGreaterThan(Math.min(T * I, 8) / 2);
          if (quant) {
            expect(cpu.every((v) => f8e4m3fnValue(f8e4m3fnBits(v)) === v)).toBe(true);
            if (T * I > 64) expect(cpu.some((v) => Math.abs(v) === 448)).toBe(true);
          }
          if (backends.length === 1) continue;
          // Across backends the silu map body's exp may differ: the product within its map
          // function's ulps, a quantized value within one e4m3 step.
          const gpu = got[1]![0]!;
          if (quant) expect(gpu.filter((v, i) => Math.abs(e4m3Key(v) - e4m3Key(cpu[i]!)) > 1)).toEqual([]);
          else {
            const t = (v: number[]) => toHostTensor(dt, [v.length], v);
            const c = compareTensor('out', t(cpu), t(gpu), ulps, 'silu_mul');
            expect(c.pass, `webgpu against the CPU reference ${what}: ${c.ulps} ulps`).toBe(true);
          }
        }
      expect(packed).toBe(dt === 'bf16' ? 6 : 0);
    });
});

/** The kernel's row layout of x. */
const rowsOf = (x: View) => {
  const r = asRows(x)!;
  return { rows: r.rows, cols: r.cols / 2, xOffset: r.offset, xRowStride: r.rowStride };
};

const DEVICE = "device = device(type='cuda', index=0), pin_memory = False";

/**
 * silu_and_mul → scaled_fp4_quant of [T, 2·I] into a swizzled int32 tile buffer (vLLM's default) or
 * a linear [T, I/16] one, as vLLM's SiluMulNvfp4QuantPattern matches it. With `pad`, the input is
 * columns pad… of a wider tensor: rows that are not whole words (the kernel's scalar layout).
 */
function siluMulFp4Graph(T: number, I: number, swizzled: boolean, pad: number) {
  const [Rp, Cp] = swizzledScaleDims(T, I / 16);
  const scales = swizzled
    ? `empty_s: "i32[${Rp}, ${Cp / 4}]" = torch.ops.aten.empty.memory_format([${Rp}, ${Cp / 4}], dtype = torch.int32, ${DEVICE})`
    : `empty_s: "f8e4m3fn[s72, ${I / 16}]" = torch.ops.aten.empty.memory_format([arg0_1, ${I / 16}], dtype = torch.float8_e4m3fn, ${DEVICE})`;
  const sType = swizzled ? `i32[${Rp}, ${Cp / 4}]` : `f8e4m3fn[s72, ${I / 16}]`;
  return parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      `    def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, ${2 * I + pad}]", arg2_1: "f32[1]"):`,
      `        x: "bf16[s72, ${2 * I}]" = torch.ops.aten.slice.Tensor(arg1_1, 1, ${pad}, ${2 * I + pad})`,
      `        empty: "bf16[s72, ${I}]" = torch.ops.aten.empty.memory_format([arg0_1, ${I}], dtype = torch.bfloat16, ${DEVICE})`,
      '        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.silu_and_mul.default, result = empty, input = x);  empty = None',
      `        getitem_1: "bf16[s72, ${I}]" = auto_functionalized[1];  auto_functionalized = None`,
      `        empty_q: "u8[s72, ${I / 2}]" = torch.ops.aten.empty.memory_format([arg0_1, ${I / 2}], dtype = torch.uint8, ${DEVICE})`,
      `        ${scales}`,
      '        af_q = torch.ops.higher_order.auto_functionalized(torch.ops._C.scaled_fp4_quant.default, output = empty_q, input = getitem_1, output_scale = empty_s, input_scale = arg2_1)',
      `        q: "u8[s72, ${I / 2}]" = af_q[1]`,
      `        s: "${sType}" = af_q[2];  af_q = None`,
      '        return (q, s)',
    ].join('\n'),
  ).graph;
}

describe('silu_and_mul + NVFP4 quant in one kernel', { timeout: 300_000 }, () => {
  const SHAPES_FP4: [T: number, I: number, swizzled: boolean, pad: number][] = [
    [7, 64, true, 0],
    [7, 64, false, 0],
    [1, 16, true, 0],
    [3, 4112, true, 0],
    [5, 48, false, 4],
    [130, 32, true, 4],
  ];
  it('bf16: silu_and_mul_nvfp4_quant is one step, bitwise the silu_and_mul → scaled_fp4_quant pair on the CPU reference and WebGPU, nothing fed', async () => {
    const seed = freshSeed();
    for (const [T, I, swizzled, pad] of SHAPES_FP4) {
      const g = siluMulFp4Graph(T, I, swizzled, pad);
      const r = runPipeline(g, ['act-quant'], { gpu: 'blackwell' });
      expect(r.stages[0]!.matches).toHaveLength(1);
      const opts = run({ tokens: T, seed });
      const plan = planGraph(r.output, opts);
      const fused = plan.steps.filter((s) => s.kernel === 'silu_and_mul_nvfp4');
      expect(plan.steps.filter((s) => s.kernel !== 'seed').map((s) => s.kernel)).toEqual([
        'silu_and_mul_nvfp4',
      ]);
      expect(fused.map((s) => siluMulPacked('bf16', rowsOf(s.x)))).toEqual([pad === 0]);
      for (const backend of ['cpu', 'webgpu'] as const) {
        const rep = await compareGraphs(g, r.output, ['act-quant'], { ...opts, backend });
        const what = `[${T}, ${2 * I}] swizzled ${swizzled} pad ${pad} seed ${seed} ${backend}`;
        expect(
          rep.outputs.map((o) => [o.bitwiseEqual, o.fedFrom]),
          `${what}: ${JSON.stringify(rep.outputs)}`,
        ).toEqual(rep.outputs.map(() => [true, []]));
        expect(rep.verdict, what).toBe('proven');
      }
    }
  });
});
