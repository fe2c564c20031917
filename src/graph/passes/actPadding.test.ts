// act-padding, as vLLM's RocmAiterTritonAddRMSNormPadFusionPass (vllm/compilation/passes/fusion/
// rocm_aiter_fusion.py: AddAiterRMSNormPadPattern, registered for hidden 2880, eps 1e-5 / 1e-6 and
// x_pad_to_multiple 128 / 256) counts it on GPT-OSS: one site per layer — the post-attention
// fused_add_rms_norm, whose output the router GEMM and the MoE's pad read; the platform gate
// (pass_manager.py: ROCm with AITER) names every candidate site elsewhere; the all-reduce fusion,
// earlier in vLLM's order, takes the norm first at TP > 1.
import { describe, expect, it } from 'vitest';
import { parseFx } from '../fx/parse.ts';
import { printFx } from '../fx/print.ts';
import type { Graph } from '../ir.ts';
import { calledOp } from '../call.ts';
import { generateSample } from '../samples/index.ts';
import { runPipeline } from './pipeline.ts';
import type { PassOptions } from './pipeline.ts';
import { resolveVllmConfig, splitVllmArgs } from './vllmConfig.ts';

const ROCM: PassOptions = { platform: 'rocm', aiter: true };
const gptOss = (layers: number, tp: number, rocmPadMultiple?: 128 | 256): Graph =>
  parseFx(generateSample('gpt-oss-20b', { layers, tp, ...(rocmPadMultiple ? { rocmPadMultiple } : {}) }))
    .graph;
const count = (g: Graph, op: string) => g.nodes.filter((n) => calledOp(n) === op).length;
const run = (g: Graph, opts: PassOptions, passes = ['act-padding']) => runPipeline(g, passes, opts);

