// MAP_FNS: the elementwise functions of one or two operands and a scalar (CPU body, WGSL body,
// C++ body, operand domains, rounding contract); a map function's wire code is its position.

import { roundBf16 } from '../bf16.ts';
import { MAP_HELPERS, torchF8e4m3fn, type MapHelper } from './mapHelpers.ts';
import type { OperandDomain } from './operandDomains.ts';

/**
 * How far a backend's map function may be from the CPU reference, per element, in ulps of the
 * output dtype. 'exact': the body is f32 adds, multiplies, compares and selects, each correctly
 * rounded on every backend, so the results are bitwise equal. Else a bound per float dtype (a body
 * that calls exp or divides: neither is correctly rounded in WGSL). Either way a result the
 * reference puts below the smallest normal f32 may come back as zero (WGSL may flush subnormals).
 */
export type MapRounding = 'exact' | { ulps: { bf16: number; f32: number } };

/** The ulps a map function's result may differ by per element (0: bitwise). */
export function mapFnUlps(r: MapRounding, dtype: 'bf16' | 'f32'): number {
  return r === 'exact' ? 0 : r.ulps[dtype];
}

interface MapFnBody {
  /**
   * The CPU reference. Operands arrive as f64 values of their storage (already rounded); the body
   * computes in f32 (Math.fround) as the kernels do, and the result is rounded to the output dtype.
   */
  cpu: (a: number, b: number, s: number) => number;
  /** WGSL expression over `a`, `b`, `s` (f32). */
  wgsl: string;
  /** C++/CUDA expression over `a`, `b`, `s` (float). */
  cpp: string;
  /** WGSL functions the body calls (each defined once per shader: `fn name(…)`, see MAP_HELPERS). */
  helpers?: readonly MapHelper[];
  /** The contract every check that compares a backend with the CPU reference holds it to. */
  rounding: MapRounding;
  /** The values the scalar `s` takes, when not every number (a divisor: nonzero). */
  scalar?: OperandDomain;
  doc: string;
}

/**
 * A map function: `tensorB` says whether `b` is a tensor operand (else only `a` and the scalar `s`
 * are read), and `domain` gives each tensor operand's values, one per operand.
 */
export type MapFnDef = MapFnBody &
  (
    | { tensorB: false; domain: readonly [OperandDomain] }
    | { tensorB: true; domain: readonly [OperandDomain, OperandDomain] }
  );

// A body of exp, one add, one division (and a multiply): WGSL's exp is within 3 + 2·|x| ulps (|x| ≤ 88.8
// while the result is finite), its division within 2.5, the add and multiply correctly rounded: at
// most 185 f32 ulps. Measured over the real domain (SwiftShader, a dense scan of a in [−89, 0)): silu
// 62 and σ 64 ulps near a = −86…−88, where the single 1-ulp bound silu declared before held for
// bf16 only (38 f32 ulps at a = −54). The agent's expf is within 2. In bf16 the error only flips a
// tie: 1 ulp.
const EXP_ROUNDING: MapRounding = { ulps: { bf16: 1, f32: 185 } };

