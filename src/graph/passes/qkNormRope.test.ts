// qk-norm-rope (vLLM's QKNormRoPEFusionPass, vllm/compilation/passes/fusion/qk_norm_rope_fusion.py)
// on graphs torch.compile printed: vLLM's QKNormRoPETestModel (fixtures/capture/tp/qk-norm-rope.*,
// tests/compile/passes/test_qk_norm_rope_fusion.py, which asserts matched_count == 1) and the Qwen3
// capture; every refusal names the node or gate.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import type { Graph, Node } from '../ir.ts';
import { ref } from '../ir.ts';
import { runPipeline } from './pipeline.ts';
import { qkNormRope } from './qkNormRope.ts';
import { resolveVllmConfig, splitVllmArgs } from './vllmConfig.ts';
import { generateSample } from '../samples/index.ts';

const DIR = new URL('../../../fixtures/capture/', import.meta.url).pathname;
const text = (file: string) => readFileSync(DIR + file, 'utf8');
const load = (t: string): Graph => importGraph(t, { fileName: 'graph.py' }).graph;
const TEST_MODEL = text('tp/qk-norm-rope.rms_norm-on.neox.bf16.py');
const fusedCalls = (g: Graph): Node[] =>
  g.nodes.filter(
    (n) => n.args[0] && (n.args[0] as { target?: string }).target === '_C.fused_qk_norm_rope.default',
  );
const run = (g: Graph) => qkNormRope(g, {});

describe('qk-norm-rope: the fused op as vLLM writes it', () => {
  it.each([
    ['tp/qk-norm-rope.rms_norm-on.neox.bf16.py', true, 1e-6],
    ['tp/qk-norm-rope.rms_norm-off.gptj.f16.py', false, 1e-5],
    ['tp/qk-norm-rope.rms_norm-off.neox.bf16.py', true, 1e-6],
  ] as const)(
    '%s: one site, QkNormRopePattern.replacement’s keywords, q/k/v read from the new split',
    (file, neox, eps) => {
      const before = load(text(file));
      const r = run(before);
      expect(r.matches).toHaveLength(1);
      const [call] = fusedCalls(r.graph);
      expect(call!.kwargs).toEqual({
        qkv: ref('arg1_1'),
        num_heads_q: 16,
        num_heads_k: 4,
        num_heads_v: 4,
        head_dim: 128,
        eps: { kind: 'float', value: eps },
        q_weight: ref('arg2_1'),
        k_weight: ref('arg3_1'),
        cos_sin_cache: ref('arg4_1'),
        is_neox: neox,
        position_ids: ref('arg6_1'),
      });
      // No norm, rotary or the old split is left; the outputs are the three parts of the new split.
      const ops = r.graph.nodes.map((n) => (n.args[0] as { target?: string } | undefined)?.target ?? n.op);
      expect(ops.filter((o) => /rms_norm|rotary|rsqrt/.test(o))).toEqual([]);
      const split = r.graph.nodes.filter((n) => n.op === 'aten.split_with_sizes.default');
      expect(split).toHaveLength(1);
      expect(split[0]!.args.slice(1)).toEqual([[2048, 512, 512], -1]);
      const byName = new Map(r.graph.nodes.map((n) => [n.name, n]));
      expect(
        r.graph.outputs!.map((o) => {
          const n = byName.get((o as { name: string }).name)!;
          return [n.op, (n.args[0] as { name: string }).name, n.args[1]];
        }),
      ).toEqual([0, 1, 2].map((i) => ['getitem', split[0]!.name, i]));
    },
  );

  it('matches the norm in its vLLM IR form', () => {
    const ir = TEST_MODEL.replace(/empty: .*\n/, '')
      .replace(/empty_1: .*\n/, '')
      .replace(
        /auto_functionalized = .*\n\s*getitem_4: (.*) = auto_functionalized\[1\].*\n/,
        'getitem_4: $1 = torch.ops.vllm_ir.rms_norm.default(view, arg2_1, 1e-06)\n',
      )
      .replace(
        /auto_functionalized_1 = .*\n\s*getitem_6: (.*) = auto_functionalized_1\[1\].*\n/,
        'getitem_6: $1 = torch.ops.vllm_ir.rms_norm.default(view_2, arg3_1, 1e-06)\n',
      );
    expect(ir).toContain('vllm_ir.rms_norm');
    expect(run(load(ir)).matches).toHaveLength(1);
  });

  it('fuses each layer of the Qwen3 capture: 2 sites (one per attention layer)', () => {
    const r = runPipeline(load(text('qwen3-qknorm-tp1.py')), ['noop-elimination', 'qk-norm-rope']);
    expect(r.stages[1]!.matches.map((m) => m.site)).toHaveLength(2);
    expect(r.stages[1]!.diagnostics).toEqual([]);
  });
});

