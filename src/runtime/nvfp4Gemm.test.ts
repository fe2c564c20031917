// vLLM's NVFP4 GEMM, cutlass_scaled_fp4_mm (csrc/torch_bindings.cpp), emulated: A from
// scaled_fp4_quant, B a packed weight seeded as vLLM stores one (uint8 [N, K/2], two e2m1 codes a
// byte, the even element in the low nibble: nvfp4_utils.cuh cvt_warp_fp16_to_fp4 packs the pair so)
// with its e4m3 block scales, out = alpha · (A · Bᵀ) in bf16. Checked on the CPU reference and
// WebGPU against a reference decoded here from the bytes and scales the run returns.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { importGraph } from '../graph/formats.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { generateSample } from '../graph/samples/index.ts';
import { buildPlan } from './plan.ts';
import { roleHints } from './lower/roles.ts';
import { runGraph } from './index.ts';
import { hostValues } from './hostTensor.ts';
import { roundBf16 } from './bf16.ts';
import { freshSeed, tinyRuns } from './testRuns.ts';

const run = tinyRuns();

const DEVICE = "device = device(type='cuda', index=0), pin_memory = False";
const GEMM = parseFx(
  [
    'class GraphModule(torch.nn.Module):',
    '    def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 64]", arg2_1: "f32[1]", arg3_1: "u8[48, 32]", arg4_1: "f8e4m3fn[48, 4]", arg5_1: "f32[1]"):',
    `        empty_q: "u8[s72, 32]" = torch.ops.aten.empty.memory_format([arg0_1, 32], dtype = torch.uint8, ${DEVICE})`,
    `        empty_s: "f8e4m3fn[s72, 4]" = torch.ops.aten.empty.memory_format([arg0_1, 4], dtype = torch.float8_e4m3fn, ${DEVICE})`,
    '        af_q = torch.ops.higher_order.auto_functionalized(torch.ops._C.scaled_fp4_quant.default, output = empty_q, input = arg1_1, output_scale = empty_s, input_scale = arg2_1)',
    '        q: "u8[s72, 32]" = af_q[1]',
    '        s: "f8e4m3fn[s72, 4]" = af_q[2];  af_q = None',
    `        empty_o: "bf16[s72, 48]" = torch.ops.aten.empty.memory_format([arg0_1, 48], dtype = torch.bfloat16, ${DEVICE})`,
    '        af_mm = torch.ops.higher_order.auto_functionalized(torch.ops._C.cutlass_scaled_fp4_mm.default, out = empty_o, a = q, b = arg3_1, block_scale_a = s, block_scale_b = arg4_1, alpha = arg5_1)',
    '        out: "bf16[s72, 48]" = af_mm[1];  af_mm = None',
    '        return (out, q, s, arg3_1, arg4_1, arg5_1)',
  ].join('\n'),
).graph;

// --- an independent reference: e2m1 by table, e4m3 by its bits ----------------------------------

const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
const e2m1 = (code: number) => (code & 8 ? -1 : 1) * E2M1[code & 7]!;
/** Every finite non-negative e4m3 value, ascending. */
const E4M3 = Array.from({ length: 127 }, (_, c) =>
  c < 8 ? c * 2 ** -9 : (1 + (c % 8) / 8) * 2 ** ((c >> 3) - 7),
);
/** The e4m3 value nearest to a non-negative x, ties to the even code (the seeded scales hit ties: bf16 has more bits). */
function e4m3(x: number): number {
  let i = 0;
  while (i + 1 < E4M3.length && E4M3[i + 1]! <= x) i++;
  if (i + 1 === E4M3.length) return E4M3[i]!;
  const lo = x - E4M3[i]!,
    hi = E4M3[i + 1]! - x;
  return E4M3[hi < lo || (hi === lo && i % 2 === 1) ? i + 1 : i]!;
}

/** Rows of packed bytes and their block scales as values [R, K]. */
function decode(packed: ArrayLike<number>, scales: ArrayLike<number>): number[] {
  return Array.from({ length: packed.length * 2 }, (_, i) => {
    const byte = packed[i >> 1]!;
    const sf = e4m3(scales[Math.floor(i / 16)]!);
    return e2m1(i % 2 === 0 ? byte & 15 : byte >> 4) * sf;
  });
}

/** One bf16 step at |x|. */
const bf16Ulp = (x: number) => 2 ** (Math.floor(Math.log2(Math.max(Math.abs(x), 2 ** -126))) - 7);

describe('cutlass_scaled_fp4_mm, run', { timeout: 300_000 }, () => {
  it('seeds its b as a packed FP4 weight: uniform bytes 0–255 (any pair of e2m1 codes)', () => {
    expect(roleHints(GEMM).get('arg3_1')).toBe('fp4-weight');
  });

  it('is alpha · (A · Bᵀ) of the decoded operands, f32 accumulation, in bf16, bitwise alike on the CPU and WebGPU', async () => {
    const seed = freshSeed();
    const K = 64,
      N = 48;
    const results: number[][] = [];
    for (const backend of ['cpu', 'webgpu'] as const) {
      const res = await runGraph(GEMM, run({ backend, seed }));
      const [out, q, s, w, sw, alpha] = [...res.outputs[0]!.values()].map((v) => hostValues(v));
      expect(res.trace.fed, `${backend}: nothing fed`).toEqual([]);
      // The weight's bytes: integers 0–255, both nibbles spread over every code.
      expect([...w!].every((b) => Number.isInteger(b) && b >= 0 && b < 256)).toBe(true);
      expect(new Set([...w!].map((b) => b & 15)).size).toBe(16);
      expect(new Set([...w!].map((b) => b >> 4)).size).toBe(16);
      const A = decode(q!, s!),
        B = decode(w!, sw!);
      const M = A.length / K;
      expect(out!.length).toBe(M * N);
      results.push([...out!]);
      let exact = 0;
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += A[m * K + k]! * B[n * K + k]!;
          const ref = roundBf16(Math.fround(Math.fround(acc) * alpha![0]!));
          const got = out![m * N + n]!;
          expect(
            Math.abs(got - ref),
            `${backend} seed ${seed} [${m}, ${n}]: ${got} vs ${ref}`,
          ).toBeLessThanOrEqual(bf16Ulp(ref));
          if (got === ref) exact++;
        }
      // The order of an f32 sum of exact products moves a result by a bf16 step only near a tie.
      expect(exact / (M * N), `${backend} seed ${seed}`).toBeGreaterThan(0.95);
    }
    // Exact products summed in f32 in k order: the same bits on both backends.
    expect(results[1], `seed ${seed}: WebGPU against the CPU reference`).toEqual(results[0]);
  });

  it('the NVFP4 Llama sample plans with every node a kernel, before and after act-quant (Blackwell)', () => {
    // Its layers at Llama-3.1-8B's own sizes are too slow to run on the CPU reference here; the
    // llama-nvfp4-tp1 capture runs the same ops (quantCapturesRun.test.ts).
    const g = importGraph(generateSample('llama', { layers: 1, tp: 1, quant: 'nvfp4' })).graph;
    const after = runPipeline(g, ['act-quant'], { worldSize: 1, gpu: 'blackwell' }).output;
    for (const graph of [g, after]) {
      const plan = buildPlan(graph, { preset: 'tiny', dtype: 'bf16', ranks: 1, tokens: 4 });
      expect(plan.fed).toEqual([]);
      // qkv, o, gate_up and down.
      expect(plan.steps.filter((st) => st.kernel === 'nvfp4_gemm').length).toBe(4);
    }
  });
});
