// vLLM's swizzled NVFP4 block-scale layout: scaled_fp4_quant writes its scales in 128 × 4 tiles
// (vLLM's default: an int32 buffer, four e4m3 scales a word) and cutlass_scaled_fp4_mm reads them
// so. The offset function is checked against a reference written from vLLM's Python
// swizzle_blockscale (vllm/model_executor/layers/quantization/utils/nvfp4_utils.py: pad to
// [roundUp(M, 128), roundUp(K, 4)], reshape [M/128, 4, 32, K/4, 4], permute (0, 3, 2, 1, 4)); the
// runs write and read the layout on the CPU reference and WebGPU, nothing fed.

import { describe, expect, it } from 'vitest';
import { swizzledScaleDims, swizzledScaleOffset } from '../graph/fp4.ts';
import { parseFx } from '../graph/fx/parse.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { compareGraphs, runGraph } from './index.ts';
import { hostValues } from './hostTensor.ts';
import { freshSeed, tinyRuns } from './testRuns.ts';

const run = tinyRuns();

/** swizzle_blockscale's order: for each position of the swizzled tensor, the (row, col) it holds. */
function swizzleOrder(rows: number, cols: number): [number, number][] {
  const Mp = Math.ceil(rows / 128) * 128,
    Kp = Math.ceil(cols / 4) * 4;
  // padded.reshape(Mp/128, 4, 32, Kp/4, 4) indexes (a, b, c, d, e) as row 128a + 32b + c, col 4d + e;
  // permute((0, 3, 2, 1, 4)) walks a, d, c, b, e.
  const order: [number, number][] = [];
  for (let a = 0; a < Mp / 128; a++)
    for (let d = 0; d < Kp / 4; d++)
      for (let c = 0; c < 32; c++)
        for (let b = 0; b < 4; b++) for (let e = 0; e < 4; e++) order.push([128 * a + 32 * b + c, 4 * d + e]);
  return order;
}