const f = Math.fround;
const MAP_FN_TABLE = {
  mul: {
    tensorB: true,
    domain: ['real', 'real'],
    cpu: (a, b) => f(a * b),
    wgsl: 'a * b',
    cpp: 'a * b',
    rounding: 'exact',
    doc: 'a · b',
  },
  muls: {
    tensorB: false,
    domain: ['real'],
    cpu: (a, _b, s) => f(a * f(s)),
    wgsl: 'a * s',
    cpp: 'a * s',
    rounding: 'exact',
    doc: 'a · s (s a Python number)',
  },
  adds: {
    tensorB: false,
    domain: ['real'],
    cpu: (a, _b, s) => f(a + f(s)),
    wgsl: 'a + s',
    cpp: 'a + s',
    rounding: 'exact',
    doc: 'a + s (s a Python number)',
  },
  ge: {
    tensorB: false,
    domain: ['real'],
    cpu: (a, _b, s) => +(a >= f(s)),
    wgsl: 'select(0.0, 1.0, a >= s)',
    cpp: '(a >= s ? 1.f : 0.f)',
    rounding: 'exact',
    doc: 'a ≥ s',
  },
  lt: {
    tensorB: false,
    domain: ['real'],
    cpu: (a, _b, s) => +(a < f(s)),
    wgsl: 'select(0.0, 1.0, a < s)',
    cpp: '(a < s ? 1.f : 0.f)',
    rounding: 'exact',
    doc: 'a < s',
  },
  and: {
    tensorB: true,
    domain: ['bool', 'bool'],
    cpu: (a, b) => +(a !== 0 && b !== 0),
    wgsl: 'select(0.0, 1.0, a != 0.0 && b != 0.0)',
    cpp: '((a != 0.f && b != 0.f) ? 1.f : 0.f)',
    rounding: 'exact',
    doc: 'a ∧ b',
  },
  not: {
    tensorB: false,
    domain: ['bool'],
    cpu: (a) => +(a === 0),
    wgsl: 'select(0.0, 1.0, a == 0.0)',
    cpp: '(a == 0.f ? 1.f : 0.f)',
    rounding: 'exact',
    doc: '¬a',
  },
  masked_fill: {
    tensorB: true,
    domain: ['real', 'bool'],
    cpu: (a, b, s) => (b !== 0 ? f(s) : a),
    wgsl: 'select(a, s, b != 0.0)',
    cpp: '(b != 0.f ? s : a)',
    rounding: 'exact',
    doc: 's where b, else a',
  },
  // vLLM's silu_and_mul over the two halves of the last dim, one per storage dtype
  // (SILU_MUL_BY_DTYPE): csrc/activation_kernels.cu's silu_kernel returns `(T)` of the f32
  // x / (1 + e^−x), and act_and_mul_kernel stores ACT_FN(x) · y computed in T, so silu is rounded to
  // the model dtype before the product, which is rounded again (torch's silu(x) * y in bf16 rounds
  // the same two places). In f32 both roundings are f32's.
  silu_mul: {
    tensorB: true,
    domain: ['real', 'real'],
    cpu: (a, b) => f(f(a / f(1 + f(Math.exp(-a)))) * b),
    wgsl: '(a / (1.0 + exp(-a))) * b',
    cpp: '(a / (1.f + expf(-a))) * b',
    rounding: EXP_ROUNDING,
    doc: 'silu(a) · b',
  },
  // One bf16 step in silu (its f32 error can move the rounding) is at most two in the product.
  silu_mul_bf16: {
    tensorB: true,
    domain: ['real', 'real'],
    helpers: ['rn_bf16'],
    cpu: (a, b) => f(roundBf16(f(a / f(1 + f(Math.exp(-a))))) * b),
    wgsl: 'rn_bf16(a / (1.0 + exp(-a))) * b',
    cpp: 'rn_bf16(a / (1.f + expf(-a))) * b',
    // Lowered for bf16 storage only (SILU_MUL_BY_DTYPE); in f32 a flipped bf16 step is 2^16 ulps.
    rounding: { ulps: { bf16: 2, f32: 2 << 16 } },
    doc: 'bf16(silu(a)) · b',
  },
  sigmoid: {
    tensorB: false,
    domain: ['real'],
    cpu: (a) => f(1 / f(1 + f(Math.exp(-a)))),
    wgsl: '1.0 / (1.0 + exp(-a))',
    cpp: '(1.f / (1.f + expf(-a)))',
    rounding: EXP_ROUNDING,
    doc: 'σ(a) = 1 / (1 + e^−a)',
  },
  // The ops of Inductor's decompositions (vLLM's forward_native / forward_static forms, captured
  // with torch 2.13's post-grad graph): RMSNorm's pow/mean/rsqrt, QuantFP8's abs/max/div/clamp/
  // reciprocal and the cast to float8_e4m3fn, silu's neg/exp/add/div.
  cast: {
    tensorB: false,
    domain: ['real'],
    cpu: (a) => a,
    wgsl: 'a',
    cpp: 'a',
    rounding: 'exact',
    doc: 'a, rounded to the output dtype (prims.convert_element_type between float dtypes)',
  },
  to_f8e4m3fn: {
    tensorB: false,
    domain: ['e4m3'],
    cpu: (a) => torchF8e4m3fn(a),
    wgsl: 'f8e4m3fn(a)',
    cpp: 'f8e4m3fn(a)',
    helpers: ['f8e4m3fn'],
    rounding: 'exact',
    doc: "torch's cast to float8_e4m3fn: nearest even, NaN past 464 (no saturation), held as its value",
  },
  square: {
    tensorB: false,
    domain: ['real'],
    cpu: (a) => f(a * a),
    wgsl: 'a * a',
    cpp: 'a * a',
    rounding: 'exact',
    doc: 'a² (pow(a, 2))',
  },
  div: {
    tensorB: true,
    domain: ['real', 'nonzero'],
    cpu: (a, b) => f(a / b),
    wgsl: 'div_rn(a, b)',
    cpp: 'div_rn(a, b)',
    helpers: ['div_rn'],
    rounding: 'exact',
    doc: 'a / b, correctly rounded',
  },
  divs: {
    tensorB: false,
    domain: ['real'],
    cpu: (a, _b, s) => f(a / f(s)),
    wgsl: 'div_rn(a, s)',
    cpp: 'div_rn(a, s)',
    helpers: ['div_rn'],
    scalar: 'nonzero',
    rounding: 'exact',
    doc: 'a / s (s a Python number), correctly rounded',
  },
  reciprocal: {
    tensorB: false,
    domain: ['nonzero'],
    cpu: (a) => f(1 / a),
    wgsl: 'div_rn(1.0, a)',
    cpp: 'div_rn(1.f, a)',
    helpers: ['div_rn'],
    rounding: 'exact',
    doc: '1 / a, correctly rounded',
  },
  // torch's CPU kernel: 1 / sqrt(a), each correctly rounded; WGSL's sqrt may be 2.5 ulps off.
  rsqrt: {
    tensorB: false,
    domain: ['positive'],
    cpu: (a) => f(1 / f(Math.sqrt(a))),
    wgsl: 'div_rn(1.0, sqrt(a))',
    cpp: 'div_rn(1.f, sqrtf(a))',
    helpers: ['div_rn'],
    rounding: { ulps: { bf16: 1, f32: 4 } },
    doc: '1 / √a',
  },
  exp: {
    tensorB: false,
    domain: ['exponent'],
    cpu: (a) => f(Math.exp(a)),
    wgsl: 'exp(a)',
    cpp: 'expf(a)',
    rounding: EXP_ROUNDING,
    doc: 'e^a',
  },
  neg: {
    tensorB: false,
    domain: ['real'],
    cpu: (a) => -a,
    wgsl: '-a',
    cpp: '-a',
    rounding: 'exact',
    doc: '−a',
  },
  abs: {
    tensorB: false,
    domain: ['real'],
    cpu: (a) => Math.abs(a),
    wgsl: 'abs(a)',
    cpp: 'fabsf(a)',
    rounding: 'exact',
    doc: '|a|',
  },
  maxs: {
    tensorB: false,
    domain: ['real'],
    cpu: (a, _b, s) => (f(s) > a ? f(s) : a),
    wgsl: 'select(a, s, s > a)',
    cpp: '(s > a ? s : a)',
    rounding: 'exact',
    doc: 'max(a, s) (clamp_min): a unless s > a, so NaN and the sign of a zero pass through',
  },
  mins: {
    tensorB: false,
    domain: ['real'],
    cpu: (a, _b, s) => (f(s) < a ? f(s) : a),
    wgsl: 'select(a, s, s < a)',
    cpp: '(s < a ? s : a)',
    rounding: 'exact',
    doc: 'min(a, s) (clamp_max): a unless s < a, so NaN and the sign of a zero pass through',
  },
  silu: {
    tensorB: false,
    domain: ['real'],
    cpu: (a) => f(a / f(1 + f(Math.exp(-a)))),
    wgsl: 'a / (1.0 + exp(-a))',
    cpp: '(a / (1.f + expf(-a)))',
    rounding: EXP_ROUNDING,
    doc: 'silu(a) = a · σ(a)',
  },
} as const satisfies Record<string, MapFnDef>;

