import { describe, expect, it } from 'vitest';
import { dimValue, evalSize, SizeExprError } from './sizeExpr.ts';
import { bindDim } from './cost/model.ts';
import { evalDim } from '../runtime/plan.ts';
import { RunError } from '../runtime/runError.ts';

const at = (s0: number) => (sym: string) => {
  if (sym !== 's0') throw new Error(`unbound ${sym}`);
  return s0;
};

describe('evalSize (Python semantics)', () => {
  // Expected values are what Python 3 prints for the same expression with s0 bound.
  it.each([
    ['s0//3*3', 101, 99],
    ['-s0//4', 7, -2],
    ['s0 % 5', -7, 3],
    ['s0 % -5', 7, -3],
    ['-s0 % 5', 7, 3],
    ['2*s0 + 1', 10, 21],
    ['(s0 - 1)//2 + 1', 8, 4],
    ['s0**2', 12, 144],
    ['-2**2', 0, -4],
    ['2**3**2', 0, 512],
    ['Max(1, s0 - 8)', 4, 1],
    ['Min(s0, 4096)', 8192, 4096],
    ['FloorDiv(s0, 7)', -1, -1],
    ['CeilDiv(s0, 7)', 8, 2],
    ['Mod(s0, 3)', -1, 2],
    ['s0 - -3', 1, 4],
  ])('%s at s0 = %i is %i', (expr, s0, want) => {
    expect(evalSize(expr, at(s0))).toBe(want);
  });

  it('agrees between the runtime and the cost model (both use it)', () => {
    expect(evalDim('s0//3*3', 101, 'x')).toBe(99);
    expect(bindDim('s0//3*3', 101)).toBe(99);
    expect(dimValue(2880, 7)).toBe(2880);
  });

  it.each([
    ['s0 // 0', 'division by zero', 4],
    ['s0 % (s0 - s0)', 'division by zero', 4],
    ['s0 +', 'unexpected end', 5],
    ['s0 ) + 1', "unexpected ')'", 4],
    ['s0 $ 2', "unexpected '$'", 4],
    ['Max(s0', "expected ')'", 7],
    ['FloorDiv(s0)', 'FloorDiv takes 2 arguments, got 1', 1],
    ['2**-1', 'a negative power is not a size', 2],
    ['', 'empty size', 1],
  ])('refuses %j: %s at col %i', (expr, detail, col) => {
    let err: unknown;
    try {
      evalSize(expr, at(5));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SizeExprError);
    expect((err as SizeExprError).message).toContain(detail);
    expect((err as SizeExprError).col).toBe(col);
  });

  it('refuses a value past 2^53 rather than rounding it', () => {
    expect(() => evalSize('s0*s0*s0', at(2 ** 20))).toThrow(/not an integer/);
  });

  it('reaches the runtime as an input error that names where', () => {
    expect(() => evalDim('s0 //', 4, 'node view_3')).toThrow(RunError);
    expect(() => evalDim('s0 //', 4, 'node view_3')).toThrow(
      /node view_3: cannot evaluate the dim: size 's0 \/\/', col 6/,
    );
  });
});
