// Roles of graph inputs from how the graph uses them: declared with each op's lowering, passed
// back through views, and the two that depend on context — the GEMM computing an MoE's router
// logits (replicated router weights) and the bias add async-tp splits out of addmm.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../../graph/fx/parse.ts';
import { buildPlan } from '../plan.ts';
import { roleHints } from './roles.ts';

const graph = (body: string, params: string) =>
  parseFx(
    `class M(torch.nn.Module):\n    def forward(self, ${params}):\n${body.replace(/^/gm, '        ')}\n`,
  ).graph;

describe('role hints', () => {
  it('the MoE router GEMM holds router weights (seeded alike on every rank); another addmm plain ones', () => {
    const g = graph(
      [
        'permute: "bf16[2880, 32]" = torch.ops.aten.permute.default(router_w, [1, 0])',
        'addmm: "bf16[s72, 32]" = torch.ops.aten.addmm.default(router_b, x, permute)',
        't: "bf16[2880, 64]" = torch.ops.aten.t.default(w)',
        'addmm_1: "bf16[s72, 64]" = torch.ops.aten.addmm.default(b, x, t)',
        'pad: "bf16[s72, 3072]" = torch.ops.aten.constant_pad_nd.default(x, [0, 192], 0.0)',
        'moe: "bf16[s72, 3072]" = torch.ops.vllm.moe_forward.default(pad, addmm, \'model.layers.0.mlp.experts\')',
        'return (moe, addmm_1)',
      ].join('\n'),
      'x: "bf16[s72, 2880]", router_w: "bf16[32, 2880]", router_b: "bf16[32]", w: "bf16[64, 2880]", b: "bf16[64]"',
    );
    const hints = roleHints(g);
    expect(Object.fromEntries(['router_w', 'router_b', 'w', 'b', 'x'].map((k) => [k, hints.get(k)]))).toEqual(
      {
        router_w: 'router-weight',
        router_b: 'router-bias',
        w: 'weight',
        b: 'bias',
        x: undefined,
      },
    );
    const seeds = buildPlan(g, { preset: 'tiny', dtype: 'bf16', ranks: 2 }).steps.filter(
      (s) => s.kernel === 'seed',
    );
    const perRank = Object.fromEntries(seeds.map((s) => [s.name, s.kernel === 'seed' && s.perRank]));
    expect(perRank).toMatchObject({ router_w: false, router_b: false, w: true, b: true, x: false });
  });

  it("async-tp's bias add after the fused all-gather matmul reads a bias; another add an activation", () => {
    const g = graph(
      [
        't: "bf16[40, 64]" = torch.ops.aten.t.default(w)',
        "fused = torch.ops.symm_mem.fused_all_gather_matmul.default(x, [t], 0, 'tp:0')",
        'getitem = fused[1]',
        'getitem_1: "bf16[s72, 64]" = getitem[0]',
        'add: "bf16[s72, 64]" = torch.ops.aten.add.Tensor(getitem_1, b)',
        'add_1: "bf16[s72, 64]" = torch.ops.aten.add.Tensor(add, y)',
        'return (add_1,)',
      ].join('\n'),
      'x: "bf16[s72, 40]", w: "bf16[64, 40]", b: "bf16[64]", y: "bf16[s72, 64]"',
    );
    const hints = roleHints(g);
    expect([hints.get('w'), hints.get('b'), hints.get('y')]).toEqual(['weight', 'bias', undefined]);
  });

  it('reads auto_functionalized_v2 calls too (the norm weight of a v2 rms_norm)', () => {
    const g = graph(
      [
        'empty: "bf16[s72, 40]" = torch.ops.aten.empty.memory_format([s72, 40], dtype = torch.bfloat16)',
        'auto_functionalized_v2 = torch.ops.higher_order.auto_functionalized_v2(torch.ops._C.rms_norm.default, input = x, weight = gamma, epsilon = 1e-05, _result_base_index = 0, _all_bases = [empty])',
        'getitem_1: "bf16[s72, 40]" = auto_functionalized_v2[1]',
        'return (getitem_1,)',
      ].join('\n'),
      's72: "Sym(s72)", x: "bf16[s72, 40]", gamma: "bf16[40]"',
    );
    expect(roleHints(g).get('gamma')).toBe('norm-weight');
  });

  it('token ids pass back through the vocabulary mask to the embedding indices', () => {
    const g = graph(
      [
        'ge: "b8[s72]" = torch.ops.aten.ge.Scalar(ids, 0)',
        'lt: "b8[s72]" = torch.ops.aten.lt.Scalar(ids, 97)',
        'bitwise_and: "b8[s72]" = torch.ops.aten.bitwise_and.Tensor(ge, lt)',
        'mul: "i64[s72]" = torch.ops.aten.mul.Tensor(ids, bitwise_and)',
        'embedding: "bf16[s72, 40]" = torch.ops.aten.embedding.default(wte, mul)',
        'return (embedding,)',
      ].join('\n'),
      'ids: "i64[s72]", wte: "bf16[97, 40]"',
    );
    const hints = roleHints(g);
    expect([hints.get('wte'), hints.get('ids'), hints.get('bitwise_and'), hints.get('ge')]).toEqual([
      'embedding',
      'indices',
      'indices',
      'indices',
    ]);
  });
});