describe('act-padding (vLLM RocmAiterTritonAddRMSNormPadFusionPass)', () => {
  it('fuses one site per layer on the ROCm gfx942 sample (2880 → 2944, x_pad_to_multiple 128): the norms a pad follows', () => {
    for (const layers of [1, 2, 5]) {
      const g = gptOss(layers, 1, 128);
      // vLLM's rule: a fused_add_rms_norm whose output is padded — the post-attention norm of each layer.
      expect(count(g, 'aten.constant_pad_nd.default')).toBe(layers);
      const r = run(g, ROCM);
      expect(r.stages[0]!.matches, `${layers} layers`).toHaveLength(layers);
      expect(r.diagnostics).toEqual([]);
      expect(count(r.output, 'vllm.rocm_aiter_triton_add_rmsnorm_pad.default')).toBe(layers);
      expect(count(r.output, 'aten.constant_pad_nd.default')).toBe(0);
    }
  });

  it('prints the fused op and the router reading result_padded[:, :2880] (rocm_aiter_fusion.py replacement)', () => {
    const fx = printFx(run(gptOss(1, 1, 128), ROCM).output);
    expect(fx).toMatch(
      /rocm_aiter_triton_add_rmsnorm_pad = torch\.ops\.vllm\.rocm_aiter_triton_add_rmsnorm_pad\.default\(\w+, \w+, 1e-05, \w+, 128\)/,
    );
    expect(fx).toMatch(/getitem_\d+: "bf16\[s72, 2944\]" = rocm_aiter_triton_add_rmsnorm_pad\[0\]/);
    expect(fx).toMatch(
      /slice_\d+: "bf16\[s72, 2880\]" = torch\.ops\.aten\.slice\.Tensor\(getitem_\d+, 1, 0, 2880\)/,
    );
    // gfx950's 256: the sample's 3072.
    expect(printFx(run(gptOss(1, 1, 256), ROCM).output)).toMatch(/1e-05, \w+, 256\)/);
  });

  it('matches the vLLM IR fused_add_rms_norm the pattern is written against (torch.ops.vllm_ir.fused_add_rms_norm)', () => {
    const ir = parseFx(
      [
        'def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 2880]", arg2_1: "bf16[s72, 2880]", arg3_1: "bf16[2880]", arg4_1: "bf16[32, 2880]", arg5_1: "bf16[32]"):',
        '    fused_add_rms_norm = torch.ops.vllm_ir.fused_add_rms_norm.default(arg1_1, arg2_1, arg3_1, 1e-05, None);  arg1_1 = arg2_1 = arg3_1 = None',
        '    getitem: "bf16[s72, 2880]" = fused_add_rms_norm[0]',
        '    getitem_1: "bf16[s72, 2880]" = fused_add_rms_norm[1];  fused_add_rms_norm = None',
        '    t: "bf16[2880, 32]" = torch.ops.aten.t.default(arg4_1);  arg4_1 = None',
        '    addmm: "bf16[s72, 32]" = torch.ops.aten.addmm.default(arg5_1, getitem, t);  arg5_1 = t = None',
        '    constant_pad_nd: "bf16[s72, 3072]" = torch.ops.aten.constant_pad_nd.default(getitem, [0, 192], 0.0);  getitem = None',
        '    return (addmm, constant_pad_nd, getitem_1)',
      ].join('\n'),
    ).graph;
    const r = run(ir, ROCM);
    expect(r.stages[0]!.matches.map((m) => m.site)).toEqual(['fused_add_rms_norm']);
    expect(printFx(r.output)).toMatch(
      /torch\.ops\.vllm\.rocm_aiter_triton_add_rmsnorm_pad\.default\(arg1_1, arg3_1, 1e-05, arg2_1, 256\)/,
    );
    expect(printFx(r.output)).toMatch(
      /addmm: "bf16\[s72, 32\]" = torch\.ops\.aten\.addmm\.default\(arg5_1, slice, t\)/,
    );
  });

  it('lists every candidate site with the platform gate off ROCm, and with the AITER gate without AITER', () => {
    const g = gptOss(3, 1, 128);
    const hopper = run(g, { platform: 'sm90' });
    expect(hopper.stages[0]!.matches).toEqual([]);
    expect(hopper.diagnostics).toHaveLength(3);
    for (const d of hopper.diagnostics) {
      expect(d.blocker).toBe('platform');
      expect(d.reason).toContain('sm90: RocmAiterTritonAddRMSNormPadFusionPass is ROCm-only');
    }
    const noAiter = run(g, { platform: 'rocm' });
    expect(noAiter.diagnostics.map((d) => d.blocker)).toEqual(['aiter', 'aiter', 'aiter']);
  });

  it('refuses by content: a pad to no registered multiple, a wrong eps, a second reader of the norm', () => {
    const text = generateSample('gpt-oss-20b', { layers: 1, tp: 1, rocmPadMultiple: 128 });
    const odd = run(parseFx(text.replace('[0, 64], 0.0)', '[0, 100], 0.0)')).graph, ROCM);
    expect(odd.stages[0]!.matches).toEqual([]);
    expect(odd.diagnostics[0]!.reason).toMatch(
      /pads 2880 by 100: the pattern pads to a multiple of 128 or 256 \(by 64 or 192\)/,
    );
    const eps = run(parseFx(text.replaceAll('epsilon = 1e-05', 'epsilon = 1e-04')).graph, ROCM);
    expect(eps.diagnostics[0]!.reason).toContain('eps 0.0001');
    // The padded norm also returned: a third reader beside the router and the pad.
    const pad = parseFx(text).graph.nodes.find((n) => n.op === 'aten.constant_pad_nd.default')!;
    const normed = (pad.args[0] as { name: string }).name;
    const read = run(parseFx(text.replace(/return \((\w+),\)/, `return ($1, ${normed})`)).graph, ROCM);
    expect(read.stages[0]!.matches).toEqual([]);
    expect(read.diagnostics[0]!.blocker).toBe('output');
    expect(read.diagnostics[0]!.reason).toContain(`${normed}, the normed output of`);
  });

  it("is added by -O1 on ROCm with AITER for GPT-OSS's 2880, after act-quant (pass_manager.py order)", () => {
    const cfg = resolveVllmConfig(splitVllmArgs(['-O1']).vllm!, {
      platform: 'rocm',
      aiter: true,
      hiddenSize: 2880,
    });
    expect(cfg.passes).toEqual(['noop-elimination', 'act-padding', 'vllm-ir-lowering']);
    const r = runPipeline(gptOss(2, 1, 128), cfg.passes, cfg.options);
    expect(r.stages.find((s) => s.pass === 'act-padding')!.matches).toHaveLength(2);
  });

  it("leaves the norm to the all-reduce fusion, which runs first in vLLM's order, at TP 2 (pass_manager.py)", () => {
    const g = gptOss(2, 2, 256);
    const alone = run(g, ROCM);
    expect(alone.stages[0]!.matches).toHaveLength(2);
    const both = run(g, { ...ROCM, worldSize: 2 }, ['allreduce-rmsnorm', 'act-padding']);
    expect(both.stages[0]!.matches.length).toBeGreaterThanOrEqual(2);
    expect(both.stages[1]!.matches).toEqual([]);
  });
});
