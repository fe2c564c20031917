// norm-quant and act-quant run before and after, on the CPU reference and on WebGPU: an FP8 decoder
// slice at TP 1 (rms_norm → static quant, fused_add_rms_norm → static quant, silu_and_mul → static
// quant) becomes _C.rms_norm_static_fp8_quant, _C.fused_add_rms_norm_static_fp8_quant and
// _C.silu_and_mul_quant. vLLM's fused kernels store the norm (and silu·mul) in the model dtype before
// the same scaled_fp8_conversion as the unfused quant, so every output is bitwise the unfused one.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../graph/formats.ts';
import { parseFx } from '../graph/fx/parse.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { compareRewrite, runGraph } from './index.ts';
import { hostValues } from './hostTensor.ts';
import { expectBeforeAfter, expectFp8Values, freshSeed, tinyRuns } from './testRuns.ts';

const run = tinyRuns();

const DEVICE = "device = device(type='cuda', index=0), pin_memory = False";
const BEFORE = parseFx(
  [
    'class GraphModule(torch.nn.Module):',
    '    def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 64]", arg2_1: "bf16[64]", arg3_1: "f32[1]", arg4_1: "bf16[64, 64]", arg5_1: "bf16[64]", arg6_1: "f32[1]", arg7_1: "bf16[64, 128]", arg8_1: "f32[1]"):',
    `        empty: "bf16[s72, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.bfloat16, ${DEVICE})`,
    '        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty, input = arg1_1, weight = arg2_1, epsilon = 1e-05);  empty = arg2_1 = None',
    '        getitem_1: "bf16[s72, 64]" = auto_functionalized[1];  auto_functionalized = None',
    `        empty_1: "f8e4m3fn[s72, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.float8_e4m3fn, ${DEVICE})`,
    '        auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops._C.static_scaled_fp8_quant.default, result = empty_1, input = getitem_1, scale = arg3_1);  empty_1 = getitem_1 = None',
    '        getitem_3: "f8e4m3fn[s72, 64]" = auto_functionalized_1[1];  auto_functionalized_1 = None',
    '        mm: "bf16[s72, 64]" = torch.ops.aten.mm.default(arg1_1, arg4_1)',
    '        auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = mm, residual = arg1_1, weight = arg5_1, epsilon = 1e-05);  mm = arg1_1 = arg5_1 = None',
    '        getitem_5: "bf16[s72, 64]" = auto_functionalized_2[1]',
    '        getitem_6: "bf16[s72, 64]" = auto_functionalized_2[2];  auto_functionalized_2 = None',
    `        empty_2: "f8e4m3fn[s72, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.float8_e4m3fn, ${DEVICE})`,
    '        auto_functionalized_3 = torch.ops.higher_order.auto_functionalized(torch.ops._C.static_scaled_fp8_quant.default, result = empty_2, input = getitem_5, scale = arg6_1);  empty_2 = getitem_5 = None',
    '        getitem_8: "f8e4m3fn[s72, 64]" = auto_functionalized_3[1];  auto_functionalized_3 = None',
    '        mm_1: "bf16[s72, 128]" = torch.ops.aten.mm.default(getitem_6, arg7_1)',
    `        empty_3: "bf16[s72, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.bfloat16, ${DEVICE})`,
    '        auto_functionalized_4 = torch.ops.higher_order.auto_functionalized(torch.ops._C.silu_and_mul.default, result = empty_3, input = mm_1);  empty_3 = mm_1 = None',
    '        getitem_10: "bf16[s72, 64]" = auto_functionalized_4[1];  auto_functionalized_4 = None',
    `        empty_4: "f8e4m3fn[s72, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.float8_e4m3fn, ${DEVICE})`,
    '        auto_functionalized_5 = torch.ops.higher_order.auto_functionalized(torch.ops._C.static_scaled_fp8_quant.default, result = empty_4, input = getitem_10, scale = arg8_1);  empty_4 = getitem_10 = None',
    '        getitem_12: "f8e4m3fn[s72, 64]" = auto_functionalized_5[1];  auto_functionalized_5 = None',
    '        return (getitem_3, getitem_8, getitem_6, getitem_12)',
  ].join('\n'),
).graph;

const PASSES = ['norm-quant', 'act-quant'];

describe('norm + quant and silu_and_mul + quant, run', { timeout: 300_000 }, () => {
  it('fuses all three sites; after ≡ before bitwise on the CPU reference and WebGPU; the quants are fp8 values', async () => {
    const r = runPipeline(BEFORE, PASSES);
    expect(r.stages.map((s) => s.matches.length)).toEqual([2, 1]);
    const after = r.output;
    expect(after.nodes.filter((n) => n.op.includes('auto_functionalized')).map((n) => n.args[0])).toEqual([
      { kind: 'op', target: '_C.rms_norm_static_fp8_quant.default' },
      { kind: 'op', target: '_C.fused_add_rms_norm_static_fp8_quant.default' },
      { kind: 'op', target: '_C.silu_and_mul_quant.default' },
    ]);
    for (const { backend, options, report } of await expectBeforeAfter(BEFORE, after, PASSES, run)) {
      expect(report.fusedSites).toBe(0);
      const out = await runGraph(after, options);
      for (const i of [0, 1, 3]) {
        const q = hostValues([...out.outputs[0]!.values()][i]!);
        expectFp8Values(q, `${backend} output ${i}`, 4);
      }
    }
  });
});