describe('qk-norm-rope: why a site does not fuse', () => {
  const why = (t: string) => run(load(t)).diagnostics;

  it('the native rotary: vLLM turns +rotary_embedding on with this flag', () => {
    const [d, ...rest] = why(text('tp/qk-norm-rope.rotary_embedding-off.gptj.bf16.py'));
    expect(rest).toEqual([]);
    expect(d).toMatchObject({ pass: 'qk-norm-rope', node: 'index', blocker: 'index' });
    expect(d!.reason).toContain(
      "appends '+rotary_embedding' to custom_ops (vllm/config/compilation.py, issue #28042)",
    );
  });

  it('head_dim 16 (the Qwen3-MoE capture): the kernel is built for 64, 128 and 256', () => {
    const ds = why(text('qwen3-moe-tp4.py'));
    expect(ds.map((d) => d.node)).toEqual(['auto_functionalized_3', 'auto_functionalized_10']);
    expect(ds[0]!.reason).toMatch(/^head_dim 16: .*SUPPORTED_FUSED_QK_NORM_ROPE_HEAD_DIMS/);
  });

  it('a normed head read outside the site, named with its reader', () => {
    const t = TEST_MODEL.replace(
      'return (getitem_8, getitem_9, getitem_2)',
      'return (getitem_8, getitem_9, getitem_2, getitem_4)',
    );
    const [d] = why(t);
    expect(d!.reason).toContain(
      "getitem_4, inside the QK-norm + RoPE site at auto_functionalized_2, is also read by the graph's return",
    );
    expect(d!.blocker).toBe('output');
  });

  it('an eps vLLM registers no pattern for, and two different eps', () => {
    expect(why(TEST_MODEL.replaceAll('epsilon = 1e-06', 'epsilon = 0.0001'))[0]!.reason).toBe(
      'eps 1e-4 / 1e-4 of the norms at auto_functionalized and auto_functionalized_1: vLLM registers QkNormRopePattern for one eps, 1e-5 or 1e-6',
    );
    const mixed = TEST_MODEL.replace(/(weight = arg3_1, epsilon = )1e-06/, '$11e-05');
    expect(why(mixed)[0]!.reason).toMatch(/^eps 1e-6 \/ 1e-5 of the norms/);
  });

  it('a model dtype other than bf16 / f16', () => {
    const f32 = TEST_MODEL.replaceAll('bf16[', 'f32[').replaceAll('torch.bfloat16', 'torch.float32');
    expect(why(f32)[0]!.reason).toBe(
      'the model dtype is f32: QKNormRoPEFusionPass registers its patterns for bf16 and f16 only',
    );
  });

  it('per-head norms no rotary reads', () => {
    const t = TEST_MODEL.replace(
      /\s*auto_functionalized_2 = .*\n\s*getitem_8: .*\n\s*getitem_9: .*\n/,
      '\n',
    ).replace('return (getitem_8, getitem_9, getitem_2)', 'return (view_4, view_5, getitem_2)');
    expect(why(t).map((d) => [d.node, d.reason])).toEqual([
      [
        'auto_functionalized',
        'the per-head rms_norm at auto_functionalized is read by view_4, not by a rotary embedding through a reshape to [T, heads · head_dim]',
      ],
      [
        'auto_functionalized_1',
        'the per-head rms_norm at auto_functionalized_1 is read by view_5, not by a rotary embedding through a reshape to [T, heads · head_dim]',
      ],
    ]);
  });
});

describe('enable_qk_norm_rope_fusion runs qk-norm-rope', () => {
  it('at vLLM’s place: after the norm / activation quant fusions, before the IR lowering', () => {
    const { vllm } = splitVllmArgs([
      '-O2',
      '-cc.pass_config.enable_qk_norm_rope_fusion=true',
      '-cc.pass_config.fuse_norm_quant=true',
    ]);
    const c = resolveVllmConfig(vllm!);
    expect(c.passes).toEqual(['noop-elimination', 'norm-quant', 'qk-norm-rope', 'vllm-ir-lowering']);
    expect(c.notRun.map((f) => f.flag)).not.toContain('enable_qk_norm_rope_fusion');
  });
});

describe('the Qwen3-8B sample (src/graph/samples/qwen3.ts)', () => {
  it('one QK-norm + RoPE site per layer, beside Llama’s 2L + 1 all-reduce + RMSNorm sites at TP 4', () => {
    const g = load(generateSample('qwen3', { layers: 36, tp: 4 }));
    const r = runPipeline(g, ['noop-elimination', 'allreduce-rmsnorm', 'qk-norm-rope'], { worldSize: 4 });
    expect(r.stages.map((s) => [s.pass, s.matches.length, s.diagnostics.length])).toEqual([
      ['noop-elimination', 0, 0],
      ['allreduce-rmsnorm', 73, 0],
      ['qk-norm-rope', 36, 0],
    ]);
  });
});
