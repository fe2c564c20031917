// The op table: the one place where what the executors compute is declared. Every backend (CPU
// reference, WGSL, the agent's C++/CUDA worker) and the wire format read it from here; the agent's
// C++ enums and map bodies are generated from it (agent/opTableCpp.ts → agent/native/op_table.gen.hpp).
//
// Three tables, each a Record over a string union, so forgetting an entry is a type error:
// - MAP_FNS: elementwise functions of one or two operands and a scalar (CPU body, WGSL body, C++ body);
// - ELEMENTWISE_OPS: which FX op lowers to which map function (tensor or Python-number operand);
// - KERNELS: the plan's kernel steps: wire fields, the worker op they run as, rounding contract, cost.
// Schemas, shape rules and rewrite facts of FX ops stay in ops.ts (which reads ELEMENTWISE_OPS).

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
  | 'zeros';
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
export type OperandDomain = 'bool' | 'real' | 'positive' | 'nonzero' | 'index';

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
  /** The contract every check that compares a backend with the CPU reference holds it to. */
  rounding: MapRounding;
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
  // vLLM's silu_and_mul: silu(x)·y in f32 over the two halves of the last dim, rounded once.
  silu_mul: {
    tensorB: true,
    domain: ['real', 'real'],
    cpu: (a, b) => f(f(a / f(1 + f(Math.exp(-a)))) * b),
    wgsl: '(a / (1.0 + exp(-a))) * b',
    cpp: '(a / (1.f + expf(-a))) * b',
    rounding: EXP_ROUNDING,
    doc: 'silu(a) · b',
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
} as const satisfies Record<string, MapFnDef>;

export type MapFn = keyof typeof MAP_FN_TABLE;
/** Every entry with the one signature (the literal table above narrows each body's parameters). */
export const MAP_FNS: Record<MapFn, MapFnDef> = MAP_FN_TABLE;
/** A map function's wire code is its position here (the order of MAP_FNS). */
export const MAP_FN_CODES = Object.keys(MAP_FNS) as MapFn[];

// --- elementwise FX ops ---------------------------------------------------------------------

export interface ElementwiseOpDef {
  /** Lowering when `other` (argument 1) is a tensor; `scalarArg` holds the scalar word's argument. */
  tensor?: { fn: MapFn | 'add'; scalarArg?: number };
  /**
   * Lowering when `other` is a Python number (the scalar word). `size`: the number is a size
   * (a vocabulary bound compared with token ids) and follows the preset's sizes.
   */
  number?: { fn: MapFn; size?: boolean };
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
type OptionalField = 'int?' | 'rounding?';

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
  rms_norm: {
    fields: { x: 'view', w: 'view', eps: 'num', out: 'storage' },
    worker: ['rms_norm'],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: false,
    doc: 'RMSNorm',
  },
  fused_add_rms_norm: {
    fields: { x: 'view', residual: 'view', w: 'view', eps: 'num', out: 'storage', residualOut: 'storage' },
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
  attention: {
    fields: { q: 'view', k: 'view', v: 'view', out: 'storage' },
    worker: [],
    rounding: { ulps: { bf16: 1, f32: 4 } },
    collective: false,
    doc: 'causal attention',
  },
  // FP8 e4m3fn quant of contiguous x by 1/scale[0] (src/graph/fp8.ts), values held in the run
  // dtype (each is exact in bf16). satfinite: FlashInfer's saturating cast (the fused op's
  // quant_out), else vLLM's static_scaled_fp8_quant clamp. No worker op yet: the agent refuses it.
  fp8_quant: {
    fields: { x: 'view', scale: 'view', satfinite: 'bool', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'static FP8 quant',
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
  // Square, sum, scale, weight: about 4 FLOPs an element (plus the residual add where there is one).
  rms_norm: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.w),
    bytesWritten: out,
    flops: 4 * numel(k.x.shape),
  }),
  fused_add_rms_norm: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.residual) + viewBytes(k.w),
    bytesWritten: out,
    flops: 5 * numel(k.x.shape),
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
  fused_allreduce_norm: (k, out, ranks) => ({
    bytesRead: ranks * viewBytes(k.x) + viewBytes(k.residual) + viewBytes(k.w),
    bytesWritten: out,
    flops: (ranks - 1 + 5) * numel(k.x.shape),
  }),
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
  // QKᵀ and PV over the causal half, plus the softmax.
  attention: (k, out) => {
    const [T, H, D] = k.q.shape;
    return {
      bytesRead: viewBytes(k.q) + viewBytes(k.k) + viewBytes(k.v),
      bytesWritten: out,
      flops: 2 * T * T * H * D + 3 * T * T * H,
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