describe("vLLM's swizzled block-scale layout", () => {
  it('the offset of (row, col) is where swizzle_blockscale puts it, padding included', () => {
    for (const [rows, cols] of [
      [1, 1],
      [5, 6],
      [128, 4],
      [200, 6],
      [300, 17],
    ] as const) {
      const order = swizzleOrder(rows, cols);
      const [Mp, Kp] = swizzledScaleDims(rows, cols);
      expect(order.length).toBe(Mp * Kp);
      order.forEach(([r, c], at) => {
        if (swizzledScaleOffset(r, c, cols) !== at)
          expect(swizzledScaleOffset(r, c, cols), `[${rows}, ${cols}] (${r}, ${c})`).toBe(at);
      });
    }
    expect(swizzledScaleDims(200, 6)).toEqual([256, 8]);
  });

  const DEVICE = "device = device(type='cuda', index=0), pin_memory = False";
  /** scaled_fp4_quant of [T, 96] into a scale buffer of `scaleType`, then the GEMM with a [48, 96] weight. */
  const graph = (scaleType: string, dims: string) =>
    parseFx(
      [
        'class GraphModule(torch.nn.Module):',
        '    def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 96]", arg2_1: "f32[1]", arg3_1: "u8[48, 48]", arg4_1: "f8e4m3fn[48, 6]", arg5_1: "f32[1]"):',
        `        empty_q: "u8[s72, 48]" = torch.ops.aten.empty.memory_format([arg0_1, 48], dtype = torch.uint8, ${DEVICE})`,
        `        empty_s: "${scaleType}" = torch.ops.aten.empty.memory_format(${dims}, dtype = torch.${scaleType.startsWith('i32') ? 'int32' : 'float8_e4m3fn'}, ${DEVICE})`,
        '        af_q = torch.ops.higher_order.auto_functionalized(torch.ops._C.scaled_fp4_quant.default, output = empty_q, input = arg1_1, output_scale = empty_s, input_scale = arg2_1)',
        '        q: "u8[s72, 48]" = af_q[1]',
        `        s: "${scaleType}" = af_q[2];  af_q = None`,
        `        empty_o: "bf16[s72, 48]" = torch.ops.aten.empty.memory_format([arg0_1, 48], dtype = torch.bfloat16, ${DEVICE})`,
        '        af_mm = torch.ops.higher_order.auto_functionalized(torch.ops._C.cutlass_scaled_fp4_mm.default, out = empty_o, a = q, b = arg3_1, block_scale_a = s, block_scale_b = arg4_1, alpha = arg5_1)',
        '        out: "bf16[s72, 48]" = af_mm[1];  af_mm = None',
        '        return (out, q, s)',
      ].join('\n'),
    ).graph;
  const LINEAR = graph('f8e4m3fn[s72, 6]', '[arg0_1, 6]');
  // vLLM's allocation: int32 [roundUp(T, 128), roundUp(96 / 16, 4) / 4].
  const SWIZZLED = graph('i32[128, 2]', '[128, 2]');

  it('scaled_fp4_quant writes the swizzled tiles (zero padding) and cutlass_scaled_fp4_mm reads them: the same product as the linear layout, on the CPU and WebGPU', async () => {
    const seed = freshSeed();
    for (const backend of ['cpu', 'webgpu'] as const) {
      const lin = await runGraph(LINEAR, run({ backend, seed }));
      const swz = await runGraph(SWIZZLED, run({ backend, seed }));
      expect(swz.trace.fed, backend).toEqual([]);
      const [outL, qL, sL] = [...lin.outputs[0]!.values()].map((v) => [...hostValues(v)]);
      const [outS, qS, sS] = [...swz.outputs[0]!.values()].map((v) => [...hostValues(v)]);
      expect(qS, `${backend} seed ${seed}: packed values`).toEqual(qL);
      const T = qL!.length / 48;
      expect(sS!.length).toBe(128 * 8);
      const at = new Map<number, number>();
      for (let r = 0; r < T; r++)
        for (let c = 0; c < 6; c++) at.set(swizzledScaleOffset(r, c, 6), sL![r * 6 + c]!);
      expect(
        sS!.map((v, i) => [i, v]).filter(([i, v]) => v !== (at.get(i!) ?? 0)),
        `${backend} seed ${seed}: swizzled scales (zeros where padded)`,
      ).toEqual([]);
      expect(outS, `${backend} seed ${seed}: the GEMM reads the tiles`).toEqual(outL);
    }
  });

  it("silu_and_mul → scaled_fp4_quant into the int32 tile buffer (as vLLM's SiluMulNvfp4QuantPattern takes it): fused on Blackwell, bitwise the pair on the CPU and WebGPU, nothing fed", async () => {
    const g = parseFx(
      [
        'class GraphModule(torch.nn.Module):',
        '    def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 128]", arg2_1: "f32[1]"):',
        `        empty: "bf16[s72, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.bfloat16, ${DEVICE})`,
        '        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.silu_and_mul.default, result = empty, input = arg1_1);  empty = None',
        '        getitem_1: "bf16[s72, 64]" = auto_functionalized[1];  auto_functionalized = None',
        `        empty_q: "u8[s72, 32]" = torch.ops.aten.empty.memory_format([arg0_1, 32], dtype = torch.uint8, ${DEVICE})`,
        `        empty_s: "i32[128, 1]" = torch.ops.aten.empty.memory_format([128, 1], dtype = torch.int32, ${DEVICE})`,
        '        af_q = torch.ops.higher_order.auto_functionalized(torch.ops._C.scaled_fp4_quant.default, output = empty_q, input = getitem_1, output_scale = empty_s, input_scale = arg2_1)',
        '        q: "u8[s72, 32]" = af_q[1]',
        '        s: "i32[128, 1]" = af_q[2];  af_q = None',
        '        return (q, s)',
      ].join('\n'),
    ).graph;
    const r = runPipeline(g, ['act-quant'], { gpu: 'blackwell' });
    expect(r.stages[0]!.matches).toHaveLength(1);
    const seed = freshSeed();
    for (const backend of ['cpu', 'webgpu'] as const) {
      const rep = await compareGraphs(g, r.output, ['act-quant'], run({ backend, seed }));
      expect(
        rep.outputs.map((o) => [o.bitwiseEqual, o.fedFrom]),
        `seed ${seed} ${backend}: ${JSON.stringify(rep.outputs)}`,
      ).toEqual(rep.outputs.map(() => [true, []]));
      expect(rep.verdict).toBe('proven');
    }
  });
});
