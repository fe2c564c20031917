// The values each map function's tensor operand takes, so every check feeds it where it is meant to work.

/**
 * The values a map function's tensor operand takes. The checks that compare backends feed every
 * operand its domain's special points and seeded draws from it (runtime/differential.ts,
 * wgsl/mapFns.test.ts), so a body is checked where it is meant to work, not only at 0 and 1.
 */
export type OperandDomain = 'bool' | 'real' | 'positive' | 'nonzero' | 'index' | 'exponent' | 'e4m3';

export interface OperandDomainDef {
  doc: string;
  /** The dtype a graph holds such values in: masks b8, ids i64, else the run's float dtype. */
  dtype: 'float' | 'b8' | 'i64';
  /** Whether x belongs to the domain. */
  holds: (x: number) => boolean;
  /** Values every check feeds: zeros, signs, small, large, and the points where bodies change. */
  special: readonly number[];
  /** One value drawn with `u` (uniform in [0, 1)). */
  draw: (u: () => number) => number;
}

// Magnitudes stay within 2^-24 .. 2^16, so no operand and no product of two is subnormal (WGSL may
// flush those to zero); ±88 / ±89 straddle where exp leaves the f32 range, ±100 is past it.
const REAL_SPECIAL = [0, 1, 0.5, 1.5, 2, 3, 7, 16, 20, 88, 89, 100, 1000, 65504, 1e-3, 2 ** -24].flatMap(
  (x) => [x, -x],
);
/** Where activations live half the time, log-uniform over the whole range the other half. */
const drawReal = (u: () => number) =>
  u() < 0.5 ? 16 * u() - 8 : (u() < 0.5 ? -1 : 1) * 2 ** (-24 + 40 * u());

export const OPERAND_DOMAINS: Record<OperandDomain, OperandDomainDef> = {
  bool: {
    doc: 'a mask: 0 or 1',
    dtype: 'b8',
    holds: (x) => x === 0 || x === 1,
    special: [0, 1],
    draw: (u) => +(u() < 0.5),
  },
  real: {
    doc: 'any finite value',
    dtype: 'float',
    holds: Number.isFinite,
    special: REAL_SPECIAL,
    draw: drawReal,
  },
  positive: {
    doc: 'a finite value > 0',
    dtype: 'float',
    holds: (x) => Number.isFinite(x) && x > 0,
    special: REAL_SPECIAL.filter((x) => x > 0),
    draw: (u) => 2 ** (-24 + 40 * u()),
  },
  nonzero: {
    doc: 'a finite value other than ±0',
    dtype: 'float',
    holds: (x) => Number.isFinite(x) && x !== 0,
    special: REAL_SPECIAL.filter((x) => x !== 0),
    draw: (u) => drawReal(u) || 1,
  },
  exponent: {
    doc: 'a finite value whose e^x is a finite f32: x ≤ 88',
    dtype: 'float',
    holds: (x) => Number.isFinite(x) && x <= 88,
    special: REAL_SPECIAL.filter((x) => x <= 88),
    draw: (u) => Math.min(drawReal(u), 88),
  },
  e4m3: {
    doc: 'a value the float8_e4m3fn cast keeps finite (|x| ≤ 464), with its ties and subnormals',
    dtype: 'float',
    holds: (x) => Number.isFinite(x) && Math.abs(x) <= 464,
    special: [
      0,
      1,
      0.5,
      448,
      464,
      463,
      456,
      2 ** -6,
      2 ** -9,
      2 ** -10,
      3 * 2 ** -10,
      17,
      240,
      1e-3,
      2 ** -24,
    ].flatMap((x) => [x, -x]),
    draw: (u) => (u() < 0.5 ? -1 : 1) * (u() < 0.5 ? 464 * u() : 2 ** (-24 + 32.8 * u())),
  },
  index: {
    doc: 'a token id or a size: an integer in [0, 2^24)',
    dtype: 'i64',
    holds: (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 24,
    special: [0, 1, 2, 3, 127, 128, 255, 256, 1000, 65535, 65536, 2 ** 24 - 1],
    draw: (u) => Math.floor(u() * 2 ** 24),
  },
};
