import { describe, expect, it } from 'vitest';
import { parseFx } from '../fx/parse.ts';
import { printFx } from '../fx/print.ts';
import type { Graph } from '../ir.ts';
import { generateSample } from './index.ts';
import { pyFloatRepr } from '../fx/pythonLiteral.ts';
import { DEFAULT_PIPELINE, runPipeline } from '../passes/pipeline.ts';
import { functionalizedTarget } from '../call.ts';

const ops = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op);
const afTargets = (g: Graph) => g.nodes.flatMap((n) => functionalizedTarget(n) ?? []);
const shape = (g: Graph, name: string) => {
  const t = g.nodes.find((n) => n.name === name)?.type;
  return t && t.kind === 'tensor' ? t.shape : undefined;
};

describe('generated GPT-OSS graphs', () => {
  const text = generateSample('gpt-oss-20b', { layers: 3, tp: 2 });
  const { graph, warnings } = parseFx(text);

  it('are print_readable modules that import without a warning', () => {
    expect(warnings).toEqual([]);
    expect(
      text.startsWith(
        'class GraphModule(torch.nn.Module):\n    def forward(self, arg0_1: "Sym(s72)", arg1_1: "i64[s72]", arg2_1: "i64[s72]", ',
      ),
    ).toBe(true);
    expect(graph.inputs[0]!.type).toEqual({ kind: 'sym', expr: 's72' });
    // Every line FX frees a value on is that value's last reader.
    expect(text).toContain(
      'all_reduce_2: "bf16[s72, 3072]" = torch.ops.vllm.all_reduce.default(getitem_9, \'tp:0\');  getitem_9 = None',
    );
  });

  it('print back the same modulo the freeing suffixes', () => {
    const strip = (t: string) =>
      t
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => l.replace(/; {2}[\w =]+= None$/, ''));
    expect(strip(printFx(graph))).toEqual(strip(text));
  });

  it('follow vLLM per layer: pad 2880 → 3072, moe_forward, all_reduce, slice back, fused_add_rms_norm', () => {
    const pads = ops(graph, 'aten.constant_pad_nd.default');
    expect(pads.map((n) => n.args[1])).toEqual([
      [0, 192],
      [0, 192],
      [0, 192],
    ]);
    expect(
      graph.nodes.filter((n) => n.kwargs['layer_name'] !== undefined).map((n) => n.kwargs['layer_name']),
    ).toEqual([
      'model.layers.0.self_attn.attn',
      'model.layers.0.mlp.experts',
      'model.layers.1.self_attn.attn',
      'model.layers.1.mlp.experts',
      'model.layers.2.self_attn.attn',
      'model.layers.2.mlp.experts',
    ]);
    const slices = ops(graph, 'aten.slice.Tensor');
    expect(slices.map((n) => n.args.slice(1))).toEqual([
      [1, 0, 2880],
      [1, 0, 2880],
      [1, 0, 2880],
    ]);
    // 1 embedding + 2 per layer all-reduces; the first norm is rms_norm, then fused_add_rms_norm, the last one the final norm.
    expect(ops(graph, 'vllm.all_reduce.default')).toHaveLength(7);
    const norms = afTargets(graph).filter((t) => t.includes('rms_norm'));
    expect(norms).toEqual(['_C.rms_norm.default', ...Array(6).fill('_C.fused_add_rms_norm.default')]);
    expect(graph.outputs).toHaveLength(1);
    expect(graph.nodes.every((n) => n.meta.file?.startsWith('/opt/vllm/vllm/'))).toBe(true);
  });

  it('shard what vLLM shards: qkv and o_proj by tp, vocab by tp; the router and the hidden size are whole', () => {
    for (const tp of [1, 2, 4, 8]) {
      const g = parseFx(generateSample('gpt-oss-120b', { layers: 1, tp })).graph;
      const q = (64 / tp) * 64,
        kv = Math.max(1, 8 / tp) * 64;
      expect(shape(g, 'addmm'), `tp ${tp}`).toEqual(['s72', q + 2 * kv]);
      expect(shape(g, 't_1')).toEqual([q, 2880]);
      expect(shape(g, 'addmm_1')).toEqual(['s72', 128]);
      expect(shape(g, 'embedding')).toEqual(['s72', 2880]);
      const embW = g.inputs.find(
        (i) => i.type?.kind === 'tensor' && i.type.shape[1] === 2880 && i.type.shape.length === 2,
      )!;
      expect((embW.type as { shape: number[] }).shape[0]).toBe(Math.ceil(201088 / tp));
      // At TP 1 vLLM calls no all-reduce at all.
      expect(ops(g, 'vllm.all_reduce.default')).toHaveLength(tp === 1 ? 0 : 3);
    }
  });
});

