import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseFx } from './fx/parse.ts';
import { generateSample } from './samples/index.ts';
import { groupNodes } from './groups.ts';
import { opKind } from './ops.ts';
import { calledOp } from './call.ts';

const fixture = (f: string) =>
  parseFx(readFileSync(new URL(`../../fixtures/fx/${f}`, import.meta.url), 'utf8')).graph;

describe('groupNodes', () => {
  it('groups the real Qwen2 TP2 dump into its one decoder layer, from the input norm on', () => {
    const g = fixture('real/qwen2-paral2_layer1-r0.py');
    const { groups, groupOf, source } = groupNodes(g);
    expect(source).toBe('layer_name');
    expect(groups.map((x) => [x.id, x.label])).toEqual([['model.layers.0', 'layer 0']]);
    // The embedding and its all-reduce come before the layer; the layer opens with the norm.
    for (const n of ['ge', 'embedding', 'masked_fill', 'all_reduce']) expect(groupOf.has(n)).toBe(false);
    const firstOp = groups[0].members.find((m) => g.nodes.some((n) => n.name === m))!;
    expect(firstOp).toBe('auto_functionalized');
    expect(calledOp(g.nodes.find((n) => n.name === firstOp)!)).toBe('_C.rms_norm.default');
    expect(groups[0].members[groups[0].members.length - 1]).toBe('getitem_34');
    // Weights read only inside the layer join it; the embedding table does not.
    expect(groupOf.get('arg3_1')).toBe('model.layers.0');
    expect(groupOf.has('arg1_1')).toBe(false);
  });

  it('opens each layer of the auto_functionalized_v2 capture at its input norm, as in its v1 twin', () => {
    const capture = (f: string) =>
      parseFx(readFileSync(new URL(`../../fixtures/capture/${f}`, import.meta.url), 'utf8')).graph;
    const firstOps = (f: string) => {
      const g = capture(f);
      return groupNodes(g).groups.map((grp) => {
        const first = g.nodes.find((n) => grp.members.includes(n.name))!;
        return [grp.id, calledOp(first)];
      });
    };
    const v1 = firstOps('llama-tp2.py');
    expect(v1).toEqual([
      ['model.layers.0', '_C.rms_norm.default'],
      ['model.layers.1', '_C.fused_add_rms_norm.default'],
    ]);
    expect(firstOps('llama-tp2-v2.py')).toEqual(v1);
  });

  it('finds the layers of the Megatron dump from its # File: comments alone', () => {
    const g = fixture('real/gpt-paral2_layer8-r0.py');
    const { groups, groupOf, source } = groupNodes(g);
    expect(source).toBe('file');
    expect(groups.map((x) => x.id)).toEqual([
      'layers.0',
      'layers.1',
      'layers.2',
      'layers.3',
      'layers.4',
      'layers.5',
      'layers.6',
      'layers.7',
    ]);
    // Identical layers get identical groups (the last one runs to the end of the layer ops).
    expect(groups.slice(0, 7).map((x) => x.members.length)).toEqual([84, 84, 84, 84, 84, 84, 84]);
    expect(groups[1].members[0]).toBe('primals_19');
    // The loss after the last layer is not a layer.
    expect(groupOf.has(g.nodes[g.nodes.length - 1].name)).toBe(false);
    expect(g.nodes[g.nodes.length - 1].meta.file).toMatch(/cross_entropy|language_module|schedules/);
  });

  it('puts each GPT-OSS MoE with its all-reduce and slice, 24 layers', () => {
    const g = parseFx(generateSample('gpt-oss-20b', { layers: 24, tp: 4 })).graph;
    const { groups, groupOf } = groupNodes(g);
    expect(groups.map((x) => x.index)).toEqual([...Array(24).keys()]);
    const byName = new Map(g.nodes.map((n) => [n.name, n]));
    const slices = g.nodes.filter((n) => n.op === 'aten.slice.Tensor');
    expect(slices.length).toBe(24);
    for (const s of slices) {
      // slice ← all_reduce ← getitem ← moe_forward, all in one group.
      const ar = byName.get((s.args[0] as { name: string }).name)!;
      const item = byName.get((ar.args[0] as { name: string }).name)!;
      const moe = byName.get((item.args[0] as { name: string }).name)!;
      expect(ar.op).toBe('vllm.all_reduce.default');
      expect(calledOp(moe)).toBe('vllm.moe_forward.default');
      expect(new Set([groupOf.get(s.name), groupOf.get(ar.name), groupOf.get(moe.name)]).size).toBe(1);
      expect(groupOf.get(moe.name)).toBe(
        `model.layers.${/layers\.(\d+)/.exec(String(moe.kwargs.layer_name))![1]}`,
      );
    }
    // Every layer opens with a norm.
    for (const grp of groups) {
      const first = grp.members.map((m) => byName.get(m)).find((n) => n)!;
      expect(['norm', 'fused']).toContain(opKind(calledOp(first)));
    }
  });

  it('leaves a graph with no layer evidence ungrouped', () => {
    const g = parseFx(
      'add: "f32[4]" = torch.ops.aten.add.Tensor(x, y)\nmul: "f32[4]" = torch.ops.aten.mul.Tensor(add, x)\n',
    ).graph;
    const r = groupNodes(g);
    expect(r.source).toBe('none');
    expect(r.groups).toEqual([]);
    expect(r.groupOf.size).toBe(0);
  });
});
