// Host values: SymInts a decomposed graph computes (sym_size, operator arithmetic on sizes and
// offsets of as_strided views); they become numbers at plan time, never steps.

import type { LoweredOp, Lowering } from './lowering.ts';

/** SymInt arithmetic; 'unsupported' where an operand is no size. */
const arithmetic = (f: (a: number, b: number) => number): Lowering => ({
  lower: (b, c) => {
    const x = c.symInt(c.arg(0), NaN),
      y = c.symInt(c.arg(1), NaN);
    if (Number.isNaN(x) || Number.isNaN(y)) return 'unsupported';
    return { t: 'sym', value: f(x, y) };
  },
});

export const HOST_LOWERINGS = {
  'aten.sym_size.int': {
    lower: (b, c) => {
      const x = c.tensor(0, 'self');
      const d = c.num(1, 0);
      return {
        t: 'sym',
        value:
          x.shape[d < 0 ? d + x.shape.length : d] ??
          c.fail(`dim ${d} is outside the ${x.shape.length}-d self`),
      };
    },
  },
  'operator.add': arithmetic((a, b) => a + b),
  'operator.sub': arithmetic((a, b) => a - b),
  'operator.mul': arithmetic((a, b) => a * b),
  'operator.floordiv': arithmetic((a, b) => Math.floor(a / b)),
} satisfies Partial<Record<LoweredOp, Lowering>>;
