// The op table: the one place where what the executors compute is declared. Every backend (CPU
// reference, WGSL, the agent's C++/CUDA worker) and the wire format read it from here; the agent's
// C++ enums and map bodies are generated from it (agent/opTableCpp.ts → agent/native/op_table.gen.hpp).
//
// Three tables, each a Record over a string union, so forgetting an entry is a type error:
// - MAP_FNS: elementwise functions of one or two operands and a scalar (CPU body, WGSL body, C++ body);
// - ELEMENTWISE_OPS: which FX op lowers to which map function (tensor or Python-number operand);
// - KERNELS: the plan's kernel steps: wire fields, the worker op they run as, rounding contract, cost.
// Schemas, shape rules and rewrite facts of FX ops stay in ops.ts (which reads ELEMENTWISE_OPS).

import { roundBf16 } from './bf16.ts';

/** Storage dtypes a plan holds (token ids and masks are i32). */
export type StorageDType = 'bf16' | 'f16' | 'f32' | 'i32';

/** A strided window onto a storage, in elements. */
export interface View {
  storage: string;
  dtype: StorageDType;
  offset: number;
  shape: number[];
  strides: number[];
}

export type InputRole =
  | 'activation'
  | 'norm-weight'
  | 'weight'
  | 'bias'
  | 'router-weight'
  | 'router-bias'
  | 'embedding'
  | 'indices'
  | 'fed'
  | 'zeros'
  | 'fp4-weight';
export const INPUT_ROLES: readonly InputRole[] = [
  'activation',
  'norm-weight',
  'weight',
  'bias',
  'router-weight',
  'router-bias',
  'embedding',
  'indices',
  'fed',
  'zeros',
  // Packed NVFP4 weights (vLLM's uint8 [N, K/2], two e2m1 codes a byte): uniform bytes 0–255.
  'fp4-weight',
];

/**
 * How the fused all-reduce + RMSNorm rounds its norm: 'once' (its semantics: r(z·rsqrt(…)·γ)) or
 * 'as-unfused' (r(r(z·rsqrt(…))·γ), as all_reduce + fused_add_rms_norm do), so a fused graph can
 * be checked bit for bit against the unfused one.
 */
export type FusedNormRounding = 'once' | 'as-unfused';

