import { describe, expect, it } from 'vitest';
import { GraphBuilder, parseType } from './build.ts';
import type { Arg, Node } from './ir.ts';
import { float, ref } from './ir.ts';
import { autoFunctionalizedResults, inferType, mutatedArgs } from './infer.ts';

describe('result types of nodes passes create', () => {
  const b = new GraphBuilder();
  b.input('x', 'bf16[s72, 3072]');
  b.input('res', 'bf16[s72, 2880]');
  b.input('w', 'bf16[2880]');
  const g = b.build();
  const types = new Map(g.inputs.map((i) => [i.name, i.type]));
  const typeOf = (a: Arg) =>
    a && typeof a === 'object' && !Array.isArray(a) && a.kind === 'ref' ? types.get(a.name) : undefined;
  const node = (op: string, args: Arg[], kwargs: Record<string, Arg> = {}): Node => ({
    name: 'n',
    op,
    args,
    kwargs,
    type: null,
    meta: {},
  });

  it("slice and pad follow the registry's shape rules, symbolic dims kept", () => {
    expect(inferType(node('aten.slice.Tensor', [ref('x'), 1, 0, 2880]), typeOf, () => undefined)).toEqual(
      parseType('bf16[s72, 2880]'),
    );
    expect(
      inferType(node('aten.slice.Tensor', [ref('x'), -1, 100, 9223372036854775807]), typeOf, () => undefined),
    ).toEqual(parseType('bf16[s72, 2972]'));
    expect(
      inferType(node('aten.slice.Tensor', [ref('x'), 0, 0, 9223372036854775807]), typeOf, () => undefined),
    ).toEqual(parseType('bf16[s72, 3072]'));
    expect(
      inferType(
        node('aten.constant_pad_nd.default', [ref('res'), [0, 192], float(0)]),
        typeOf,
        () => undefined,
      ),
    ).toEqual(parseType('bf16[s72, 3072]'));
  });

  it("auto_functionalized: [0] the op's return, [1..] its mutated args in schema order", () => {
    expect(mutatedArgs('vllm.flashinfer_trtllm_fused_allreduce_norm.default')).toEqual([
      'allreduce_in',
      'residual',
      'norm_out',
      'quant_out',
      'scale_out',
    ]);
    const af = node(
      'higher_order.auto_functionalized',
      [{ kind: 'op', target: 'vllm.flashinfer_trtllm_fused_allreduce_norm.default' }],
      {
        allreduce_in: ref('res'),
        residual: ref('res'),
        norm_out: null,
        quant_out: null,
        scale_out: null,
        rms_gamma: ref('w'),
      },
    );
    const t = parseType('bf16[s72, 2880]');
    expect(autoFunctionalizedResults(af, typeOf)).toEqual([null, t, t, null, null, null]);
    const item = node('getitem', [ref('af'), 2]);
    expect(inferType(item, typeOf, (name) => (name === 'af' ? af : undefined))).toEqual(t);
    expect(
      inferType(node('getitem', [ref('af'), 3]), typeOf, (name) => (name === 'af' ? af : undefined)),
    ).toBeNull();
  });
});
