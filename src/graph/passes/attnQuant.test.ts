// attn-quant, as vLLM's AttnQuantFusionPass (vllm/compilation/passes/fusion/attn_quant_fusion.py @
// 007b5e0b) counts it: the attention's output reshaped to [tokens, heads · head_size] and quantized
// (static FP8, custom and native; NVFP4 custom) becomes one unified_attention_with_output with
// output_scale; the gates — the attention backend (fused_output_quant_supported), a dynamic scale,
// a second reader, the dtype — refuse by content and name the node or the backend assumed.
import { describe, expect, it } from 'vitest';
import { printFx } from '../fx/print.ts';
import type { Graph } from '../ir.ts';
import { calledOp } from '../call.ts';
import { runPipeline } from './pipeline.ts';
import type { PassOptions } from './pipeline.ts';
import { resolveVllmConfig, splitVllmArgs } from './vllmConfig.ts';
import { attentionGraph } from './attnQuantForms.ts';

const run = (g: Graph, opts: PassOptions = {}) => runPipeline(g, ['attn-quant'], opts);
const attentions = (g: Graph) =>
  g.nodes.filter((n) => calledOp(n) === 'vllm.unified_attention_with_output.default');

describe('attn-quant (vLLM AttnQuantFusionPass)', () => {
  it('fuses the custom static quant into the attention on TRITON_ATTN: output_scale set, an fp8 [T, heads, head_size] buffer, the FX text vLLM prints', () => {
    const r = run(attentionGraph(), { attentionBackend: 'TRITON_ATTN' });
    expect(r.stages[0]!.matches.map((m) => m.site)).toEqual(['auto_functionalized_4']);
    expect(r.stages[0]!.matches[0]!.unevaluated).toEqual([
      'fused_output_quant_supported of the TRITON_ATTN attention backend (as given)',
    ]);
    expect(r.diagnostics).toEqual([]);
    const ops = r.output.nodes.map(calledOp);
    expect(ops).not.toContain('_C.static_scaled_fp8_quant.default');
    const fx = printFx(r.output);
    // attn_quant_fusion.py:91-107 — the replacement's buffer, the attention with output_scale, the reshape.
    expect(fx).toContain(
      'empty: "f8e4m3fn[s72, 16, 16]" = torch.ops.aten.empty.memory_format([arg0_1, 16, 16], dtype = torch.float8_e4m3fn',
    );
    expect(fx).toMatch(
      /torch\.ops\.vllm\.unified_attention_with_output\.default, query = view_4, key = view_5, value = view_3, output = empty, layer_name = 'model\.layers\.0\.self_attn\.attn', output_scale = arg4_1, output_block_scale = None\)/,
    );
    expect(fx).toContain(
      'reshape: "f8e4m3fn[s72, 256]" = torch.ops.aten.reshape.default(getitem, [-1, 256])',
    );
    expect(fx).toMatch(/return \(reshape,\)/);
    // The bf16 output buffer (empty_3 / view_1) is dead with the pattern's output_attn input: gone.
    expect(r.output.nodes.map((n) => n.name)).not.toContain('empty_3');
  });

  it('matches the native static quant (QuantFP8.forward_native) as MatcherQuantFP8 does', () => {
    const r = run(attentionGraph({ quant: 'native' }), { attentionBackend: 'TRITON_ATTN' });
    expect(r.stages[0]!.matches).toHaveLength(1);
    expect(r.output.nodes.map(calledOp)).not.toContain('aten.clamp_max.default');
    expect(attentions(r.output)[0]!.kwargs['output_scale']).toEqual({ kind: 'ref', name: 'arg4_1' });
  });

  it("refuses on vLLM's default backend per platform and names it: FLASH_ATTN on sm90, FLASHINFER without an FP8 KV cache on sm100", () => {
    const hopper = run(attentionGraph());
    expect(hopper.stages[0]!.matches).toEqual([]);
    expect(hopper.diagnostics).toHaveLength(1);
    expect(hopper.diagnostics[0]!.node).toBe('auto_functionalized_4');
    expect(hopper.diagnostics[0]!.blocker).toBe('attention backend FLASH_ATTN');
    expect(hopper.diagnostics[0]!.reason).toContain("FLASH_ATTN attention backend (vLLM's default on sm90");
    expect(hopper.diagnostics[0]!.reason).toContain('fused_output_quant_supported is False');
    const blackwell = run(attentionGraph(), { platform: 'sm100' });
    expect(blackwell.diagnostics[0]!.reason).toContain(
      "FLASHINFER attention backend (vLLM's default on sm100",
    );
    expect(blackwell.diagnostics[0]!.reason).toContain('quantized KV cache');
    expect(run(attentionGraph(), { platform: 'sm100', kvCacheDtype: 'fp8' }).stages[0]!.matches).toHaveLength(
      1,
    );
    // ROCm's default ROCM_ATTN fuses FP8 static (RocmAttentionImpl.fused_output_quant_supported).
    expect(run(attentionGraph(), { platform: 'rocm' }).stages[0]!.matches[0]!.unevaluated).toEqual([
      "fused_output_quant_supported of the ROCM_ATTN attention backend (vLLM's default on rocm; the graph names none)",
    ]);
  });

  it('refuses a dynamic scale, a second reader of the attention output and an f32 attention on a bf16-only backend, naming each', () => {
    const dyn = run(attentionGraph({ quant: 'dynamic' }), { attentionBackend: 'TRITON_ATTN' });
    expect(dyn.stages[0]!.matches).toEqual([]);
    expect(dyn.diagnostics[0]!.reason).toContain('computes its scale at run time');
    expect(dyn.diagnostics[0]!.blocker).toBe('auto_functionalized_6');
    const read = run(attentionGraph({ extraReader: true }), { attentionBackend: 'TRITON_ATTN' });
    expect(read.stages[0]!.matches).toEqual([]);
    expect(read.diagnostics[0]!.reason).toContain(
      "getitem_37, the output of the attention at auto_functionalized_4, is also read by the graph's return",
    );
    expect(read.diagnostics[0]!.blocker).toBe('output');
    const f32 = run(attentionGraph({ dtype: 'f32' }), {
      attentionBackend: 'ROCM_AITER_UNIFIED_ATTN',
      platform: 'rocm',
    });
    expect(f32.diagnostics[0]!.reason).toContain('is f32: ROCM_AITER_UNIFIED_ATTN runs f16 or bf16 only');
    expect(
      run(attentionGraph({ dtype: 'f32' }), { attentionBackend: 'TRITON_ATTN' }).stages[0]!.matches,
    ).toHaveLength(1);
  });

  it('fuses NVFP4 (AttnNvfp4QuantPattern) only with FLASHINFER on sm100 and an FP8 KV cache: a u8 [T, heads, head_size / 2] output, the block scales written in place', () => {
    const g = attentionGraph({ quant: 'nvfp4' });
    const hopper = run(g, { attentionBackend: 'TRITON_ATTN' });
    expect(hopper.stages[0]!.matches).toEqual([]);
    expect(hopper.diagnostics[0]!.reason).toContain(
      'TritonAttentionImpl fuses a static per-tensor FP8 quant only',
    );
    const r = run(g, { platform: 'sm100', kvCacheDtype: 'fp8' });
    expect(r.stages[0]!.matches).toHaveLength(1);
    const fx = printFx(r.output);
    // attn_quant_fusion.py:195-213 — the uint8 buffer, output_scale = the global scale, the block scales.
    expect(fx).toContain(
      '"u8[s72, 16, 8]" = torch.ops.aten.empty.memory_format([arg0_1, 16, 8], dtype = torch.uint8',
    );
    expect(fx).toMatch(/output_scale = arg4_1, output_block_scale = empty_5\)/);
    expect(fx).toMatch(/return \(reshape, getitem_1\)/);
    expect(r.output.nodes.map(calledOp)).not.toContain('_C.scaled_fp4_quant.default');
  });

  it('runs from -O2 -cc.pass_config.fuse_attn_quant=true after norm-quant / act-quant (pass_manager.py order), on ROCm', () => {
    const cfg = resolveVllmConfig(
      splitVllmArgs(['-O2', '-cc.pass_config.fuse_attn_quant=true', '-cc.custom_ops=["+quant_fp8"]']).vllm!,
      { platform: 'rocm' },
    );
    expect(cfg.passes).toEqual([
      'noop-elimination',
      'norm-quant',
      'act-quant',
      'attn-quant',
      'vllm-ir-lowering',
    ]);
    const r = runPipeline(attentionGraph(), cfg.passes, cfg.options);
    expect(r.stages.find((s) => s.pass === 'attn-quant')!.matches).toHaveLength(1);
    // norm-quant, before it, explains the quant (no norm feeds it) but does not take it.
    expect(r.stages.find((s) => s.pass === 'norm-quant')!.matches).toEqual([]);
  });
});
