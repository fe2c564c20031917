// The FP8 quant rewrite run before and after, on the CPU reference and on WebGPU ranks:
// all_reduce → fused_add_rms_norm → static_scaled_fp8_quant becomes one fused op with pattern_code 2
// (quant_out [4]). Rerun with the fused norm rounded as the unfused pair, the after-graph must give
// the same bits: the quant of the same bf16 norm by the same 1/scale.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { compareGraphs, runGraph, type RunOptions } from './index.ts';
import { hostValues } from './hostTensor.ts';
import { expectFp8Values, tinyRuns } from './testRuns.ts';

const run = tinyRuns();
const opts = (backend: 'cpu' | 'webgpu', seed: number): RunOptions => run({ backend, seed });

const BEFORE = parseFx(
  [
    'class GraphModule(torch.nn.Module):',
    '    def forward(self, arg0_1: "bf16[s72, 64]", arg1_1: "bf16[64, 40]", arg2_1: "bf16[s72, 40]", arg3_1: "bf16[40]", arg4_1: "f32[]", arg5_1: "Sym(s72)"):',
    '        mm: "bf16[s72, 40]" = torch.ops.aten.mm.default(arg0_1, arg1_1);  arg0_1 = arg1_1 = None',
    '        all_reduce: "bf16[s72, 40]" = torch.ops.vllm.all_reduce.default(mm, \'tp:0\');  mm = None',
    '        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = all_reduce, residual = arg2_1, weight = arg3_1, epsilon = 1e-05);  all_reduce = arg2_1 = arg3_1 = None',
    '        getitem: "bf16[s72, 40]" = auto_functionalized[1]',
    '        getitem_1: "bf16[s72, 40]" = auto_functionalized[2];  auto_functionalized = None',
    '        empty: "f8e4m3fn[s72, 40]" = torch.ops.aten.empty.memory_format([arg5_1, 40], dtype = torch.float8_e4m3fn, device = device(type=\'cuda\', index=0), pin_memory = False)',
    '        auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops._C.static_scaled_fp8_quant.default, result = empty, input = getitem, scale = arg4_1);  empty = getitem = arg4_1 = None',
    '        getitem_2: "f8e4m3fn[s72, 40]" = auto_functionalized_1[1];  auto_functionalized_1 = None',
    '        return (getitem_2, getitem_1)',
  ].join('\n'),
).graph;

describe('the FP8 quant fusion, run', { timeout: 300_000 }, () => {
  it('fuses into pattern_code 2; the as-unfused rerun is bitwise equal to before on CPU and WebGPU; the quant outputs are fp8 values', async () => {
    const r = runPipeline(BEFORE, ['allreduce-rmsnorm'], { worldSize: 2 });
    expect(r.stages[0]!.matches).toHaveLength(1);
    const after = r.output;
    expect(after.nodes.find((n) => n.kwargs['pattern_code'] !== undefined)!.kwargs['pattern_code']).toBe(2);
    const seed = (Math.random() * 2 ** 32) >>> 0;
    for (const backend of ['cpu', 'webgpu'] as const) {
      const rep = await compareGraphs(BEFORE, after, ['allreduce-rmsnorm'], opts(backend, seed));
      expect(rep.fusedSites).toBe(1);
      expect(rep.exact!.pass, `seed ${seed} ${backend}: ${JSON.stringify(rep.exact)}`).toBe(true);
      // The normal comparison: the quant within one fp8 step, the residual bitwise.
      expect(rep.outputs.map((o) => o.tolerance.startsWith('≤ 1 fp8 step'))).toEqual([
        true,
        false,
        true,
        false,
      ]);
      expect(rep.ok, JSON.stringify(rep.outputs)).toBe(true);
      const run = await runGraph(after, opts(backend, seed));
      const q = hostValues([...run.outputs[0]!.values()][0]!);
      // Every quantized value is an e4m3fn value, and not all the same one.
      expectFp8Values(q, backend, 4);
    }
  });

  it("the first layer's rms_norm → quant (norm_out given, residual zeros): the as-unfused rerun is bitwise equal on CPU and WebGPU", async () => {
    const before = parseFx(
      [
        'class GraphModule(torch.nn.Module):',
        '    def forward(self, arg0_1: "bf16[s72, 64]", arg1_1: "bf16[64, 40]", arg3_1: "bf16[40]", arg4_1: "f32[]", arg5_1: "Sym(s72)"):',
        '        mm: "bf16[s72, 40]" = torch.ops.aten.mm.default(arg0_1, arg1_1);  arg0_1 = arg1_1 = None',
        '        all_reduce: "bf16[s72, 40]" = torch.ops.vllm.all_reduce.default(mm, \'tp:0\');  mm = None',
        '        empty: "bf16[s72, 40]" = torch.ops.aten.empty.memory_format([arg5_1, 40], dtype = torch.bfloat16, device = device(type=\'cuda\', index=0), pin_memory = False)',
        '        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty, input = all_reduce, weight = arg3_1, epsilon = 1e-06);  empty = arg3_1 = None',
        '        getitem: "bf16[s72, 40]" = auto_functionalized[1];  auto_functionalized = None',
        '        empty_1: "f8e4m3fn[s72, 40]" = torch.ops.aten.empty.memory_format([arg5_1, 40], dtype = torch.float8_e4m3fn, device = device(type=\'cuda\', index=0), pin_memory = False)',
        '        auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops._C.static_scaled_fp8_quant.default, result = empty_1, input = getitem, scale = arg4_1);  empty_1 = getitem = arg4_1 = None',
        '        getitem_2: "f8e4m3fn[s72, 40]" = auto_functionalized_1[1];  auto_functionalized_1 = None',
        '        return (getitem_2, all_reduce)',
      ].join('\n'),
    ).graph;
    const r = runPipeline(before, ['allreduce-rmsnorm'], { worldSize: 2 });
    expect(r.stages[0]!.matches).toHaveLength(1);
    const seed = (Math.random() * 2 ** 32) >>> 0;
    for (const backend of ['cpu', 'webgpu'] as const) {
      const rep = await compareGraphs(before, r.output, ['allreduce-rmsnorm'], opts(backend, seed));
      expect(rep.exact!.pass, `seed ${seed} ${backend}: ${JSON.stringify(rep.exact)}`).toBe(true);
      // The all-reduced stream, now the fused op's [1] (ar + zeros), is bitwise the same.
      const stream = rep.outputs.filter((o) => o.name.includes('all_reduce'));
      expect(stream).toHaveLength(2);
      expect(stream.every((o) => o.bitwiseEqual)).toBe(true);
      expect(rep.ok, JSON.stringify(rep.outputs)).toBe(true);
    }
  });
});