const PER_TOKEN = parseFx(
  [
    'class GraphModule(torch.nn.Module):',
    '    def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 64]", arg2_1: "bf16[64]", arg4_1: "bf16[64, 64]", arg5_1: "bf16[64]"):',
    `        empty: "bf16[s72, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.bfloat16, ${DEVICE})`,
    '        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty, input = arg1_1, weight = arg2_1, epsilon = 1e-06);  empty = arg2_1 = None',
    '        getitem_1: "bf16[s72, 64]" = auto_functionalized[1];  auto_functionalized = None',
    `        empty_1: "f8e4m3fn[s72, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.float8_e4m3fn, ${DEVICE})`,
    `        empty_2: "f32[s72, 1]" = torch.ops.aten.empty.memory_format([arg0_1, 1], dtype = torch.float32, ${DEVICE})`,
    '        auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops._C.dynamic_per_token_scaled_fp8_quant.default, result = empty_1, input = getitem_1, scale = empty_2, scale_ub = None);  empty_1 = getitem_1 = empty_2 = None',
    '        getitem_3: "f8e4m3fn[s72, 64]" = auto_functionalized_1[1]',
    '        getitem_4: "f32[s72, 1]" = auto_functionalized_1[2];  auto_functionalized_1 = None',
    '        mm: "bf16[s72, 64]" = torch.ops.aten.mm.default(arg1_1, arg4_1)',
    '        auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = mm, residual = arg1_1, weight = arg5_1, epsilon = 1e-06);  mm = arg1_1 = arg5_1 = None',
    '        getitem_5: "bf16[s72, 64]" = auto_functionalized_2[1]',
    '        getitem_6: "bf16[s72, 64]" = auto_functionalized_2[2];  auto_functionalized_2 = None',
    `        empty_3: "f8e4m3fn[s72, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.float8_e4m3fn, ${DEVICE})`,
    `        empty_4: "f32[s72, 1]" = torch.ops.aten.empty.memory_format([arg0_1, 1], dtype = torch.float32, ${DEVICE})`,
    '        auto_functionalized_3 = torch.ops.higher_order.auto_functionalized(torch.ops._C.dynamic_per_token_scaled_fp8_quant.default, result = empty_3, input = getitem_5, scale = empty_4, scale_ub = None);  empty_3 = getitem_5 = empty_4 = None',
    '        getitem_7: "f8e4m3fn[s72, 64]" = auto_functionalized_3[1]',
    '        getitem_8: "f32[s72, 1]" = auto_functionalized_3[2];  auto_functionalized_3 = None',
    '        return (getitem_3, getitem_4, getitem_7, getitem_8, getitem_6)',
  ].join('\n'),
).graph;

describe('norm + dynamic per-token quant, run', { timeout: 300_000 }, () => {
  it('rms_norm_dynamic_per_token_quant (with and without a residual) is bitwise the pair on CPU and WebGPU', async () => {
    const r = runPipeline(PER_TOKEN, ['norm-quant']);
    expect(r.stages[0]!.matches).toHaveLength(2);
    for (const { options } of await expectBeforeAfter(PER_TOKEN, r.output, ['norm-quant'], run)) {
      const out = await runGraph(r.output, options);
      const values = [...out.outputs[0]!.values()];
      // One scale per token, each max|row| / 448 at least 1/(448·512); quantized values are e4m3fn values.
      const scale = hostValues(values[1]!);
      expect([...scale].every((s) => s >= 1 / (448 * 512) - 1e-12)).toBe(true);
      const q = hostValues(values[0]!);
      expectFp8Values(q, 'per-token quant');
      expect(Math.max(...[...q].map(Math.abs))).toBe(448);
    }
  });
});

describe('the FP8 Llama capture at TP 1, run on the CPU reference', { timeout: 300_000 }, () => {
  it('after norm-quant and act-quant every output is bitwise the unfused one, nothing fed: proven', async () => {
    const file = new URL('../../fixtures/capture/llama-fp8-tp1.py', import.meta.url).pathname;
    const g = importGraph(readFileSync(file, 'utf8'), { fileName: 'llama-fp8-tp1.py' }).graph;
    const rep = await compareRewrite(g, PASSES, run({ backend: 'cpu', seed: freshSeed() }));
    expect(
      rep.outputs.every((o) => o.bitwiseEqual),
      JSON.stringify(rep.outputs),
    ).toBe(true);
    expect(rep.ok).toBe(true);
    // Every node has a kernel (cutlass_scaled_mm's FP8 GEMM included): nothing fed, proven.
    expect(rep.fedOnComparedPaths).toEqual([]);
    expect(rep.verdict).toBe('proven');
  });
});