export type MapFn = keyof typeof MAP_FN_TABLE;
/**
 * The map function `_C.silu_and_mul` lowers to, silu rounded as the dtype's kernel does; f16 lowers
 * to silu into an f16 storage, then the product (its subnormal steps are absolute, so an f32 body
 * that rounds to f16 inside has no ulp contract).
 */
export const SILU_MUL_BY_DTYPE: Record<'bf16' | 'f32', MapFn> = {
  bf16: 'silu_mul_bf16',
  f32: 'silu_mul',
};
/** The map functions a graph of this dtype can lower to: all but another dtype's silu_mul. */
export function mapFnsOfDtype(dtype: 'bf16' | 'f32'): MapFn[] {
  const others = (Object.keys(SILU_MUL_BY_DTYPE) as ('bf16' | 'f32')[])
    .filter((d) => d !== dtype)
    .map((d) => SILU_MUL_BY_DTYPE[d]);
  return (Object.keys(MAP_FN_TABLE) as MapFn[]).filter((fn) => !others.includes(fn));
}
/** Every entry with the one signature (the literal table above narrows each body's parameters). */
export const MAP_FNS: Record<MapFn, MapFnDef> = MAP_FN_TABLE;
/** The WGSL helper functions a map function's body calls, each once, in MAP_HELPERS' order. */
export function mapHelpersWgsl(def: Pick<MapFnDef, 'helpers'>): string {
  const used: readonly MapHelper[] = def.helpers ?? [];
  return (Object.keys(MAP_HELPERS) as MapHelper[])
    .filter((h) => used.includes(h))
    .map((h) => MAP_HELPERS[h].wgsl)
    .join('\n');
}
/** A map function's wire code is its position here (the order of MAP_FNS). */
export const MAP_FN_CODES = Object.keys(MAP_FNS) as MapFn[];
