import { describe, expect, it } from 'vitest';
import { GraphBuilder, parseType } from './build.ts';
import { float, ref } from './ir.ts';
import { P, findAll, indexGraph, matchAt } from './match.ts';

function block() {
  const b = new GraphBuilder();
  b.input('x', 'bf16[s72, 2880]');
  b.input('res', 'bf16[s72, 2880]');
  b.input('w', 'bf16[2880]');
  b.node('all_reduce', 'vllm.all_reduce.default', [ref('x'), 'tp:0'], {}, 'bf16[s72, 2880]');
  b.functionalized('auto_functionalized', '_C.fused_add_rms_norm.default', {
    input: ref('all_reduce'),
    residual: ref('res'),
    weight: ref('w'),
    epsilon: float(1e-5),
  });
  b.node('getitem', 'getitem', [ref('auto_functionalized'), 1], {}, 'bf16[s72, 2880]');
  b.node(
    'all_reduce_1',
    'vllm.all_reduce.default',
    [ref('getitem')],
    { group_name: 'tp:0' },
    'bf16[s72, 2880]',
  );
  b.output(ref('all_reduce_1'));
  return b.build();
}

describe('pattern matcher', () => {
  const ix = indexGraph(block());
  const norm = P.af(
    '_C.fused_add_rms_norm.default',
    {
      input: P.node('vllm.all_reduce.default', { as: 'ar', args: [P.any('x'), P.lit('tp:0')], users: 1 }),
      residual: P.any('residual'),
      weight: P.any('w'),
      epsilon: P.any('eps', (a) => (a as { value: number }).value === 1e-5),
    },
    { as: 'norm' },
  );

  it('binds nodes and captures through auto_functionalized kwargs', () => {
    const found = findAll(norm, ix);
    expect(found).toHaveLength(1);
    const b = found[0]!.bindings;
    expect(b.nodes['ar']!.name).toBe('all_reduce');
    expect(b.nodes['norm']!.name).toBe('auto_functionalized');
    expect(b.values).toEqual({ x: ref('x'), residual: ref('res'), w: ref('w'), eps: float(1e-5) });
  });

  it('reads an argument passed as a keyword by its schema position', () => {
    const p = P.node('vllm.all_reduce.default', { args: [P.any(), P.lit('tp:0')] });
    expect(findAll(p, ix).map((m) => m.root.name)).toEqual(['all_reduce', 'all_reduce_1']);
  });

  it('fails on a predicate, a literal, a user count, or a repeated capture bound to another value', () => {
    const n = ix.byName.get('auto_functionalized')!;
    const eps6 = P.af('_C.fused_add_rms_norm.default', { epsilon: P.lit(float(1e-6)) });
    expect(matchAt(eps6, n, ix)).toBeNull();
    const twoUsers = P.af('_C.fused_add_rms_norm.default', {
      input: P.node('vllm.all_reduce.default', { users: 2 }),
    });
    expect(matchAt(twoUsers, n, ix)).toBeNull();
    const same = P.af('_C.fused_add_rms_norm.default', { residual: P.any('v'), weight: P.any('v') });
    expect(matchAt(same, n, ix)).toBeNull();
    const where = P.af('_C.fused_add_rms_norm.default', {}, { where: (node) => node.name === 'other' });
    expect(matchAt(where, n, ix)).toBeNull();
  });

  it('indexes by op (auto_functionalized by the op it wraps) and counts the return as a user', () => {
    expect(
      ix.byKey.get('higher_order.auto_functionalized:_C.fused_add_rms_norm.default')!.map((n) => n.name),
    ).toEqual(['auto_functionalized']);
    expect(ix.users.get('all_reduce_1')).toEqual(['output']);
    expect(ix.users.get('x')).toEqual(['all_reduce']);
  });
});

describe('graph builder types', () => {
  it('parses annotations and refuses what is not one', () => {
    expect(parseType('bf16[s72, 3072]')).toEqual({ kind: 'tensor', dtype: 'bf16', shape: ['s72', 3072] });
    expect(parseType('f32[]')).toEqual({ kind: 'tensor', dtype: 'f32', shape: [] });
    expect(parseType('Sym(s72)')).toEqual({ kind: 'sym', expr: 's72' });
    expect(() => parseType('q7[3]')).toThrow('not a type annotation: "q7[3]"');
    const b = new GraphBuilder();
    b.input('a', 'f32[1]');
    expect(() => b.input('a', 'f32[1]')).toThrow("duplicate name 'a'");
  });
});
