// rope-kvcache (vLLM's RopeKVCacheFusionPass, vllm/compilation/passes/fusion/rope_kvcache_fusion.py) on
// vLLM's QKRoPEKVCacheTestModel as torch.compile captured it (fixtures/capture/tp/rope-kvcache.*;
// tests/compile/passes/test_rope_kvcache_fusion.py asserts matched_count == 1 on ROCm), and why it
// does not fire elsewhere: the platform, the compile range, a graph with no cache update.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import type { Graph } from '../ir.ts';
import { ref } from '../ir.ts';
import type { PassOptions } from './pipeline.ts';
import { runPipeline } from './pipeline.ts';
import { ropeKvCache } from './ropeKvCache.ts';
import { resolveVllmConfig, splitVllmArgs } from './vllmConfig.ts';

const DIR = new URL('../../../fixtures/capture/', import.meta.url).pathname;
const load = (file: string): Graph =>
  importGraph(readFileSync(DIR + file, 'utf8'), { fileName: file.split('/').pop() }).graph;
const TEST_MODEL = 'tp/rope-kvcache.neox.bf16.py';
const run = (g: Graph, opts: PassOptions) => ropeKvCache(g, opts);
const target = (n: { args: unknown[] }) => (n.args[0] as { target?: string } | undefined)?.target;

describe('rope-kvcache on ROCm', () => {
  it.each([
    ['tp/rope-kvcache.neox.bf16.py', true],
    ['tp/rope-kvcache.gptj.bf16.py', false],
  ] as const)(
    '%s: one site, the fused op as RopeReshapeKVCachePattern.replacement writes it',
    (file, neox) => {
      const r = run(load(file), { platform: 'rocm' });
      expect(r.matches).toHaveLength(1);
      // The compile range is not evaluated under the default token gate: the match says so.
      expect(r.matches[0]!.unevaluated![0]).toContain('≤ 256 tokens (rope_kvcache_fusion_max_token_num)');
      const fused = r.graph.nodes.filter(
        (n) => target(n) === 'vllm.fused_rope_and_unified_kv_cache_update.default',
      );
      expect(fused).toHaveLength(1);
      expect(fused[0]!.kwargs).toMatchObject({
        positions: ref('arg4_1'),
        cos_sin_cache: ref('arg2_1'),
        is_neox: neox,
        layer_name: 'model.layers.0.self_attn.attn',
      });
      // Rotary, cache update and functionalization's write-backs are gone; the q, k heads and the
      // update's token are the fused op's results [1], [2], [0]; v is the new split's view.
      const ops = r.graph.nodes.map((n) => target(n) ?? n.op);
      expect(ops.filter((o) => /rotary|^vllm\.unified_kv_cache_update|slice_scatter/.test(o))).toEqual([]);
      const byName = new Map(r.graph.nodes.map((n) => [n.name, n]));
      const outs = r.graph.outputs!.map((o) => byName.get((o as { name: string }).name)!);
      expect(
        outs.map((n) => (n.op === 'getitem' ? [(n.args[0] as { name: string }).name, n.args[1]] : n.op)),
      ).toEqual([[fused[0]!.name, 1], [fused[0]!.name, 2], 'aten.reshape.default', [fused[0]!.name, 0]]);
    },
  );

  it('under the compile-range token gate: fused at ≤ 256 tokens, refused above with the range named', () => {
    const g = load(TEST_MODEL);
    expect(run(g, { platform: 'rocm', tokenGate: 'compile-range', maxTokens: 256 }).matches).toHaveLength(1);
    const r = run(g, { platform: 'rocm', tokenGate: 'compile-range', maxTokens: 8192 });
    expect(r.matches).toEqual([]);
    expect(r.diagnostics.map((d) => [d.node, d.blocker, d.reason])).toEqual([
      [
        'auto_functionalized',
        'compile-range',
        'the compile range ends at 8192 tokens > rope_kvcache_fusion_max_token_num 256: is_applicable_for_range keeps the fusion to decode-size batches',
      ],
    ]);
  });
});

describe('rope-kvcache: why it does not fire', () => {
  it('on CUDA the platform gate is named for the site', () => {
    const r = run(load(TEST_MODEL), { platform: 'sm90' });
    expect(r.matches).toEqual([]);
    expect(r.diagnostics).toEqual([
      {
        pass: 'rope-kvcache',
        node: 'auto_functionalized',
        blocker: 'platform',
        reason:
          "platform sm90: only ROCm's attention backends implement fused_rope_kvcache_supported(), so RopeKVCacheFusionPass registers no pattern here (fuse_rope_kvcache is a ROCm fusion)",
      },
    ]);
  });

  it('a graph whose attention writes the cache itself (no unified_kv_cache_update) has no candidate', () => {
    const r = run(load('llama-tp2.py'), { platform: 'rocm' });
    expect(r.matches).toEqual([]);
    expect(r.diagnostics).toEqual([]);
  });

  it('a rotated key read outside the site, named with its reader', () => {
    const text = readFileSync(DIR + TEST_MODEL, 'utf8').replace(
      'return (view_5, view_3, view_4, unified_kv_cache_update)',
      'return (view_5, view_3, view_4, unified_kv_cache_update, getitem_5)',
    );
    const r = run(importGraph(text, { fileName: 'x.py' }).graph, { platform: 'rocm' });
    expect(r.matches).toEqual([]);
    expect(r.diagnostics[0]!.reason).toContain("is also read by the graph's return");
  });
});

describe('fuse_rope_kvcache runs rope-kvcache, the platform in the pass options', () => {
  it('-O2 on ROCm with AITER and the custom rotary: vLLM’s order, the platform passed on', () => {
    const { vllm } = splitVllmArgs(['-O2', '-cc.custom_ops=["+rotary_embedding"]']);
    const c = resolveVllmConfig(vllm!, { platform: 'rocm', aiter: true });
    expect(c.passes).toContain('rope-kvcache');
    expect(c.options.platform).toBe('rocm');
    const r = runPipeline(load(TEST_MODEL), c.passes, c.options);
    expect(r.stages.find((s) => s.pass === 'rope-kvcache')!.matches).toHaveLength(1);
  });
});
