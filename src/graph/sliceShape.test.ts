import { describe, expect, it } from 'vitest';
import { parseFx } from './fx/parse.ts';
import type { Arg, ValueType } from './ir.ts';
import { ref } from './ir.ts';
import { INT64_MAX, sliceLength } from './sliceShape.ts';

const noTypes = () => undefined;
const syms = (a: Arg): ValueType | undefined =>
  a && typeof a === 'object' && !Array.isArray(a) && a.kind === 'ref' && a.name === 'arg0_1'
    ? { kind: 'sym', expr: 's72' }
    : undefined;

describe('slice length along its dim', () => {
  it('numeric sizes follow Python: negative bounds from the end, clamping, INT64_MAX, None and steps', () => {
    const len = (start: Arg, end: Arg, step: Arg = 1) => sliceLength(3072, start, end, step, noTypes);
    // Checked against Python: len(range(3072)[a:b:k]).
    expect(len(0, 2880)).toBe(2880);
    expect(len(-24, INT64_MAX)).toBe(24);
    expect(len(null, null)).toBe(3072);
    expect(len(8, -8)).toBe(3056);
    expect(len(-5000, 10)).toBe(10);
    expect(len(3000, 9000)).toBe(72);
    expect(len(10, 5)).toBe(0);
    expect(len(0, INT64_MAX, 2)).toBe(1536);
    expect(len(1, INT64_MAX, 3)).toBe(1024);
    expect(len(-7, INT64_MAX, 2)).toBe(4);
    expect(len(0, 10, 0)).toBeUndefined();
    expect(len(0, 10, -1)).toBeUndefined();
  });

  it('symbolic sizes and bounds print as torch prints them', () => {
    expect(sliceLength('s72', 0, INT64_MAX, 1, noTypes)).toBe('s72');
    expect(sliceLength('s72', 1, INT64_MAX, 1, noTypes)).toBe('s72 - 1');
    expect(sliceLength('s72', 0, INT64_MAX, 2, noTypes)).toBe('((s72 + 1)//2)');
    expect(sliceLength('s72', 1, INT64_MAX, 3, noTypes)).toBe('((s72 + 1)//3)');
    expect(sliceLength('s72', -4, INT64_MAX, 1, noTypes)).toBe(4);
    expect(sliceLength('s72', 0, -1, 1, noTypes)).toBe('s72 - 1');
    expect(sliceLength('s72', 0, 16, 1, noTypes)).toBe(16);
    // A bound that is a Sym input (`slice(buf, 0, 0, arg0_1)`) or its expression.
    expect(sliceLength(8192, 0, ref('arg0_1'), 1, syms)).toBe('s72');
    expect(sliceLength(8192, 0, 's72', 2, noTypes)).toBe('((s72 + 1)//2)');
    expect(sliceLength('s72', ref('arg0_1'), INT64_MAX, 1, syms)).toBe(0);
    expect(sliceLength('s80', ref('arg0_1'), INT64_MAX, 1, syms)).toBe('s80 - s72');
    expect(sliceLength(8192, 's0', 's1', 1, noTypes)).toBe('s1 - s0');
    expect(sliceLength(8192, 's0', 's1', 2, noTypes)).toBeUndefined();
  });

  it('an imported slice carries the inferred type where its annotation is missing', () => {
    const g = parseFx(
      [
        'def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 3072]"):',
        '    slice_1 = torch.ops.aten.slice.Tensor(arg1_1, 1, -24, 9223372036854775807)',
        '    slice_2 = torch.ops.aten.slice.Tensor(arg1_1, 0, 0, arg0_1, 2)',
        '    return (slice_1, slice_2)',
      ].join('\n'),
    ).graph;
    const inferred = (name: string) => {
      const n = g.nodes.find((x) => x.name === name)!;
      const op = n.op;
      return import('./ops.ts').then(({ lookupOp }) =>
        lookupOp(op)!.infer!(n, (a) => {
          if (a && typeof a === 'object' && !Array.isArray(a) && a.kind === 'ref')
            return [...g.inputs].find((i) => i.name === a.name)?.type;
          return undefined;
        }),
      );
    };
    return Promise.all([inferred('slice_1'), inferred('slice_2')]).then(([a, b]) => {
      expect(a).toEqual({ kind: 'tensor', dtype: 'bf16', shape: ['s72', 24] });
      expect(b).toEqual({ kind: 'tensor', dtype: 'bf16', shape: ['((s72 + 1)//2)', 3072] });
    });
  });
});
