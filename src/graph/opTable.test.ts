import { describe, expect, it } from 'vitest';
import { ELEMENTWISE_OPS, KERNELS, MAP_FN_CODES, MAP_FNS, kernelCost, type View } from './opTable.ts';
import { lookupOp } from './ops.ts';

const view = (shape: number[], dtype: View['dtype'] = 'bf16'): View => ({
  storage: 's',
  dtype,
  offset: 0,
  shape,
  strides: shape.map(() => 1),
});

describe('the op table', () => {
  it('map functions compute in f32 as the kernels do: the scalar is an f32 word', () => {
    // 0.1 is not an f32; a kernel multiplies by fround(0.1).
    expect(MAP_FNS.muls.cpu(3, 0, 0.1)).toBe(Math.fround(3 * Math.fround(0.1)));
    expect(MAP_FNS.adds.cpu(1, 0, 2.5)).toBe(3.5);
    expect(MAP_FNS.masked_fill.cpu(7, 1, -2)).toBe(-2);
    expect(MAP_FNS.masked_fill.cpu(7, 0, -2)).toBe(7);
    expect([
      MAP_FNS.ge.cpu(2, 0, 2),
      MAP_FNS.lt.cpu(2, 0, 2),
      MAP_FNS.not.cpu(0, 0, 0),
      MAP_FNS.and.cpu(1, 0, 0),
    ]).toEqual([1, 0, 1, 0]);
    // The wire code is the position: muls is 1 (the agent had no code for it before the table).
    expect(MAP_FN_CODES.indexOf('muls')).toBe(1);
  });

  it('registers every elementwise op with the schema and result dtype the table gives', () => {
    for (const [op, def] of Object.entries(ELEMENTWISE_OPS)) {
      const reg = lookupOp(op)!;
      expect(
        reg.args.map((a) => a.name),
        op,
      ).toEqual(['self', ...def.args.map(([n]) => n)]);
      expect(reg.doc).toBe(def.doc);
    }
    const ge = lookupOp('aten.ge.Scalar')!;
    const t = ge.infer!(
      {
        name: 'g',
        op: 'aten.ge.Scalar',
        args: [{ kind: 'ref', name: 'x' }, 0],
        kwargs: {},
        type: null,
        meta: {},
      },
      () => ({ kind: 'tensor', dtype: 'i64', shape: [4] }),
    );
    expect(t).toEqual({ kind: 'tensor', dtype: 'b8', shape: [4] });
  });

  it("costs: GEMM FLOPs 2·M·N·K (+ the bias), a collective reads every rank's input, the MoE each expert once", () => {
    const gemm = kernelCost(
      { kernel: 'gemm', a: view([5, 7]), b: view([7, 3]), bias: view([3]), alpha: 1, beta: 1, out: 'o' },
      5 * 3 * 2,
      1,
    );
    expect(gemm).toEqual({ bytesRead: (35 + 21 + 3) * 2, bytesWritten: 30, flops: 2 * 5 * 3 * 7 + 2 * 15 });
    const ar = kernelCost({ kernel: 'all_reduce', group: 'tp:0', x: view([4, 8], 'f32'), out: 'o' }, 128, 4);
    expect(ar).toEqual({ bytesRead: 4 * 128, bytesWritten: 128, flops: 3 * 32 });
    const moe = kernelCost(
      {
        kernel: 'moe',
        x: view([7, 48]),
        logits: view([7, 32], 'f32'),
        layer: 'l',
        experts: 32,
        topK: 4,
        intermediate: 120,
        out: 'o',
      },
      7 * 48 * 2,
      2,
    );
    expect(moe.bytesRead).toBe(7 * 48 * 2 + 7 * 32 * 4 + 2 * 3 * 48 * 60 * 32);
    expect(moe.flops).toBe(2 * 7 * 4 * 3 * 48 * 60);
  });

  it('every kernel states how exactly it is specified, with ulps for both float dtypes where it is not bitwise', () => {
    for (const [name, k] of Object.entries(KERNELS)) {
      if (k.rounding === 'exact') continue;
      expect(k.rounding.ulps.bf16, name).toBeGreaterThan(0);
      expect(k.rounding.ulps.f32, name).toBeGreaterThan(0);
    }
  });
});