describe('generated Llama graphs', () => {
  it('have a SwiGLU MLP whose down projection is all-reduced', () => {
    const g = parseFx(generateSample('llama', { layers: 2, tp: 8 })).graph;
    expect(afTargets(g)).toEqual([
      '_C.rms_norm.default',
      '_C.rotary_embedding.default',
      'vllm.unified_attention_with_output.default',
      '_C.fused_add_rms_norm.default',
      '_C.silu_and_mul.default',
      '_C.fused_add_rms_norm.default',
      '_C.rotary_embedding.default',
      'vllm.unified_attention_with_output.default',
      '_C.fused_add_rms_norm.default',
      '_C.silu_and_mul.default',
      '_C.fused_add_rms_norm.default',
    ]);
    expect(shape(g, 'mm_2')).toEqual(['s72', (2 * 14336) / 8]);
    expect(ops(g, 'aten.empty.memory_format')[0]!.args[0]).toEqual([{ kind: 'ref', name: 'arg0_1' }, 1792]);
  });
});

describe('requests', () => {
  it('refuse a layer count or TP degree the model cannot take, naming it', () => {
    expect(() => generateSample('gpt-oss-20b', { layers: 0 })).toThrow(
      'layers must be an integer from 1 to 4096, got 0',
    );
    expect(() => generateSample('gpt-oss-20b', { tp: 3 })).toThrow(
      "tp 3 does not divide gpt-oss-20b's 64 attention heads and 8 KV heads evenly",
    );
    expect(() => generateSample('nope' as never)).toThrow("unknown model 'nope'");
  });

  it('write Python float reprs', () => {
    expect([1e-5, 1e-6, 0, 7, 0.5, 1.702].map(pyFloatRepr)).toEqual([
      '1e-05',
      '1e-06',
      '0.0',
      '7.0',
      '0.5',
      '1.702',
    ]);
  });
});

describe('generated Qwen3-MoE-like graphs (Qwen3-30B-A3B)', () => {
  it('route each layer moe_forward → all_reduce → fused_add_rms_norm with nothing between, q/k normed per head', () => {
    const text = generateSample('qwen3-moe', { layers: 2, tp: 4 });
    const { graph: g, warnings } = parseFx(text);
    expect(warnings).toEqual([]);
    expect(ops(g, 'aten.constant_pad_nd.default')).toHaveLength(0);
    expect(ops(g, 'aten.slice.Tensor')).toHaveLength(0);
    // The first layer's input norm, then per layer: the q and k norms, rotary, attention, the
    // post-attention norm, the MoE, and the next layer's (or the final) norm.
    const layer = [
      '_C.rms_norm.default',
      '_C.rms_norm.default',
      '_C.rotary_embedding.default',
      'vllm.unified_attention_with_output.default',
      '_C.fused_add_rms_norm.default',
      'vllm.moe_forward.default',
      '_C.fused_add_rms_norm.default',
    ];
    expect(afTargets(g)).toEqual(['_C.rms_norm.default', ...layer, ...layer]);
    // 32 query heads and 4 KV heads of 128 over 4 ranks; the router is replicated: 128 experts.
    expect(shape(g, 'mm')).toEqual(['s72', (8 + 2 * 1) * 128]);
    expect(shape(g, 'mm_2')).toEqual(['s72', 128]);
    expect(shape(g, 'view')).toEqual(['s72', 8, 128]);
    // The MoE's [0] is all-reduced, and that all-reduce is the next norm's input.
    const moe = g.nodes.find((n) => n.kwargs['layer_name'] === 'model.layers.0.mlp.experts')!;
    const moeOut = g.nodes.find(
      (n) => n.op === 'getitem' && (n.args[0] as { name: string }).name === moe.name,
    )!;
    const ar = ops(g, 'vllm.all_reduce.default').find(
      (n) => (n.args[0] as { name: string }).name === moeOut.name,
    )!;
    const next = g.nodes.find((n) => (n.kwargs['input'] as { name?: string } | undefined)?.name === ar.name)!;
    expect(functionalizedTarget(next)).toBe('_C.fused_add_rms_norm.default');
    expect(text).toContain('epsilon = 1e-06');
  });

  it('replicate KV heads past 4 ranks and refuse a TP the heads cannot split', () => {
    const g = parseFx(generateSample('qwen3-moe', { layers: 1, tp: 8 })).graph;
    expect(shape(g, 'mm')).toEqual(['s72', (4 + 2 * 1) * 128]);
    expect(() => generateSample('qwen3-moe', { tp: 3 })).toThrow(
      "tp 3 does not divide qwen3-moe's 32 attention heads and 4 KV heads evenly",
    );
  });

  it('fuse every all-reduce with its norm: 2L + 1 = 97 sites at 48 layers (vLLM e2e), at TP 2, 4 and 8', () => {
    for (const tp of [2, 4, 8]) {
      const g = parseFx(generateSample('qwen3-moe', { tp })).graph;
      expect(ops(g, 'vllm.all_reduce.default'), `tp ${tp}`).toHaveLength(97);
      const r = runPipeline(g, DEFAULT_PIPELINE, { worldSize: tp });
      expect(r.stages.find((s) => s.pass === 'allreduce-rmsnorm')!.matches, `tp ${tp}`).toHaveLength(97);
      expect(r.stages.find((s) => s.pass === 'slice-hoist')!.matches).toHaveLength(0);
      expect(r.diagnostics).toEqual([]);
    }
  });
});
