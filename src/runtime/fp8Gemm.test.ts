// FP8 GEMMs planned and run on the CPU reference and WebGPU: torch's _scaled_mm and vLLM's
// cutlass_scaled_mm against their definition ((a·b) · b's scale · a's scale, + bias, cast), and
// the symmetric-memory forms async TP makes of them (fused_scaled_matmul_reduce_scatter,
// fused_all_gather_scaled_matmul) against the scaled GEMM and the collective they fuse.

import { describe, expect, it } from 'vitest';
import { torchF8e4m3fn } from '../graph/opTable.ts';
import { runGraph, type RunOptions } from './index.ts';
import { toHostTensor, type HostTensor } from './hostTensor.ts';
import { compareTensor } from './compareOutputs.ts';
import { roundTo } from './weights.ts';
import { tinyRuns } from './testRuns.ts';
import { bf16Tensor as bf16, bf16Values as values, moduleGraph as graph } from './testGraphs.ts';

const run = tinyRuns();
const T = 7; // the tiny preset's token count
const BACKENDS = ['cpu', 'webgpu'] as const;

/** Every rank's outputs, in order. */
async function outputsOf(g: ReturnType<typeof graph>, o: RunOptions): Promise<HostTensor[][]> {
  const r = await runGraph(g, o);
  return r.outputs.map((m) => [...m.values()]);
}

describe('FP8 GEMMs, planned and run', { timeout: 300_000 }, () => {
  const K = 32,
    N = 24;
  /** (a · b) in f64, then · sb, · sa in f32 (+ bias), rounded to bf16: the kernels sum in f32 in their own order (the gemm's contract), so 1 bf16 ulp. */
  function reference(a: number[], b: number[], sa: number[], sb: number[], bias: number[] | null): number[] {
    const out: number[] = [];
    for (let m = 0; m < T; m++)
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += a[m * K + k]! * b[k * N + n]!;
        const s = (xs: number[], i: number) => xs[xs.length === 1 ? 0 : i]!;
        let y = Math.fround(Math.fround(Math.fround(acc) * s(sb, n)) * s(sa, m));
        if (bias) y = Math.fround(y + bias[n]!);
        out.push(roundTo('bf16', y));
      }
    return out;
  }
  const e4m3 = (seed: number, n: number) => values(seed, n, 8).map(torchF8e4m3fn);

  for (const perRow of [false, true]) {
    it(`_scaled_mm and cutlass_scaled_mm with ${perRow ? 'per-row and per-column' : 'per-tensor'} scales: (a·b)·sb·sa, cast to bf16, on CPU and WebGPU`, async () => {
      const saShape = perRow ? `[s77, 1]` : `[]`,
        sbShape = perRow ? `[1, ${N}]` : `[]`;
      const args = `arg0_1: "Sym(s77)", arg1_1: "f8e4m3fn[s77, ${K}]", arg2_1: "f8e4m3fn[${K}, ${N}]", arg3_1: "f32${saShape}", arg4_1: "f32${sbShape}", arg5_1: "bf16[${N}]"`;
      const scaled = graph(args, [
        `_scaled_mm: "bf16[s77, ${N}]" = torch.ops.aten._scaled_mm.default(arg1_1, arg2_1, arg3_1, arg4_1, arg5_1, None, torch.bfloat16);  arg1_1 = arg2_1 = arg3_1 = arg4_1 = None`,
        'return (_scaled_mm,)',
      ]);
      const cutlass = graph(args, [
        `empty: "bf16[s77, ${N}]" = torch.ops.aten.empty.memory_format([arg0_1, ${N}], dtype = torch.bfloat16)`,
        'auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.cutlass_scaled_mm.default, out = empty, a = arg1_1, b = arg2_1, a_scales = arg3_1, b_scales = arg4_1, bias = arg5_1);  empty = None',
        `getitem: "bf16[s77, ${N}]" = auto_functionalized[1];  auto_functionalized = None`,
        'return (getitem,)',
      ]);
      const a = e4m3(6, T * K),
        b = e4m3(7, K * N),
        sa = perRow ? values(8, T, 1).map((x) => roundTo('bf16', Math.abs(x) + 0.5)) : [0.75],
        sb = perRow ? values(9, N, 1).map((x) => roundTo('bf16', Math.abs(x) + 0.5)) : [0.3125],
        bias = values(10, N, 2);
      const inputs = new Map([
        ['arg1_1', bf16([T, K], a)],
        ['arg2_1', bf16([K, N], b)],
        ['arg3_1', bf16(perRow ? [T, 1] : [], sa)],
        ['arg4_1', bf16(perRow ? [1, N] : [], sb)],
        ['arg5_1', bf16([N], bias)],
      ]);
      const want = toHostTensor('bf16', [T, N], reference(a, b, sa, sb, bias));
      for (const backend of BACKENDS) {
        const [[viaTorch]] = await outputsOf(scaled, run({ backend, inputs, ranks: 1 }));
        const [[viaCutlass]] = await outputsOf(cutlass, run({ backend, inputs, ranks: 1 }));
        const c = compareTensor('mm', want, viaTorch!, 1, 'the definition');
        expect(c.pass, `${backend}: ${c.ulps} ulps`).toBe(true);
        expect(compareTensor('mm', viaTorch!, viaCutlass!, 0, 'the same steps').pass, backend).toBe(true);
      }
    });
  }
});