/** Throws at run time for a value the types say cannot exist; a compile error where a case is missing. */
export function assertNever(x: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(x)}`);
}

// --- map functions --------------------------------------------------------------------------

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

/**
 * Functions a map body may call, in WGSL and in C++ (the agent's header defines the C++ ones for
 * every body; a WGSL shader gets those its function names in `helpers`).
 * - div_rn: a / b correctly rounded to nearest even, as IEEE f32 division on the CPU and in CUDA
 *   (WGSL's own division may be 2.5 ulps off): a restoring division of the significands, 25
 *   quotient bits and a sticky bit, for normal operands with a normal quotient; anything else
 *   (zero, infinity, NaN, a subnormal) falls back to the hardware's division.
 * - f8e4m3fn: the e4m3fn value torch's conversion gives (c10 fp8e4m3fn_from_fp32_value): nearest
 *   even, and no saturation: a magnitude past 464 (the midpoint above 448), an infinity or a NaN
 *   is NaN. Bit steps on the f32, so every backend gives the same value.
 */
export const MAP_HELPERS = {
  div_rn: {
    wgsl: `fn div_rn(a: f32, b: f32) -> f32 {
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  let ea = (ua >> 23u) & 0xffu;
  let eb = (ub >> 23u) & 0xffu;
  if (ea == 0u || ea == 255u || eb == 0u || eb == 255u) { return a / b; }
  let ma = (ua & 0x7fffffu) | 0x800000u;
  let mb = (ub & 0x7fffffu) | 0x800000u;
  var e = i32(ea) - i32(eb) + 127;
  var rem = ma;
  if (rem < mb) { rem <<= 1u; e -= 1; }
  var q = 0u;
  for (var i = 0u; i < 25u; i++) {
    q <<= 1u;
    if (rem >= mb) { q |= 1u; rem -= mb; }
    rem <<= 1u;
  }
  var mant = q >> 1u;
  if ((q & 1u) == 1u && (rem != 0u || (mant & 1u) == 1u)) { mant += 1u; }
  if (mant == 0x1000000u) { mant = 0x800000u; e += 1; }
  if (e <= 0 || e >= 255) { return a / b; }
  return bitcast<f32>(((ua ^ ub) & 0x80000000u) | (u32(e) << 23u) | (mant & 0x7fffffu));
}`,
    cpp: 'FL_HOST_DEVICE inline float div_rn(float a, float b) { return a / b; }',
  },
  f8e4m3fn: {
    wgsl: `fn f8e4m3fn(x: f32) -> f32 {
  let u = bitcast<u32>(x);
  let a = u & 0x7fffffffu;
  var v: f32;
  if (a >= 0x3c800000u) {
    let r = (a + 0x7ffffu + ((a >> 20u) & 1u)) >> 20u;
    if (r >= 0x43fu) { return bitcast<f32>(0x7fc00000u | (u & 1u)); }
    v = bitcast<f32>(r << 20u);
  } else {
    v = round(bitcast<f32>(a) * 512.0) * 0.001953125;
  }
  return select(v, -v, (u >> 31u) == 1u);
}`,
    cpp: `FL_HOST_DEVICE inline float f8e4m3fn(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  const uint32_t a = u & 0x7fffffffu;
  float v;
  if (a >= 0x3c800000u) {
    const uint32_t r = (a + 0x7ffffu + ((a >> 20) & 1u)) >> 20;
    if (r >= 0x43fu) return NAN;
    const uint32_t bits = r << 20;
    memcpy(&v, &bits, 4);
  } else {
    float ax;
    memcpy(&ax, &a, 4);
    v = rintf(ax * 512.f) * 0.001953125f;
  }
  return (u >> 31) ? -v : v;
}`,
  },
  // x rounded to bf16 and widened back (nearest even), the bit steps of src/graph/bf16.ts: the value
  // a CUDA kernel's `(T)` cast of an f32 intermediate holds.
  rn_bf16: {
    wgsl: `fn rn_bf16(x: f32) -> f32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return bitcast<f32>((u | 0x400000u) & 0xffff0000u); }
  return bitcast<f32>((u + 0x7fffu + ((u >> 16u) & 1u)) & 0xffff0000u);
}`,
    cpp: `FL_HOST_DEVICE inline float rn_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) u = (u | 0x400000u) & 0xffff0000u;
  else u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  float r;
  memcpy(&r, &u, 4);
  return r;
}`,
  },
} as const satisfies Record<string, { wgsl: string; cpp: string }>;
export type MapHelper = keyof typeof MAP_HELPERS;

const bits32 = new Float32Array(1);
const word32 = new Uint32Array(bits32.buffer);
/** torch's float → float8_e4m3fn → float (MAP_HELPERS.f8e4m3fn, the same bit steps): the value, or NaN. */
export function torchF8e4m3fn(x: number): number {
  bits32[0] = x;
  const u = word32[0]!;
  const a = u & 0x7fffffff;
  let v: number;
  if (a >= 0x3c800000) {
    const r = (a + 0x7ffff + ((a >>> 20) & 1)) >>> 20;
    if (r >= 0x43f) return NaN;
    word32[0] = r << 20;
    v = bits32[0];
  } else {
    word32[0] = a;
    const t = bits32[0] * 512;
    const k = Math.round(t);
    v = (k - t === 0.5 && k % 2 !== 0 ? k - 1 : k) * 2 ** -9;
  }
  return u >>> 31 ? -v : v;
}
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

// --- elementwise FX ops ---------------------------------------------------------------------

export interface ElementwiseOpDef {
  /** Lowering when `other` (argument 1) is a tensor; `scalarArg` holds the scalar word's argument. */
  tensor?: { fn: MapFn | 'add'; scalarArg?: number };
  /**
   * Lowering when `other` is a Python number (the scalar word). `size`: the number is a size
   * (a vocabulary bound compared with token ids) and follows the preset's sizes. `only`: the one
   * number the function computes the op for (pow's exponent 2 is `square`); another is refused.
   */
  number?: { fn: MapFn; size?: boolean; only?: number };
  /** Lowering of a one-operand op. */
  unary?: MapFn;
  /** The result's dtype when it is not self's (comparisons give booleans). */
  resultDtype?: 'b8';
  /** The schema after `self: Tensor`: [name, PyTorch type, default?]. */
  args: readonly (readonly [string, string] | readonly [string, string, number])[];
  doc: string;
}

/**
 * FX ops that lower to one elementwise kernel. `add` with a tensor operand has its own kernel
 * (alpha · other); `add(x, 2.0)` is `adds` with s = alpha · 2.0.
 */
export const ELEMENTWISE_OPS = {
  'aten.mul.Tensor': {
    tensor: { fn: 'mul' },
    number: { fn: 'muls' },
    args: [['other', 'Tensor']],
    doc: 'self · other, elementwise (broadcast).',
  },
  'aten.add.Tensor': {
    tensor: { fn: 'add' },
    number: { fn: 'adds' },
    args: [
      ['other', 'Tensor'],
      ['alpha', 'Scalar', 1],
    ],
    doc: 'Elementwise self + alpha·other.',
  },
  'aten.ge.Scalar': {
    number: { fn: 'ge', size: true },
    resultDtype: 'b8',
    args: [['other', 'Scalar']],
    doc: 'self >= other, elementwise.',
  },
  'aten.lt.Scalar': {
    number: { fn: 'lt', size: true },
    resultDtype: 'b8',
    args: [['other', 'Scalar']],
    doc: 'self < other, elementwise.',
  },
  'aten.bitwise_and.Tensor': {
    tensor: { fn: 'and' },
    args: [['other', 'Tensor']],
    doc: 'self & other, elementwise.',
  },
  'aten.bitwise_not.default': { unary: 'not', args: [], doc: '~self, elementwise.' },
  'aten.sigmoid.default': { unary: 'sigmoid', args: [], doc: 'σ(self) = 1 / (1 + e^−self), elementwise.' },
  'aten.masked_fill.Scalar': {
    tensor: { fn: 'masked_fill', scalarArg: 2 },
    args: [
      ['mask', 'Tensor'],
      ['value', 'Scalar'],
    ],
    doc: 'self with value where mask is true (mask broadcasts).',
  },
  'aten.pow.Tensor_Scalar': {
    number: { fn: 'square', only: 2 },
    args: [['exponent', 'Scalar']],
    doc: 'self ** exponent, elementwise (exponent 2, the variance of an RMSNorm).',
  },
  'aten.div.Tensor': {
    tensor: { fn: 'div' },
    number: { fn: 'divs' },
    args: [['other', 'Tensor']],
    doc: 'self / other, elementwise (broadcast), correctly rounded.',
  },
  'aten.clamp_min.default': {
    number: { fn: 'maxs' },
    args: [['min', 'Scalar']],
    doc: 'max(self, min), elementwise.',
  },
  'aten.clamp_max.default': {
    number: { fn: 'mins' },
    args: [['max', 'Scalar']],
    doc: 'min(self, max), elementwise.',
  },
  'aten.rsqrt.default': { unary: 'rsqrt', args: [], doc: '1 / √self, elementwise.' },
  'aten.reciprocal.default': { unary: 'reciprocal', args: [], doc: '1 / self, elementwise.' },
  'aten.exp.default': { unary: 'exp', args: [], doc: 'e^self, elementwise.' },
  'aten.neg.default': { unary: 'neg', args: [], doc: '−self, elementwise.' },
  'aten.abs.default': { unary: 'abs', args: [], doc: '|self|, elementwise.' },
  'aten.silu.default': { unary: 'silu', args: [], doc: 'self · σ(self), elementwise.' },
  // torch.relu is clamp_min(self, 0): NaN and −0 pass through, which maxs with s = 0 (a unary's
  // scalar word) computes.
  'aten.relu.default': { unary: 'maxs', args: [], doc: 'max(self, 0), elementwise (relu).' },
} as const satisfies Record<string, ElementwiseOpDef>;

export type ElementwiseOp = keyof typeof ELEMENTWISE_OPS;
export function elementwiseOp(op: string): ElementwiseOpDef | undefined {
  return Object.prototype.hasOwnProperty.call(ELEMENTWISE_OPS, op)
    ? ELEMENTWISE_OPS[op as ElementwiseOp]
    : undefined;
}

// --- the worker's ops -----------------------------------------------------------------------

/**
 * The native worker's step ops; the wire code is the position (agent/native `OpCode`). `i` and `f`
 * are the step's integer and float arguments in wire order: a name, or `name[n]`, a list of n
 * integers where n is an earlier integer argument or `world` (one per rank). The lowering writes
 * them by name (agent/workerArgs.ts) and the worker reads them as one struct per op, generated
 * into agent/native/op_table.gen.hpp.
 */
export const WORKER_OPS = {
  gather: {
    cpp: 'Gather',
    doc: 'strided copy / broadcast / constant pad into a contiguous slot',
    // out[idx] = x[offset + Σ (idx_d − lo_d)·stride_d], or `value` where idx_d − lo_d leaves inShape.
    i: ['offset', 'nd', 'outShape[nd]', 'inShape[nd]', 'stride[nd]', 'lo[nd]'],
    f: ['value'],
  },
  add: { cpp: 'Add', doc: 'a + alpha · b', i: [], f: ['alpha'] },
  mm: {
    cpp: 'Mm',
    doc: 'alpha · A·B + beta · bias',
    // biasMode: 0 none, 1 a row [N], 2 a whole [M, N]; transB: B is the transpose of a row-major [N, K].
    i: ['M', 'K', 'N', 'biasMode', 'transB'],
    f: ['alpha', 'beta'],
  },
  embedding: { cpp: 'Embedding', doc: 'rows of a table by token id', i: ['T', 'V', 'H'], f: [] },
  seed: {
    cpp: 'Seed',
    doc: 'counter-based seeded values (src/runtime/random.ts)',
    // range > 0: integers in [0, range) (token ids); else u·scale + offset. One stream per rank.
    i: ['seed', 'range', 'stream[world]'],
    f: ['scale', 'offset'],
  },
  fill: { cpp: 'Fill', doc: 'a constant', i: [], f: ['value'] },
  map: { cpp: 'Map', doc: 'an elementwise map function (MAP_FNS)', i: ['fn'], f: ['scalar'] },
  all_reduce: { cpp: 'AllReduce', doc: 'sum over ranks', i: [], f: [] },
  rms_norm: { cpp: 'RmsNorm', doc: 'RMSNorm', i: ['rows', 'cols', 'xOffset', 'xRowStride'], f: ['eps'] },
  fused_add_rms_norm: {
    cpp: 'FusedAddRmsNorm',
    doc: 'residual add + RMSNorm',
    i: ['rows', 'cols', 'xOffset', 'xRowStride'],
    f: ['eps'],
  },
  allreduce_norm: {
    cpp: 'AllReduceNorm',
    doc: 'all-reduce + residual add + RMSNorm, one kernel',
    i: ['rows', 'cols'],
    f: ['eps'],
  },
  // I: this rank's intermediate rows; K: experts per token.
  moe: { cpp: 'Moe', doc: 'GPT-OSS mixture of experts', i: ['T', 'H', 'E', 'I', 'K'], f: [] },
  reduce_scatter: {
    cpp: 'ReduceScatter',
    doc: 'sum over ranks; rank r keeps the r-th block of token rows',
    i: [],
    f: [],
  },
  all_gather: { cpp: 'AllGather', doc: "every rank's token rows, concatenated in rank order", i: [], f: [] },
  // satfinite 1: FlashInfer's saturating cast (NaN stays NaN); 0: vLLM's clamp (NaN → 448).
  fp8_quant: {
    cpp: 'Fp8Quant',
    doc: 'x · (1 / scale[0]) cast to float8_e4m3fn, held as its value',
    i: ['satfinite'],
    f: [],
  },
  // rows: every dim but the last; mean: 1 the mean (sum in index order, one division), 0 the max.
  reduce_rows: {
    cpp: 'ReduceRows',
    doc: 'each row reduced to one value: the mean or the max',
    i: ['rows', 'cols', 'xOffset', 'xRowStride', 'mean'],
    f: [],
  },
  mm_reduce_scatter: {
    cpp: 'MmReduceScatter',
    doc: "async TP's fused matmul + reduce-scatter: one row block per destination rank, its reduce overlapping the next block's matmul",
    // mm's arguments: the matmul runs as mm does.
    i: ['M', 'K', 'N', 'biasMode', 'transB'],
    f: ['alpha', 'beta'],
  },
} as const satisfies Record<string, { cpp: string; doc: string; i: readonly string[]; f: readonly string[] }>;
export type WorkerOp = keyof typeof WORKER_OPS;
export const WORKER_OP_CODES = Object.keys(WORKER_OPS) as WorkerOp[];

// --- plan kernels -----------------------------------------------------------------------------

/** How a kernel step's field travels on the wire (agent/planWire.ts checks each by its kind). */
export type Field =
  | 'view'
  | 'view?'
  | 'storage'
  | 'num'
  | 'int'
  | 'int?'
  | 'str'
  | 'bool'
  | 'ints'
  | 'role'
  | 'mapfn'
  | 'rounding?';
interface FieldValue {
  view: View;
  'view?': View | null;
  storage: string;
  num: number;
  int: number;
  'int?': number;
  str: string;
  bool: boolean;
  ints: number[];
  role: InputRole;
  mapfn: MapFn;
  'rounding?': FusedNormRounding;
}
type OptionalField = 'int?' | 'rounding?' | 'view?';

/**
 * How exactly a kernel's result is specified against the CPU reference: 'exact' where every
 * rounding point is fixed (bitwise), else how far a conforming kernel may be, in ulps of the
 * output dtype at the output's largest magnitude (f32 accumulation orders differ between
 * backends, and a sum that cancels is not accurate relative to its own small value).
 */
export type Rounding = 'exact' | { ulps: { bf16: number; f32: number } };

export interface KernelDef {
  fields: Record<string, Field>;
  /** The worker ops the agent runs it as (gather steps for non-contiguous views come on top). */
  worker: readonly WorkerOp[];
  rounding: Rounding;
  /**
   * Across ranks (the CPU reference and WebGPU run it through the collectives): such a kernel's
   * `group` field names the process group it spans (src/runtime/rankMesh.ts resolves it to ranks).
   */
  collective: boolean;
  doc: string;
}

/** The silu_and_mul kernels' products: the ulps of the map function each dtype's unfused step runs. */
const SILU_MUL_ULPS = {
  bf16: mapFnUlps(MAP_FN_TABLE[SILU_MUL_BY_DTYPE.bf16].rounding, 'bf16'),
  f32: mapFnUlps(MAP_FN_TABLE[SILU_MUL_BY_DTYPE.f32].rounding, 'f32'),
};
/** The norm + dynamic quant kernels' quant: columns per scale, the FP8 range, the scale floor, the scales' layout. */
const NORM_DYNAMIC_QUANT_FIELDS = {
  group: 'int',
  max: 'num',
  minScale: 'num',
  scaleTransposed: 'bool',
  scaleOut: 'storage',
} as const;

// The ulps below bound the largest distances the differential check measured (agent/differential.ts,
// 48 graphs on the agent's CPU worker and 8 on WebGPU/SwiftShader, ulps at the output's scale):
// bf16 add 0, gemm 0.03, norms 0–2, all_reduce 0, MoE 1; f32 add 1, gemm 3.5, norms 3, all_reduce 1,
// MoE 5 — with about 2× headroom for accumulation orders not yet seen.
export const KERNELS = {
  seed: {
    fields: { name: 'str', role: 'role', perRank: 'bool', range: 'int?', out: 'storage' },
    worker: ['seed', 'fill'],
    rounding: 'exact',
    collective: false,
    doc: 'seeded input',
  },
  copy: {
    fields: { x: 'view', out: 'storage' },
    worker: ['gather'],
    rounding: 'exact',
    collective: false,
    doc: 'strided copy',
  },
  pad: {
    fields: { x: 'view', lo: 'ints', value: 'num', out: 'storage' },
    worker: ['gather'],
    rounding: 'exact',
    collective: false,
    doc: 'constant pad',
  },
  add: {
    fields: { a: 'view', b: 'view', alpha: 'num', out: 'storage' },
    worker: ['add'],
    rounding: { ulps: { bf16: 1, f32: 1 } },
    collective: false,
    doc: 'a + alpha · b (broadcast)',
  },
  map: {
    fields: { fn: 'mapfn', a: 'view', b: 'view?', scalar: 'num', out: 'storage' },
    worker: ['map'],
    rounding: 'exact',
    collective: false,
    doc: 'elementwise map function',
  },
  gemm: {
    fields: { a: 'view', b: 'view', bias: 'view?', alpha: 'num', beta: 'num', out: 'storage' },
    worker: ['mm'],
    rounding: { ulps: { bf16: 1, f32: 8 } },
    collective: false,
    doc: 'alpha · A·B + beta · bias',
  },
  embedding: {
    fields: { weight: 'view', indices: 'view', out: 'storage' },
    worker: ['embedding'],
    rounding: 'exact',
    collective: false,
    doc: 'rows by token id',
  },
  // With `scale` (rms_norm_static_fp8_quant, fused_add_rms_norm_static_fp8_quant after norm-quant)
  // each output, rounded to the run dtype as the unfused norm stores it, is quantized as fp8_quant
  // does in the same kernel (csrc/layernorm_quant_kernels.cu): bitwise the norm → static quant pair
  // on one backend; across backends a quantized value may differ by one e4m3 step where the norm's
  // last bit crosses a rounding point.
  rms_norm: {
    fields: { x: 'view', w: 'view', eps: 'num', scale: 'view?', out: 'storage' },
    worker: ['rms_norm'],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: false,
    doc: 'RMSNorm',
  },
  fused_add_rms_norm: {
    fields: {
      x: 'view',
      residual: 'view',
      w: 'view',
      eps: 'num',
      scale: 'view?',
      out: 'storage',
      residualOut: 'storage',
    },
    worker: ['fused_add_rms_norm'],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: false,
    doc: 'residual add + RMSNorm',
  },
  all_reduce: {
    fields: { x: 'view', group: 'str', out: 'storage' },
    worker: ['all_reduce'],
    rounding: { ulps: { bf16: 1, f32: 1 } },
    collective: true,
    doc: 'sum over ranks in rank order',
  },
  fused_allreduce_norm: {
    fields: {
      x: 'view',
      residual: 'view',
      w: 'view',
      eps: 'num',
      group: 'str',
      out: 'storage',
      residualOut: 'storage',
      normRounding: 'rounding?',
    },
    worker: ['allreduce_norm'],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: true,
    doc: 'all-reduce + residual + RMSNorm',
  },
  moe: {
    fields: {
      x: 'view',
      logits: 'view',
      layer: 'str',
      experts: 'int',
      topK: 'int',
      intermediate: 'int',
      out: 'storage',
    },
    worker: ['seed', 'moe'],
    rounding: { ulps: { bf16: 2, f32: 8 } },
    collective: false,
    doc: 'GPT-OSS MoE',
  },
  // Sequence parallelism's pair (and the collective halves of async TP's fused matmuls): token rows
  // split over the group's ranks in rank order; the reduce-scatter sums in rank order as the all-reduce does.
  reduce_scatter: {
    fields: { x: 'view', group: 'str', out: 'storage' },
    worker: ['reduce_scatter', 'mm_reduce_scatter'],
    rounding: { ulps: { bf16: 1, f32: 1 } },
    collective: true,
    doc: 'sum over ranks, rank r keeps rows [r·T/N, (r+1)·T/N)',
  },
  all_gather: {
    fields: { x: 'view', group: 'str', out: 'storage' },
    worker: ['all_gather'],
    rounding: 'exact',
    collective: true,
    doc: "every rank's rows, in rank order",
  },
  // Reductions along the last dim (RMSNorm's mean of squares, QuantFP8's absmax): each row of x
  // to one value. mean: an f32 sum in index order, then one correctly rounded division by the row
  // length (every backend adds in that order, so it is bitwise; torch's own order is not
  // specified); else the max, NaN if any element is NaN.
  reduce_rows: {
    fields: { x: 'view', mean: 'bool', out: 'storage' },
    worker: ['reduce_rows'],
    rounding: 'exact',
    collective: false,
    doc: 'mean or max of each row',
  },
  // Functionalization's write-back (slice_scatter) and in-place writes into a view: out is base
  // (read with out's shape) with the elements at at + Σ i[d]·strides[d], i < shape (src's shape),
  // replaced by src; the window's strides each exceed the extent of those after them (a view of a
  // contiguous tensor), which makes the window invertible. No agent kernel yet.
  scatter: {
    fields: { base: 'view', src: 'view', at: 'int', strides: 'ints', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'base with a strided window replaced by src',
  },
  // vLLM's rotary_embedding on one of query / key ([tokens, heads · headSize]), in the storage
  // dtype as its kernel computes: x' = r(r(x·cos) − r(y·sin)), y' = r(r(y·cos) + r(x·sin)).
  rotary: {
    fields: { x: 'view', positions: 'view', cache: 'view', headSize: 'int', neox: 'bool', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'rotary position embedding',
  },
  // The reference attention: one prefill sequence, causal, no KV cache, GQA, scale 1/√D, f32
  // softmax, rounded once. q [T, H, D], k and v [T, Hkv, D], out [T, H, D]. WebGPU measured in the
  // differential sweep (seed 20261129, 7 steps): bf16 0, f32 2 ulps at the output's scale.
  // With `scale` (vLLM's output_scale, after attn-quant) each output, rounded to the output dtype as
  // the unfused attention stores it, is quantized as fp8_quant does (clamp(o · (1/scale), ±448) to
  // e4m3, the value held in the output dtype): bitwise the attention → static quant pair on one
  // backend. The ulps above bound the attention before the quant; across backends a quantized
  // output may differ by one e4m3 step where the attention's last bit crosses a rounding point.
  attention: {
    fields: { q: 'view', k: 'view', v: 'view', scale: 'view?', out: 'storage' },
    worker: [],
    rounding: { ulps: { bf16: 1, f32: 4 } },
    collective: false,
    doc: 'causal attention',
  },
  // vLLM's paged KV cache write (reshape_and_cache_flash, csrc/cache_kernels.cu; what
  // unified_kv_cache_update runs): out is cache ([num_blocks, block_size, H_kv, D], contiguous) with
  // row slots[t] (a flat slot, block · block_size + offset) replaced by x[t] ([T, H_kv, D],
  // contiguous); a slot < 0 is skipped (PAD_SLOT_ID). A copy, bitwise on every backend; a repeated
  // slot keeps the last token's row. No worker kernel: the agent feeds it.
  kv_cache_write: {
    fields: { cache: 'view', x: 'view', slots: 'view', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'paged KV cache write',
  },
  // FP8 e4m3fn quant of contiguous x by 1/scale[0] (src/graph/fp8.ts), values held in the run
  // dtype (each is exact in bf16). satfinite: FlashInfer's saturating cast (the fused op's
  // quant_out), else vLLM's static_scaled_fp8_quant clamp.
  fp8_quant: {
    fields: { x: 'view', scale: 'view', satfinite: 'bool', out: 'storage' },
    worker: ['fp8_quant'],
    rounding: 'exact',
    collective: false,
    doc: 'static FP8 quant',
  },
  // NVFP4 (vLLM's scaled_fp4_quant, emulated: src/graph/fp4.ts) of contiguous x in blocks of 16 by the
  // global scale globalScale[0]: the e4m3 block scales, then the e2m1 pairs packed into bytes by
  // them, each held as its value in the run dtype. No worker kernel: the agent feeds them.
  nvfp4_scale: {
    fields: { x: 'view', globalScale: 'view', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'NVFP4 block scales',
  },
  nvfp4_quant: {
    fields: { x: 'view', scale: 'view', globalScale: 'view', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'NVFP4 packed e2m1 pairs',
  },
  // vLLM's NVFP4 GEMM (cutlass_scaled_fp4_mm): out[m, n] = alpha[0] · Σ_k A[m, k] · B[n, k], A and B
  // rows of packed e2m1 pairs ([M, K/2], [N, K/2]: bytes 0–255 held as values, the even element in
  // the low nibble) times their e4m3 block scales ([M, K/16], [N, K/16], linear), all contiguous. A
  // scale is read as its e4m3 value (a seeded one rounds to it; a computed one already is one).
  // Each product is exact in f32 (2·4 significant bits a side); the sum is f32 in k order, then
  // alpha's product rounds to f32, then to out's dtype: the same bits on every backend. No worker
  // kernel: the agent feeds it.
  nvfp4_gemm: {
    fields: { a: 'view', aScale: 'view', b: 'view', bScale: 'view', alpha: 'view', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'NVFP4 GEMM',
  },
  // The dynamic FP8 quant of each row of contiguous x [rows, cols] (a token, or a group of a
  // token's columns) in one kernel: scale = maxs(maxs(max|row|, eps) / max, minScale) in f32 into
  // scaleOut (one per row), out = e4m3fn(clamp(x / scale, ±max)) held in the run dtype — exactly the
  // unfused steps' roundings (abs, reduce_rows' max, divs, maxs, div, the clamp, to_f8e4m3fn;
  // src/wgsl/fp8QuantRows.ts). No worker op of its own: the agent runs those steps
  // (KERNEL_DECOMPOSITIONS), where its run's dtype holds the f32 scales (f32 runs).
  fp8_quant_rows: {
    fields: { x: 'view', eps: 'num', max: 'num', minScale: 'num', out: 'storage', scaleOut: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'dynamic FP8 quant per row',
  },
  // vLLM's fused QK-norm + RoPE (csrc/fused_qknorm_rope_kernel.cu) in one kernel: out is qkv
  // ([T, (qHeads + kHeads + vHeads) · headSize], contiguous) with each q head RMSNormed by qWeight
  // and each k head by kWeight (rms_norm's r(r(x·rsqrt(mean(x²) + eps))·w)), then rotated as rotary
  // does (the first cache.shape[1] dims, neox or GPT-J, by positions[t]'s cache row); v copied. out
  // may be qkv's own storage (written in place where nothing after reads qkv: v is then not touched).
  // Rounded where that pair of steps rounds (KERNEL_DECOMPOSITIONS), so bitwise the pair on one
  // backend; against the CPU reference the norm's f32 accumulation, as rms_norm's. vLLM's kernel
  // keeps the normed value in f32 and rounds once, a few ulps from this. No worker op of its own:
  // the worker would run the pair, but has no rotary op yet, so it feeds the node.
  qk_norm_rope: {
    fields: {
      qkv: 'view',
      qWeight: 'view',
      kWeight: 'view',
      positions: 'view',
      cache: 'view',
      qHeads: 'int',
      kHeads: 'int',
      headSize: 'int',
      eps: 'num',
      neox: 'bool',
      out: 'storage',
    },
    worker: [],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: false,
    doc: 'fused QK RMSNorm + rotary embedding',
  },
  // vLLM's silu_and_mul (csrc/activation_kernels.cu act_and_mul_kernel) over the gate | up halves of
  // each row of x ([..., 2·I], unit column stride) in one kernel: silu(gate) rounded to the run dtype,
  // × up, rounded — the map step of SILU_MUL_BY_DTYPE (f16: silu, then mul), whose bodies every backend
  // runs. With `scale` (silu_and_mul_quant, csrc/quantization/activation_kernels.cu: `ACT_FN(x) · y`
  // in scalar_t, then scaled_fp8_conversion) each product is quantized as fp8_quant does in the same
  // kernel: bitwise the silu_and_mul → static quant pair on one backend. The ulps are the map
  // functions' (silu_mul_bf16's in bf16, silu_mul's in f32) and bound the product before the quant;
  // across backends a quantized value may differ by one e4m3 step. The agent runs it as the pair's
  // steps (KERNEL_DECOMPOSITIONS), map and fp8_quant.
  silu_and_mul: {
    fields: { x: 'view', scale: 'view?', out: 'storage' },
    worker: ['map', 'fp8_quant'],
    rounding: { ulps: SILU_MUL_ULPS },
    collective: false,
    doc: 'SiLU-and-mul (+ static FP8 quant)',
  },
  // vLLM's silu_and_mul_nvfp4_quant as fusionlab runs it (fusedQuant.ts says why it rounds the product
  // as the pair): silu_and_mul's products of x (as KERNELS.silu_and_mul) quantized as nvfp4_scale and
  // nvfp4_quant do, in one kernel: the packed e2m1 pairs into `out` ([rows, I/2]) and the e4m3 block
  // scales into `scaleOut`, row-major [rows, I/16] or, `swizzled`, at vLLM's
  // cvt_quant_to_fp4_get_sf_out_offset in the padded 128 × 4 tiles (src/graph/fp4.ts; the padding
  // left zero). Bitwise the silu_and_mul → scaled_fp4_quant pair on one backend; the ulps bound the
  // products before the quant, as silu_and_mul's. No worker kernel: the agent feeds it.
  silu_and_mul_nvfp4: {
    fields: { x: 'view', globalScale: 'view', swizzled: 'bool', out: 'storage', scaleOut: 'storage' },
    worker: [],
    rounding: { ulps: SILU_MUL_ULPS },
    collective: false,
    doc: 'SiLU-and-mul + NVFP4 quant',
  },
  // RMSNorm (and the residual add) with the dynamic FP8 quant of its output in one kernel: vLLM's
  // rms_norm_dynamic_per_token_quant (group = the row) and rms_norm_per_block_quant (groups of
  // `group` columns), csrc/quantization/fused_kernels/. Each normed value is rounded to the run
  // dtype as the unfused norm stores it, then quantized per group exactly as fp8_quant_rows (eps 0):
  // bitwise the norm → fp8_quant_rows pair on one backend (KERNEL_DECOMPOSITIONS); against the CPU
  // reference the norm's ulps, so a quantized value may differ by one e4m3 step where the norm's
  // last bit crosses a rounding point, a scale by the absmax's. scaleOut holds the scales
  // [rows, groups], or [groups, rows] with scaleTransposed (vLLM's column-major scales).
  rms_norm_dynamic_quant: {
    fields: { x: 'view', w: 'view', eps: 'num', out: 'storage', ...NORM_DYNAMIC_QUANT_FIELDS },
    worker: [],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: false,
    doc: 'RMSNorm + dynamic FP8 quant',
  },
  fused_add_rms_norm_dynamic_quant: {
    fields: {
      x: 'view',
      residual: 'view',
      w: 'view',
      eps: 'num',
      out: 'storage',
      residualOut: 'storage',
      ...NORM_DYNAMIC_QUANT_FIELDS,
    },
    worker: [],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: false,
    doc: 'residual add + RMSNorm + dynamic FP8 quant',
  },
} as const satisfies Record<string, KernelDef>;

export type KernelName = keyof typeof KERNELS;

type Flatten<T> = { [P in keyof T]: T[P] };
type KernelFields<F> = Flatten<
  {
    -readonly [P in keyof F as F[P] extends OptionalField ? never : P]: F[P] extends Field
      ? FieldValue[F[P]]
      : never;
  } & {
    -readonly [P in keyof F as F[P] extends OptionalField ? P : never]?: F[P] extends Field
      ? FieldValue[F[P]]
      : never;
  }
>;
/** A kernel step's parameters, derived from its wire fields (one declaration for both). */
export type Kernel = {
  [K in KernelName]: Flatten<{ kernel: K } & KernelFields<(typeof KERNELS)[K]['fields']>>;
}[KernelName];

/** A norm step with a static quant as the norm into a new storage and fp8_quant of it; null without one. */
function normThenQuant(
  k: Extract<Kernel, { kernel: 'rms_norm' | 'fused_add_rms_norm' }>,
  storage: NewStorage,
  shapeOf: StorageShape,
): Kernel[] | null {
  if (!k.scale) return null;
  const shape = shapeOf(k.out);
  const normed = storage('normed', k.x.dtype, shape);
  const x: View = {
    storage: normed,
    dtype: k.x.dtype,
    shape,
    strides: shape.map((_, d) => numel(shape.slice(d + 1))),
    offset: 0,
  };
  return [
    { ...k, scale: null, out: normed },
    { kernel: 'fp8_quant', x, scale: k.scale, satfinite: false, out: k.out },
  ];
}

/** silu_and_mul's gate and up halves of x's last dim, each with the result's shape. */
export function siluMulHalves(x: View): { gate: View; up: View } {
  const last = x.shape.length - 1;
  const d = x.shape[last]! / 2;
  const gate: View = { ...x, shape: [...x.shape.slice(0, last), d] };
  return { gate, up: { ...gate, offset: x.offset + d * x.strides[last]! } };
}

/**
 * KERNELS.silu_and_mul as the unfused steps it rounds as: the silu-mul map step of x's dtype into
 * `out` (f16: silu into an f16 storage, then the product), then with a scale fp8_quant of it.
 */
export function siluAndMulUnfused(
  k: Extract<Kernel, { kernel: 'silu_and_mul' }>,
  storage: NewStorage,
): Kernel[] {
  const { gate, up } = siluMulHalves(k.x);
  const dtype = k.x.dtype;
  if (dtype === 'i32') throw new Error('silu_and_mul takes a float tensor, not i32');
  const contiguous = (id: string): View => ({
    storage: id,
    dtype,
    shape: gate.shape,
    strides: gate.shape.map((_, d) => numel(gate.shape.slice(d + 1))),
    offset: 0,
  });
  const product = k.scale ? storage('result', dtype, gate.shape) : k.out;
  const steps: Kernel[] = [];
  if (dtype === 'f16') {
    const silu = storage('silu', 'f16', gate.shape);
    steps.push({ kernel: 'map', fn: 'silu', a: gate, b: null, scalar: 0, out: silu });
    steps.push({ kernel: 'map', fn: 'mul', a: contiguous(silu), b: up, scalar: 0, out: product });
  } else {
    steps.push({ kernel: 'map', fn: SILU_MUL_BY_DTYPE[dtype], a: gate, b: up, scalar: 0, out: product });
  }
  if (k.scale)
    steps.push({ kernel: 'fp8_quant', x: contiguous(product), scale: k.scale, satfinite: false, out: k.out });
  return steps;
}

const contiguousView = (id: string, dtype: StorageDType, s: number[]): View => ({
  storage: id,
  dtype,
  shape: s,
  strides: s.map((_, d) => numel(s.slice(d + 1))),
  offset: 0,
});

/**
 * A norm + dynamic quant as its pair: the norm into a new storage, then fp8_quant_rows of its
 * groups (that kernel's own unfused steps), the scales transposed by a copy where they are.
 */
function normThenDynamicQuant(
  k: Extract<Kernel, { kernel: 'rms_norm_dynamic_quant' | 'fused_add_rms_norm_dynamic_quant' }>,
  storage: NewStorage,
  shapeOf: StorageShape,
): Kernel[] {
  const shape = shapeOf(k.out);
  const normed = storage('normed', k.x.dtype, shape);
  const { x, w, eps } = k;
  const norm: Kernel =
    k.kernel === 'rms_norm_dynamic_quant'
      ? { kernel: 'rms_norm', x, w, eps, out: normed }
      : {
          kernel: 'fused_add_rms_norm',
          x,
          residual: k.residual,
          w,
          eps,
          out: normed,
          residualOut: k.residualOut,
        };
  const rows = numel(shape) / k.group;
  const tokens = numel(shape) / shape[shape.length - 1]!;
  const groups = rows / tokens;
  const scales = k.scaleTransposed ? storage('scale_rows', 'f32', [tokens, groups]) : k.scaleOut;
  const quant: Extract<Kernel, { kernel: 'fp8_quant_rows' }> = {
    kernel: 'fp8_quant_rows',
    x: contiguousView(normed, k.x.dtype, [rows, k.group]),
    eps: 0,
    max: k.max,
    minScale: k.minScale,
    out: k.out,
    scaleOut: scales,
  };
  const steps = [norm, ...KERNEL_DECOMPOSITIONS.fp8_quant_rows!(quant, storage, shapeOf)!];
  if (k.scaleTransposed)
    steps.push({
      kernel: 'copy',
      x: { ...contiguousView(scales, 'f32', [groups, tokens]), strides: [1, groups] },
      out: k.scaleOut,
    });
  return steps;
}

/** A new storage for a decomposed kernel's intermediate value: its id. */
export type NewStorage = (name: string, dtype: StorageDType, shape: number[]) => string;
/** The shape of a storage the plan made. */
export type StorageShape = (id: string) => number[];

/**
 * Kernels a backend without their own kernel (the native worker) runs as the unfused steps they
 * round as: each step's parameters, intermediates in new storages. One place, so the worker's
 * program does not special-case them.
 */
export const KERNEL_DECOMPOSITIONS: {
  [K in KernelName]?: (
    k: Extract<Kernel, { kernel: K }>,
    storage: NewStorage,
    shapeOf: StorageShape,
  ) => Kernel[] | null;
} = {
  // A norm with a quant: the norm into a new storage, then fp8_quant of it.
  rms_norm: (k, storage, shapeOf) => normThenQuant(k, storage, shapeOf),
  fused_add_rms_norm: (k, storage, shapeOf) => normThenQuant(k, storage, shapeOf),
  // The silu-mul map step(s), then fp8_quant with a scale.
  silu_and_mul: (k, storage) => siluAndMulUnfused(k, storage),
  rms_norm_dynamic_quant: (k, storage, shapeOf) => normThenDynamicQuant(k, storage, shapeOf),
  fused_add_rms_norm_dynamic_quant: (k, storage, shapeOf) => normThenDynamicQuant(k, storage, shapeOf),
  // abs, reduce_rows' max, the scale's maxs / divs / maxs, then div, the clamp and to_f8e4m3fn.
  fp8_quant_rows: (k, storage, shapeOf) => {
    const cols = k.x.shape[k.x.shape.length - 1] ?? 1;
    const rows = numel(k.x.shape) / cols;
    const shape = [rows, cols];
    const contiguous = (id: string, dtype: StorageDType, s: number[]): View => ({
      storage: id,
      dtype,
      shape: s,
      strides: s.map((_, d) => numel(s.slice(d + 1))),
      offset: 0,
    });
    const x: View = { ...k.x, shape, strides: [cols, 1] };
    const steps: Kernel[] = [];
    // A map reads its operands with its output storage's shape: the last two steps write the plan's
    // storages ([..., H] values, [..., H / group] scales) from a contiguous intermediate, read as
    // the same elements in that shape.
    const map = (fn: MapFn, a: View, b: View | null, scalar: number, dtype: StorageDType, into?: string) => {
      const out = into ?? storage(`${fn}${steps.length}`, dtype, a.shape);
      const read = into ? contiguous(a.storage, a.dtype, shapeOf(into)) : a;
      steps.push({ kernel: 'map', fn, a: read, b, scalar, out });
      return contiguous(out, dtype, a.shape);
    };
    const abs = map('abs', x, null, 0, x.dtype);
    const amax = storage('absmax', x.dtype, [rows, 1]);
    steps.push({ kernel: 'reduce_rows', x: abs, mean: false, out: amax });
    const floored = map('maxs', contiguous(amax, x.dtype, [rows, 1]), null, k.eps, 'f32');
    const raw = map('divs', floored, null, k.max, 'f32');
    const scale = map('maxs', raw, null, k.minScale, 'f32', k.scaleOut);
    const q = map('div', x, { ...scale, shape, strides: [1, 0] }, 0, 'f32');
    const lo = map('maxs', q, null, -k.max, 'f32');
    const hi = map('mins', lo, null, k.max, 'f32');
    map('to_f8e4m3fn', hi, null, 0, x.dtype, k.out);
    return steps;
  },
  // Per q and k: the heads copied out of qkv, rms_norm, rotary, scattered back over qkv's columns.
  qk_norm_rope: (k, storage) => qkNormRopeSteps(k, storage),
};

/** KERNELS.qk_norm_rope as the steps of the pair it fuses, in the order their roundings apply. */
function qkNormRopeSteps(k: Extract<Kernel, { kernel: 'qk_norm_rope' }>, storage: NewStorage): Kernel[] {
  const { qkv, headSize: d } = k;
  const [tokens, width] = qkv.shape as [number, number];
  const dense = (id: string, shape: number[]): View => ({
    storage: id,
    dtype: qkv.dtype,
    offset: 0,
    shape,
    strides: shape.map((_, i) => numel(shape.slice(i + 1))),
  });
  const steps: Kernel[] = [];
  let base: View = qkv;
  const parts = [
    { what: 'q', col: 0, heads: k.qHeads, w: k.qWeight },
    { what: 'k', col: k.qHeads * d, heads: k.kHeads, w: k.kWeight },
  ];
  for (const [i, { what, col, heads, w }] of parts.entries()) {
    const shape = [tokens, heads, d];
    const byHead: View = { ...qkv, offset: qkv.offset + col, shape, strides: [qkv.strides[0]!, d, 1] };
    const x = storage(`${what}_heads`, qkv.dtype, shape);
    steps.push({ kernel: 'copy', x: byHead, out: x });
    const normed = storage(`${what}_norm`, qkv.dtype, shape);
    steps.push({ kernel: 'rms_norm', x: dense(x, shape), w, eps: k.eps, out: normed });
    const flat = [tokens, heads * d];
    const rotated = storage(what, qkv.dtype, flat);
    const { positions, cache, neox } = k;
    steps.push({
      kernel: 'rotary',
      x: dense(normed, flat),
      positions,
      cache,
      headSize: d,
      neox,
      out: rotated,
    });
    const into = i === parts.length - 1 ? k.out : storage(`qkv_${what}`, qkv.dtype, [tokens, width]);
    steps.push({
      kernel: 'scatter',
      base,
      src: dense(rotated, flat),
      at: col,
      strides: [width, 1],
      out: into,
    });
    base = dense(into, [tokens, width]);
  }
  return steps;
}

// --- cost ---------------------------------------------------------------------------------------

export const DTYPE_BYTES: Record<StorageDType, number> = { bf16: 2, f16: 2, f32: 4, i32: 4 };

/** What one step moves and computes on one rank (bytes of its views and outputs, FLOPs of its arithmetic). */
export interface KernelCost {
  bytesRead: number;
  bytesWritten: number;
  flops: number;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const viewBytes = (v: View) => numel(v.shape) * DTYPE_BYTES[v.dtype];

/**
 * Each kernel's cost from its parameters; `outBytes` are the bytes of the storages it writes,
 * `ranks` the group size. Reads count each view once (a broadcast operand once); collectives read
 * every peer's input; the MoE reads each expert's weights at most once.
 */
export const KERNEL_COST: {
  [K in KernelName]: (k: Extract<Kernel, { kernel: K }>, outBytes: number, ranks: number) => KernelCost;
} = {
  seed: (_k, out) => ({ bytesRead: 0, bytesWritten: out, flops: 0 }),
  copy: (k, out) => ({ bytesRead: viewBytes(k.x), bytesWritten: out, flops: 0 }),
  pad: (k, out) => ({ bytesRead: viewBytes(k.x), bytesWritten: out, flops: 0 }),
  add: (k, out) => ({
    bytesRead: viewBytes(k.a) + viewBytes(k.b),
    bytesWritten: out,
    flops: 2 * Math.max(numel(k.a.shape), numel(k.b.shape)),
  }),
  map: (k, out) => ({
    bytesRead: viewBytes(k.a) + (k.b ? viewBytes(k.b) : 0),
    bytesWritten: out,
    flops: numel(k.a.shape),
  }),
  gemm: (k, out) => {
    const [M, K] = k.a.shape,
      N = k.b.shape[1];
    return {
      bytesRead: viewBytes(k.a) + viewBytes(k.b) + (k.bias ? viewBytes(k.bias) : 0),
      bytesWritten: out,
      flops: 2 * M * N * K + (k.bias ? 2 * M * N : 0),
    };
  },
  embedding: (k, out) => ({ bytesRead: viewBytes(k.indices) + out, bytesWritten: out, flops: 0 }),
  // Square, sum, scale, weight: about 4 FLOPs an element (plus the residual add where there is one,
  // and the quant's multiply, clamp and round).
  rms_norm: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.w),
    bytesWritten: out,
    flops: (k.scale ? 7 : 4) * numel(k.x.shape),
  }),
  fused_add_rms_norm: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.residual) + viewBytes(k.w),
    bytesWritten: out,
    flops: (k.scale ? 8 : 5) * numel(k.x.shape),
  }),
  all_reduce: (k, out, ranks) => ({
    bytesRead: ranks * viewBytes(k.x),
    bytesWritten: out,
    flops: (ranks - 1) * numel(k.x.shape),
  }),
  // Multiply, clamp, round: about 3 FLOPs an element; the scale is one element.
  fp8_quant: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.scale),
    bytesWritten: out,
    flops: 3 * numel(k.x.shape),
  }),
  // A max over each block of 16, then a few f32 operations a block; the packing reads x again.
  nvfp4_scale: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.globalScale),
    bytesWritten: out,
    flops: numel(k.x.shape) + (4 * numel(k.x.shape)) / 16,
  }),
  nvfp4_quant: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.scale) + viewBytes(k.globalScale),
    bytesWritten: out,
    flops: 3 * numel(k.x.shape),
  }),
  // 2·M·N·K: out [M, N], a [M, K/2].
  nvfp4_gemm: (k, out) => ({
    bytesRead:
      viewBytes(k.a) + viewBytes(k.aScale) + viewBytes(k.b) + viewBytes(k.bScale) + viewBytes(k.alpha),
    bytesWritten: out,
    flops: 4 * k.a.shape[0]! * k.b.shape[0]! * k.a.shape[1]!,
  }),
  // The absmax, then a divide, clamp and round per element (x is read twice, the second from cache).
  fp8_quant_rows: (k, out) => ({ bytesRead: viewBytes(k.x), bytesWritten: out, flops: 5 * numel(k.x.shape) }),
  // q and k heads read and written in place (else all of qkv, v copied), a cache row a token; the
  // norm's ~4 FLOPs and the rotation's 3 per q / k value.
  qk_norm_rope: (k, out) => {
    const qk = k.qkv.shape[0]! * (k.qHeads + k.kHeads) * k.headSize;
    const inPlace = k.out === k.qkv.storage;
    return {
      bytesRead:
        (inPlace ? qk * DTYPE_BYTES[k.qkv.dtype] : viewBytes(k.qkv)) +
        viewBytes(k.qWeight) +
        viewBytes(k.kWeight) +
        viewBytes(k.positions) +
        k.qkv.shape[0]! * k.cache.shape[1]! * DTYPE_BYTES[k.cache.dtype],
      bytesWritten: inPlace ? qk * DTYPE_BYTES[k.qkv.dtype] : out,
      flops: 7 * qk,
    };
  },
  // exp, add, divide, two multiplies per output (half of x's elements), and the quant's three.
  silu_and_mul: (k, out) => ({
    bytesRead: viewBytes(k.x) + (k.scale ? viewBytes(k.scale) : 0),
    bytesWritten: out,
    flops: ((k.scale ? 8 : 5) * numel(k.x.shape)) / 2,
  }),
  // silu_and_mul's five per output, the block max and the scaling and rounding of each.
  silu_and_mul_nvfp4: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.globalScale),
    bytesWritten: out,
    flops: (9 * numel(k.x.shape)) / 2,
  }),
  // The norm's, then the absmax and the quant's divide (or multiply), clamp and round.
  rms_norm_dynamic_quant: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.w),
    bytesWritten: out,
    flops: 9 * numel(k.x.shape),
  }),
  fused_add_rms_norm_dynamic_quant: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.residual) + viewBytes(k.w),
    bytesWritten: out,
    flops: 10 * numel(k.x.shape),
  }),
  fused_allreduce_norm: (k, out, ranks) => ({
    bytesRead: ranks * viewBytes(k.x) + viewBytes(k.residual) + viewBytes(k.w),
    bytesWritten: out,
    flops: (ranks - 1 + 5) * numel(k.x.shape),
  }),
  reduce_rows: (k, out) => ({ bytesRead: viewBytes(k.x), bytesWritten: out, flops: numel(k.x.shape) }),
  // Each rank reads every peer's rows of its share (reduce-scatter) or every peer's shard (all-gather).
  reduce_scatter: (k, out, ranks) => ({
    bytesRead: viewBytes(k.x),
    bytesWritten: out,
    flops: ((ranks - 1) * numel(k.x.shape)) / ranks,
  }),
  all_gather: (k, out, ranks) => ({ bytesRead: ranks * viewBytes(k.x), bytesWritten: out, flops: 0 }),
  scatter: (k, out) => ({ bytesRead: viewBytes(k.base) + viewBytes(k.src), bytesWritten: out, flops: 0 }),
  // Four multiplies and two adds per rotated pair.
  rotary: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.positions) + numel(k.x.shape) * DTYPE_BYTES[k.cache.dtype],
    bytesWritten: out,
    flops: 3 * numel(k.x.shape),
  }),
  // The reference copies the cache; vLLM's kernel writes the tokens' rows in place.
  kv_cache_write: (k, out) => ({
    bytesRead: viewBytes(k.cache) + viewBytes(k.x) + viewBytes(k.slots),
    bytesWritten: out,
    flops: 0,
  }),
  // QKᵀ and PV over the causal half, plus the softmax.
  attention: (k, out) => {
    const [T, H, D] = k.q.shape;
    return {
      bytesRead: viewBytes(k.q) + viewBytes(k.k) + viewBytes(k.v) + (k.scale ? viewBytes(k.scale) : 0),
      bytesWritten: out,
      // The fused quant: multiply, clamp, round per output element.
      flops: 2 * T * T * H * D + 3 * T * T * H + (k.scale ? 3 * T * H * D : 0),
    };
  },
  moe: (k, out, ranks) => {
    const T = numel(k.x.shape) / k.x.shape[k.x.shape.length - 1],
      H = k.x.shape[k.x.shape.length - 1],
      Is = k.intermediate / ranks;
    // Per routed token: W13 (2·Is×H) and W2 (H×Is), two FLOPs per multiply-add.
    return {
      bytesRead: viewBytes(k.x) + viewBytes(k.logits) + DTYPE_BYTES[k.x.dtype] * 3 * H * Is * k.experts,
      bytesWritten: out,
      flops: 2 * T * k.topK * 3 * H * Is,
    };
  },
};

/** A kernel step's cost (the dispatch through KERNEL_COST, typed once here). */
export function kernelCost(k: Kernel, outBytes: number, ranks: number): KernelCost {
  return (KERNEL_COST[k.kernel] as (k: Kernel, outBytes: number, ranks: number) => KernelCost)(
    k,
    outBytes,
    ranks,
  );
}