describe("async TP's FP8 forms, run on 2 ranks", { timeout: 300_000 }, () => {
  const M = 8,
    K = 32,
    N = 24;
  /** Both graphs on the same inputs (`inputs` given, the rest seeded by name and role alike). */
  const same = async (
    before: ReturnType<typeof graph>,
    after: ReturnType<typeof graph>,
    inputs?: Map<string, HostTensor>,
  ) => {
    for (const backend of BACKENDS) {
      const o = run({ backend, ranks: 2, inputs });
      const want = await outputsOf(before, o);
      const got = await outputsOf(after, o);
      want.forEach((rank, r) =>
        rank.forEach((w, i) =>
          expect(
            compareTensor(`r${r}.${i}`, w, got[r]![i]!, 0, 'bitwise').pass,
            `${backend} rank ${r} output ${i}`,
          ).toBe(true),
        ),
      );
    }
  };

  it('fused_scaled_matmul_reduce_scatter is _scaled_mm then reduce_scatter, bitwise, on CPU and WebGPU', async () => {
    const args = `arg1_1: "f8e4m3fn[${M}, ${K}]", arg2_1: "f8e4m3fn[${K}, ${N}]", arg3_1: "f32[]", arg4_1: "f32[]"`;
    const before = graph(args, [
      `_scaled_mm: "bf16[${M}, ${N}]" = torch.ops.aten._scaled_mm.default(arg1_1, arg2_1, arg3_1, arg4_1, None, None, torch.bfloat16)`,
      `reduce_scatter: "bf16[${M / 2}, ${N}]" = torch.ops.vllm.reduce_scatter.default(_scaled_mm, 0, 2, 'tp:0')`,
      'return (reduce_scatter,)',
    ]);
    const after = graph(args, [
      `fused: "bf16[${M / 2}, ${N}]" = torch.ops.symm_mem.fused_scaled_matmul_reduce_scatter.default(arg1_1, arg2_1, arg3_1, arg4_1, 'sum', 0, 0, 'tp:0', [${M}, ${N}], None, None, torch.bfloat16, False)`,
      'return (fused,)',
    ]);
    await same(before, after);
  });

  it('fused_all_gather_scaled_matmul is all_gather then _scaled_mm per weight (a per-row scale gathered with its rows), bitwise, on CPU and WebGPU', async () => {
    const args = `arg1_1: "f8e4m3fn[${M / 2}, ${K}]", arg2_1: "f8e4m3fn[${K}, ${N}]", arg3_1: "f32[${M / 2}, 1]", arg4_1: "f32[1, ${N}]", arg5_1: "f8e4m3fn[${K}, 16]", arg6_1: "f32[]"`;
    const before = graph(args, [
      `all_gather: "f8e4m3fn[${M}, ${K}]" = torch.ops.vllm.all_gather.default(arg1_1, 0, 2, 'tp:0')`,
      `all_gather_1: "f32[${M}, 1]" = torch.ops.vllm.all_gather.default(arg3_1, 0, 2, 'tp:0')`,
      `_scaled_mm: "bf16[${M}, ${N}]" = torch.ops.aten._scaled_mm.default(all_gather, arg2_1, all_gather_1, arg4_1, None, None, torch.bfloat16)`,
      `_scaled_mm_1: "bf16[${M}, 16]" = torch.ops.aten._scaled_mm.default(all_gather, arg5_1, all_gather_1, arg6_1, None, None, torch.bfloat16)`,
      'return (all_gather, _scaled_mm, _scaled_mm_1)',
    ]);
    const after = graph(args, [
      `fused = torch.ops.symm_mem.fused_all_gather_scaled_matmul.default(arg1_1, [arg2_1, arg5_1], arg3_1, [arg4_1, arg6_1], 0, 'tp:0', [None, None], [None, None], [torch.bfloat16, torch.bfloat16], [False, False])`,
      `getitem: "f8e4m3fn[${M}, ${K}]" = fused[0]`,
      'getitem_1 = fused[1];  fused = None',
      `getitem_2: "bf16[${M}, ${N}]" = getitem_1[0]`,
      `getitem_3: "bf16[${M}, 16]" = getitem_1[1];  getitem_1 = None`,
      'return (getitem, getitem_2, getitem_3)',
    ]);
    // The per-row scale is an activation before (all-gathered) and a scale after: given, not seeded by role.
    const scales = values(14, M / 2, 1).map((x) => roundTo('bf16', Math.abs(x) + 0.5));
    await same(before, after, new Map([['arg3_1', bf16([M / 2, 1], scales)]]));
  });
});
