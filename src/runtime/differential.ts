// The differential check across backends: seeded random graphs over every kernel, every
// elementwise op and every map function of the op table (src/graph/opTable.ts), planned once and
// run on each backend; every output is compared with the CPU reference under the contract the
// table declares for the step that wrote it: a map step's function's own rounding, element by
// element, else its kernel's rounding (bitwise where specified, else ulps at the output's scale).
// Map functions' tensor operands are fed from their declared domains (OPERAND_DOMAINS): special
// points and seeded draws, not only 0 and 1.
//
// A graph's inexact kernels (GEMM, norms, sums) read only values that are exact on every
// backend (inputs, views, exact kernels), so each output is held to its own kernel's contract
// rather than to an accumulation of its producers'.

import type { Arg, Graph } from '../graph/ir.ts';
import { GraphBuilder } from '../graph/build.ts';
import { prng } from '../graph/seededRandom.ts';
import {
  ELEMENTWISE_OPS,
  KERNELS,
  MAP_FNS,
  OPERAND_DOMAINS,
  mapFnUlps,
  SILU_MUL_BY_DTYPE,
  type ElementwiseOp,
  type ElementwiseOpDef,
  type Field,
  type KernelName,
  type MapFn,
  type OperandDomain,
  type Rounding,
} from '../graph/opTable.ts';
import type { Backend, RunOptions, RunResult } from './backend.ts';
import { buildPlan, type Plan, type Step } from './plan.ts';
import { compareTensor, type OutputComparison } from './compareOutputs.ts';
import { hostValues, toHostTensor, type HostTensor } from './hostTensor.ts';

export interface DifferentialCase {
  seed: number;
  dtype: 'bf16' | 'f32';
  ranks: number;
  allreduce: RunOptions['allreduce'];
  /** The symbolic token dim's value. */
  tokens: number;
  /** Columns of every norm (else small random ones): GPT-OSS-wide rows sum thousands of squares. */
  normCols?: number;
}

/** A graph and the values of its inputs fed from map operands' domains (the rest are seeded). */
export interface GeneratedGraph {
  graph: Graph;
  inputs: Map<string, HostTensor>;
}

/** Sizes that avoid the tiny preset's mapped dims (40, 48, 97 come from 2880, 3072, the vocabulary). */
const COLS = [3, 5, 8, 12, 17, 24, 31, 36];

const AF = 'higher_order.auto_functionalized';
const opRef = (target: string): Arg => ({ kind: 'op', target }) as unknown as Arg;

class Gen {
  readonly b = new GraphBuilder('differential', 'module');
  readonly outputs: Arg[] = [];
  /** Values of the inputs fed from a domain, by input name. */
  readonly given = new Map<string, HostTensor>();
  private k = 0;
  constructor(
    readonly rand: () => number,
    readonly dt: 'bf16' | 'f32',
    readonly ranks: number,
    readonly tokens: number,
    readonly wideNorm?: number,
  ) {}
  /** Columns of a norm: even, so the vectorized kernels' pairs split it. */
  normCols() {
    return this.wideNorm ?? this.pick(COLS) * 2;
  }
  int(lo: number, hi: number) {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)];
  }
  /** A float with few mantissa bits (so the scalar is the same in f32 and f64), sometimes negative. */
  scalar() {
    return ((this.rand() < 0.3 ? -1 : 1) * this.int(1, 40)) / 8;
  }
  name(p: string) {
    return `${p}_${this.k++}`;
  }
  type(shape: (number | string)[], dtype: string = this.dt) {
    return `${dtype}[${shape.join(', ')}]`;
  }
  input(shape: (number | string)[], dtype: string = this.dt) {
    return this.b.input(this.name('in'), this.type(shape, dtype));
  }
  /**
   * An input holding values of a domain: its special points in a seeded order, then draws from it,
   * in the dtype a graph holds such values in (masks b8, ids i64: i32 storages; else the run's).
   */
  domainInput(domain: OperandDomain, shape: ('s0' | number)[]) {
    const d = OPERAND_DOMAINS[domain];
    const dims = shape.map((x) => (x === 's0' ? this.tokens : x));
    const n = dims.reduce((a, b) => a * b, 1);
    const special = [...d.special];
    for (let i = special.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [special[i], special[j]] = [special[j], special[i]];
    }
    const values = Array.from({ length: n }, (_, i) => (i < special.length ? special[i] : d.draw(this.rand)));
    const x = this.input(shape, d.dtype === 'float' ? this.dt : d.dtype);
    this.given.set(x.name, toHostTensor(d.dtype === 'float' ? this.dt : 'i32', dims, values));
    return x;
  }
  /** A map function's tensor operands from their domains: a [T, c], b [T, c] or broadcast [c]. */
  operands(fn: MapFn, c: number): Arg[] {
    return MAP_FNS[fn].domain.map((d, k) =>
      this.domainInput(d, k > 0 && this.rand() < 0.5 ? [c] : ['s0', c]),
    );
  }
  node(p: string, op: string, args: Arg[], kwargs: Record<string, Arg>, type: string | null) {
    return this.b.node(this.name(p), op, args, kwargs, type);
  }
  out(a: Arg) {
    this.outputs.push(a);
  }
  /** empty_like of x's first `cols` columns: an output buffer [T, cols] of a graph with no size arithmetic. */
  columnsBuffer(p: string, x: Arg, cols: number) {
    return this.node(
      p,
      'aten.empty_like.default',
      [this.node('slice', 'aten.slice.Tensor', [x, 1, 0, cols], {}, null)],
      {},
      null,
    );
  }
  /** An auto_functionalized call of `target` whose results `items` are outputs. */
  functionalized(p: string, target: string, kwargs: Record<string, Arg>, items: number[]) {
    const af = this.node(p, AF, [opRef(target)], kwargs, null);
    for (const i of items) this.out(this.node('item', 'getitem', [af, i], {}, null));
  }
  /** A per-rank exact value [T, cols]: rows of a per-rank embedding table (weights differ by rank). */
  perRank(cols: number) {
    const vocab = this.int(5, 13);
    const table = this.input([vocab, cols]);
    const ids = this.input(['s0'], 'i64');
    return this.node('embedding', 'aten.embedding.default', [table, ids], {}, this.type(['s0', cols]));
  }
  /** A collective along the token dim of `m` concrete rows of exact values, as an output. */
  tokenCollective(op: 'reduce_scatter' | 'all_gather', m: number, rowsOut: number) {
    const c = this.pick(COLS);
    const x = this.node(
      'embedding',
      'aten.embedding.default',
      [this.input([this.int(5, 13), c]), this.input([m], 'i64')],
      {},
      this.type([m, c]),
    );
    const kw = { dim: 0, world_size: this.ranks, group_name: 'tp:0' };
    this.out(this.node(op, `vllm.${op}.default`, [x], kw, this.type([rowsOut, c])));
  }
}

const CONVERT = 'prims.convert_element_type.default';
const torchDtypeArg = (dt: 'bf16' | 'f32'): Arg => ({
  kind: 'expr',
  text: dt === 'bf16' ? 'torch.bfloat16' : 'torch.float32',
});

/** The map functions some elementwise op of the table lowers to. */
type ElementwiseMapFn = {
  [K in ElementwiseOp]: (typeof ELEMENTWISE_OPS)[K] extends infer D
    ? | (D extends { unary: infer U } ? U : never)
      | (D extends { number: { fn: infer N } } ? N : never)
      | (D extends { tensor: { fn: infer T } } ? T : never)
    : never;
}[ElementwiseOp];

/**
 * A call for each map function that only another op lowers to (no elementwise op of the table):
 * a map function added without an elementwise op or an entry here is a type error.
 */
const MAP_FN_CALLS: Record<Exclude<MapFn, ElementwiseMapFn>, (g: Gen) => void> = {
  // prims.convert_element_type to the run's own dtype (a wider storage would leave the agent out),
  // and to float8_e4m3fn, whose values the run's dtype holds.
  cast: (g) => {
    const x = g.domainInput(MAP_FNS.cast.domain[0], ['s0', g.pick(COLS)]);
    g.out(g.node('cast', CONVERT, [x, torchDtypeArg(g.dt)], {}, null));
  },
  to_f8e4m3fn: (g) => {
    const x = g.domainInput(MAP_FNS.to_f8e4m3fn.domain[0], ['s0', g.pick(COLS)]);
    g.out(g.node('cast', CONVERT, [x, { kind: 'expr', text: 'torch.float8_e4m3fn' }], {}, null));
  },
  // vLLM's silu_and_mul, which lowers to one KERNELS.silu_and_mul step on rows of unit column stride
  // and to the map function of its dtype (SILU_MUL_BY_DTYPE) otherwise: here on every other column
  // of its input, so f32 runs check silu_mul, bf16 runs silu_mul_bf16 as map steps.
  silu_mul: (g) => {
    if (g.dt === 'f32') siluAndMul(g, 2);
  },
  silu_mul_bf16: (g) => {
    if (g.dt === 'bf16') siluAndMul(g, 2);
  },
};

/** `_C.silu_and_mul` on the gate and up halves of one [T, 2c] input, every `step`-th column of a wider one. */
function siluAndMul(g: Gen, step: number) {
  const c = g.pick(COLS);
  const x = g.domainInput(MAP_FNS[SILU_MUL_BY_DTYPE[g.dt]].domain[0], ['s0', 2 * c * step]);
  const input =
    step === 1 ? x : g.node('slice', 'aten.slice.Tensor', [x, 1, 0, 2 * c * step, step], {}, null);
  const half = g.node('slice', 'aten.slice.Tensor', [input, 1, 0, c], {}, null);
  g.functionalized(
    'silu',
    '_C.silu_and_mul.default',
    { result: g.node('empty', 'aten.empty_like.default', [half], {}, null), input },
    [1],
  );
}

/** One generator per kernel of the table: adding a kernel without one is a type error. */
/** rms_norm_dynamic_per_token_quant or rms_norm_per_block_quant, with or without the residual. */
function normDynamicQuant(g: Gen, residual: boolean) {
  const perToken = g.rand() < 0.5;
  const c = perToken ? g.normCols() : 64 * g.int(1, 2);
  const x = g.input(['s0', c]);
  const common = {
    result: g.node('empty', 'aten.empty_like.default', [x], {}, null),
    input: x,
    weight: g.input([c]),
    scale: g.input(['s0', perToken ? 1 : c / 64], 'f32'),
    epsilon: 1e-6,
    scale_ub: null,
    residual: residual ? g.input(['s0', c]) : null,
  };
  const items = residual ? [1, 2, 3] : [1, 2];
  if (perToken) g.functionalized('norm_quant', '_C.rms_norm_dynamic_per_token_quant.default', common, items);
  else
    g.functionalized(
      'norm_quant',
      '_C.rms_norm_per_block_quant.default',
      { ...common, group_size: 64, is_scale_transposed: g.rand() < 0.5 },
      items,
    );
}

const KERNEL_CASES: Record<KernelName, (g: Gen) => void> = {
  seed: (g) => {
    const x = g.input(['s0', g.pick(COLS)]);
    g.node('copy', 'aten.clone.default', [x], {}, null);
    g.out(x);
  },
  copy: (g) => {
    const c = g.pick(COLS) + 4;
    const x = g.input(['s0', c]);
    const start = g.int(0, 2),
      step = g.int(1, 3),
      end = g.int(start + 1, c);
    const s = g.node('slice', 'aten.slice.Tensor', [x, 1, start, end, step], {}, null);
    g.out(g.node('clone', 'aten.clone.default', [s], {}, null));
  },
  pad: (g) => {
    const c = g.pick(COLS);
    const x = g.input(['s0', c]);
    const lo = g.int(0, 3),
      hi = g.int(0, 5),
      top = g.int(0, 2);
    g.out(g.node('pad', 'aten.constant_pad_nd.default', [x, [lo, hi, top, 0], g.scalar()], {}, null));
  },
  add: (g) => {
    const c = g.pick(COLS);
    const x = g.input(['s0', c]);
    const y = g.rand() < 0.5 ? g.input(['s0', c]) : g.input([c]);
    g.out(g.node('add', 'aten.add.Tensor', [x, y], g.rand() < 0.5 ? { alpha: g.scalar() } : {}, null));
  },
  map: (g) => {
    // Every elementwise op of the table in every operand form it has, then every map function other
    // ops lower to; each tensor operand holds values of its map function's declared domain.
    for (const [op, def] of Object.entries(ELEMENTWISE_OPS) as [ElementwiseOp, ElementwiseOpDef][]) {
      const c = g.pick(COLS);
      if (def.unary) g.out(g.node('map', op, g.operands(def.unary, c), {}, null));
      if (def.number) {
        const s = def.number.size ? g.int(-1, 1) : (def.number.only ?? g.scalar());
        g.out(g.node('map', op, [...g.operands(def.number.fn, c), s], {}, null));
      }
      if (def.tensor && def.tensor.fn !== 'add') {
        const args = g.operands(def.tensor.fn, c);
        if (def.tensor.scalarArg !== undefined) args.push(g.scalar());
        g.out(g.node('map', op, args, {}, null));
      }
    }
    for (const call of Object.values(MAP_FN_CALLS)) call(g);
  },
  gemm: (g) => {
    const k = g.pick(COLS),
      n = g.pick(COLS);
    const x = g.input(['s0', k]);
    const w = g.input([n, k]);
    const wt = g.node('t', 'aten.t.default', [w], {}, null);
    if (g.rand() < 0.5) g.out(g.node('mm', 'aten.mm.default', [x, wt], {}, null));
    else g.out(g.node('addmm', 'aten.addmm.default', [g.input([n]), x, wt], {}, null));
  },
  embedding: (g) => g.out(g.perRank(g.pick(COLS))),
  // Native RMSNorm's mean of squares and native QuantFP8's absmax, along the last dim or over all.
  reduce_rows: (g) => {
    const x = g.input(['s0', g.pick(COLS)]);
    g.out(g.node('mean', 'aten.mean.dim', [x, [-1], g.rand() < 0.5], {}, null));
    g.out(g.node('amax', 'aten.amax.default', [x, g.rand() < 0.5 ? [-1] : []], {}, null));
  },
  rms_norm: (g) => {
    const c = g.normCols();
    const x = g.input(['s0', c]);
    const res = g.node('empty', 'aten.empty_like.default', [x], {}, null);
    g.functionalized(
      'rms',
      '_C.rms_norm.default',
      { result: res, input: x, weight: g.input([c]), epsilon: 1e-6 },
      [1],
    );
  },
  fused_add_rms_norm: (g) => {
    const c = g.normCols();
    g.functionalized(
      'add_rms',
      '_C.fused_add_rms_norm.default',
      { input: g.input(['s0', c]), residual: g.input(['s0', c]), weight: g.input([c]), epsilon: 1e-5 },
      [1, 2],
    );
  },
  // vLLM's fused norm + dynamic quant: per token, or per group of 64 (scales row- or column-major).
  rms_norm_dynamic_quant: (g) => normDynamicQuant(g, false),
  fused_add_rms_norm_dynamic_quant: (g) => normDynamicQuant(g, true),
  all_reduce: (g) => {
    const x = g.perRank(g.pick(COLS));
    g.out(g.node('all_reduce', 'vllm.all_reduce.default', [x, 'tp:0'], {}, null));
  },
  fused_allreduce_norm: (g) => {
    const c = g.normCols();
    g.functionalized(
      'ar_norm',
      'vllm.flashinfer_trtllm_fused_allreduce_norm.default',
      {
        allreduce_in: g.perRank(c),
        residual: g.input(['s0', c]),
        norm_out: null,
        quant_out: null,
        scale_out: null,
        rms_gamma: g.input([c]),
        rms_eps: 1e-6,
        pattern_code: 1,
        world_rank: 0,
        world_size: g.ranks,
        launch_with_pdl: true,
        trigger_completion_at_end: true,
        fp32_acc: true,
        max_token_num: 1024,
      },
      [1, 2],
    );
  },
  // vLLM's static FP8 quant, by a seeded positive scale (a norm weight's values); the saturating
  // form comes with the fused all-reduce + norm's pattern 2, checked in src/runtime/fp8QuantRun.test.ts.
  fp8_quant: (g) => {
    const x = g.input(['s0', g.pick(COLS)]);
    g.functionalized(
      'quant',
      '_C.static_scaled_fp8_quant.default',
      { result: g.node('empty', 'aten.empty_like.default', [x], {}, null), input: x, scale: g.input([1]) },
      [1],
    );
  },
  // vLLM's scaled_fp4_quant (both NVFP4 kernels): a [T, 16c] input and its global scale.
  nvfp4_scale: (g) => {
    const k = 16 * g.int(1, 2);
    const x = g.input(['s0', k]);
    // The output buffers, shaped as slices of x ([T, k/2] packed pairs, [T, k/16] block scales).
    const buffer = (p: string, cols: number) => g.columnsBuffer(p, x, cols);
    g.functionalized(
      'fp4',
      '_C.scaled_fp4_quant.default',
      {
        output: buffer('packed', k / 2),
        input: x,
        output_scale: buffer('sf', k / 16),
        input_scale: g.input([1], 'f32'),
      },
      [1, 2],
    );
  },
  nvfp4_quant: (g) => KERNEL_CASES.nvfp4_scale(g),
  // vLLM's cutlass_scaled_fp4_mm: a from scaled_fp4_quant of a [T, k] input, b a packed weight
  // [n, k/2] (seeded bytes) with its e4m3 block scales, alpha a seeded positive [1].
  nvfp4_gemm: (g) => {
    const k = 16 * g.int(1, 3),
      n = 2 * g.int(1, k / 2);
    const x = g.input(['s0', k]);
    const like = (p: string, cols: number) => g.columnsBuffer(p, x, cols);
    const fp4 = g.node(
      'fp4',
      AF,
      [opRef('_C.scaled_fp4_quant.default')],
      {
        output: like('packed', k / 2),
        input: x,
        output_scale: like('sf', k / 16),
        input_scale: g.input([1], 'f32'),
      },
      null,
    );
    g.functionalized(
      'mm',
      '_C.cutlass_scaled_fp4_mm.default',
      {
        out: like('out', n),
        a: g.node('item', 'getitem', [fp4, 1], {}, null),
        b: g.input([n, k / 2], 'u8'),
        block_scale_a: g.node('item', 'getitem', [fp4, 2], {}, null),
        block_scale_b: g.input([n, k / 16], 'f8e4m3fn'),
        alpha: g.input([1], 'f32'),
      },
      [1],
    );
  },
  // vLLM's dynamic per-token quant: the values and one f32 scale per token.
  fp8_quant_rows: (g) => {
    const x = g.input(['s0', g.pick(COLS)]);
    g.functionalized(
      'quant',
      '_C.dynamic_per_token_scaled_fp8_quant.default',
      {
        result: g.node('empty', 'aten.empty_like.default', [x], {}, null),
        input: x,
        scale: g.input(['s0', 1], 'f32'),
        scale_ub: null,
      },
      [1, 2],
    );
  },
  // vLLM's silu_and_mul on contiguous rows: one step (its static-quant form, whose quantized values
  // may differ across backends by an e4m3 step, is checked against the pair in src/wgsl/siluMul.test.ts).
  silu_and_mul: (g) => siluAndMul(g, 1),
  // vLLM's silu_and_mul_nvfp4_quant on a [T, 2k] input, into linear [T, k/2] and [T, k/16] buffers.
  silu_and_mul_nvfp4: (g) => {
    const k = 16 * g.int(1, 2);
    const x = g.input(['s0', 2 * k]);
    const buffer = (p: string, cols: number) => g.columnsBuffer(p, x, cols);
    g.functionalized(
      'silu_fp4',
      '_C.silu_and_mul_nvfp4_quant.default',
      {
        result: buffer('packed', k / 2),
        result_block_scale: buffer('sf', k / 16),
        input: x,
        input_global_scale: g.input([1], 'f32'),
      },
      [1, 2],
    );
  },
  // Sequence parallelism's pair, over a concrete token count every rank count splits.
  reduce_scatter: (g) => {
    const m = g.ranks * g.int(1, 3);
    g.tokenCollective('reduce_scatter', m, m / g.ranks);
  },
  all_gather: (g) => {
    const m = g.int(1, 3);
    g.tokenCollective('all_gather', m, m * g.ranks);
  },
  // Functionalization's write-back: a strided range of columns replaced.
  scatter: (g) => {
    const c = g.pick(COLS) + 6,
      start = g.int(0, 2),
      step = g.int(1, 2);
    const len = Math.ceil((c - start) / step);
    const base = g.input(['s0', c]),
      src = g.input(['s0', len]);
    g.out(g.node('scatter', 'aten.slice_scatter.default', [base, src, 1, start, c, step], {}, null));
  },
  rotary: (g) => {
    const hs = 2 * g.int(1, 4),
      heads = g.int(1, 3),
      rot = 2 * g.int(1, hs / 2);
    g.functionalized(
      'rope',
      '_C.rotary_embedding.default',
      {
        positions: g.input(['s0'], 'i64'),
        query: g.input(['s0', heads * hs]),
        key: g.input(['s0', hs]),
        head_size: hs,
        cos_sin_cache: g.input([16, rot]),
        is_neox: g.rand() < 0.5,
      },
      [1, 2],
    );
  },
  // The fused QK-norm + RoPE: q and k heads of one qkv normed and rotated (a partial rotary too).
  qk_norm_rope: (g) => {
    const d = g.pick([6, 8, 16]),
      hq = g.int(1, 3),
      hk = g.int(1, 2),
      rot = 2 * g.int(1, d / 2);
    g.functionalized(
      'qknr',
      '_C.fused_qk_norm_rope.default',
      {
        qkv: g.input(['s0', (hq + 2 * hk) * d]),
        num_heads_q: hq,
        num_heads_k: hk,
        num_heads_v: hk,
        head_dim: d,
        eps: 1e-6,
        q_weight: g.input([d]),
        k_weight: g.input([d]),
        cos_sin_cache: g.input([16, rot]),
        is_neox: g.rand() < 0.5,
        position_ids: g.input(['s0'], 'i64'),
      },
      [1],
    );
  },
  attention: (g) => {
    const kv = g.int(1, 2),
      heads = kv * g.int(1, 2),
      d = g.pick([4, 8]);
    const q = g.input(['s0', heads, d]);
    g.functionalized(
      'attn',
      'vllm.unified_attention_with_output.default',
      {
        query: q,
        key: g.input(['s0', kv, d]),
        value: g.input(['s0', kv, d]),
        output: g.node('empty', 'aten.empty_like.default', [q], {}, null),
        layer_name: g.name('layer'),
        output_scale: null,
        output_block_scale: null,
      },
      [1],
    );
  },
  // The paged KV cache write: key and value rows into the layer's seeded cache at seeded slots.
  kv_cache_write: (g) => {
    const kv = g.int(1, 2),
      d = g.pick([4, 8]);
    const update = g.node(
      'kv_update',
      'vllm.unified_kv_cache_update.default',
      [g.input(['s0', kv, d]), g.input(['s0', kv, d]), g.name('layer')],
      {},
      g.type([0]),
    );
    g.out(update);
  },
  moe: (g) => {
    // hidden 3072 and 32 experts: the tiny preset maps them to 48 columns, 32 experts top-4.
    const x = g.input(['s0', 3072]);
    const logits = g.input(['s0', 32], 'f32');
    g.out(g.node('moe', 'vllm.moe_forward.default', [x, logits, g.name('layer')], {}, g.type(['s0', 3072])));
  },
};

/** A seeded random graph with at least one node per kernel, per elementwise op form and per map function. */
export function randomGraph(
  c: DifferentialCase,
  covers: (k: KernelName) => boolean = () => true,
): GeneratedGraph {
  const g = new Gen(prng(c.seed), c.dtype, c.ranks, c.tokens, c.normCols);
  const kernels = (Object.keys(KERNEL_CASES) as KernelName[]).filter(covers);
  // Every kernel once, then a few more picked at random, in a shuffled order.
  const order = [...kernels, ...Array.from({ length: 4 }, () => g.pick(kernels))].sort(() => g.rand() - 0.5);
  for (const k of order) KERNEL_CASES[k](g);
  g.b.output(...g.outputs);
  return { graph: g.b.build(), inputs: g.given };
}

/** The ulps an output may differ by under a kernel's rounding contract (0: bitwise). */
export function allowedUlps(r: Rounding, dtype: 'bf16' | 'f32'): number {
  return r === 'exact' ? 0 : r.ulps[dtype];
}

/** What an output is held to: ulps per element (map functions) or at the output's scale (kernels). */
export interface OutputContract {
  ulps: number;
  perElement: boolean;
  /** The step's kernel (map: and its function) and why, for the report. */
  why: string;
}

/** The step that last wrote a storage (a kernel's fields of kind 'storage' are what it writes). */
function writerOf(plan: Plan, storage: string): Step | undefined {
  for (let i = plan.steps.length - 1; i >= 0; i--) {
    const s = plan.steps[i];
    const fields: Record<string, Field> = KERNELS[s.kernel].fields;
    const values = s as unknown as Record<string, unknown>;
    if (Object.keys(fields).some((f) => fields[f] === 'storage' && values[f] === storage)) return s;
  }
  return undefined;
}

/**
 * The contract the op table declares for a plan output: a map step's function's own rounding
 * (MAP_FNS[fn].rounding, per element), else the rounding of the kernel that wrote it
 * (KERNELS[k].rounding, at the output's scale). An output no step writes is a seeded input: exact.
 */
export function outputContract(plan: Plan, output: string, dtype: 'bf16' | 'f32'): OutputContract {
  const view = plan.outputs.find((o) => o.name === output)?.view;
  const s = view && writerOf(plan, view.storage);
  if (s?.kernel === 'map') {
    const r = MAP_FNS[s.fn].rounding;
    const ulps = mapFnUlps(r, dtype);
    const why = r === 'exact' ? 'IEEE f32 operations only' : `exp, ≤ ${ulps} ulps per element`;
    return { ulps, perElement: true, why: `map ${s.fn}: ${why}` };
  }
  const kernel = s?.kernel ?? 'seed';
  const r = KERNELS[kernel].rounding;
  return { ulps: allowedUlps(r, dtype), perElement: false, why: `${kernel}: ${describeRounding(r, dtype)}` };
}

export interface BackendUnderTest {
  name: string;
  backend: Backend;
  options?: Partial<RunOptions>;
}

export interface DifferentialResult {
  case: DifferentialCase;
  plan: Plan;
  /** Per backend: every output of every rank against the CPU reference. */
  comparisons: Map<string, OutputComparison[]>;
  /** Kernel → steps of the plan, to show what was covered. */
  kernelCounts: Map<KernelName, number>;
}

/** Plans the case's graph once and runs it on the reference and on each backend. */
export async function runDifferentialCase(
  c: DifferentialCase,
  reference: Backend,
  backends: BackendUnderTest[],
): Promise<DifferentialResult> {
  // The agent runs the kernels its worker has ops for (KERNELS[k].worker); a sweep with it covers those.
  const agent = backends.some((b) => b.backend.name === 'agent');
  const { graph, inputs } = randomGraph(c, agent ? (k) => KERNELS[k].worker.length > 0 : undefined);
  const plan = buildPlan(graph, { preset: 'tiny', dtype: c.dtype, ranks: c.ranks, tokens: c.tokens });
  const kernelCounts = new Map<KernelName, number>();
  for (const s of plan.steps) kernelCounts.set(s.kernel, (kernelCounts.get(s.kernel) ?? 0) + 1);
  const opts: RunOptions = {
    backend: 'cpu',
    ranks: c.ranks,
    preset: 'tiny',
    dtype: c.dtype,
    allreduce: c.allreduce,
    workers: false,
    seed: c.seed,
    tokens: c.tokens,
    inputs,
  };
  const ref = await reference.run(plan, opts);
  const comparisons = new Map<string, OutputComparison[]>();
  for (const b of backends) {
    const got = await b.backend.run(plan, { ...opts, backend: b.backend.name, ...b.options });
    comparisons.set(
      b.name,
      compareRuns(ref, got, (name) => outputContract(plan, name, c.dtype)),
    );
  }
  return { case: c, plan, comparisons, kernelCounts };
}

function describeRounding(r: Rounding, dtype: 'bf16' | 'f32'): string {
  return r === 'exact' ? 'rounding specified' : `f32 accumulation order free, ≤ ${r.ulps[dtype]} ulps`;
}

function compareRuns(
  ref: RunResult,
  got: RunResult,
  contract: (output: string) => OutputContract,
): OutputComparison[] {
  const out: OutputComparison[] = [];
  for (let r = 0; r < ref.outputs.length; r++) {
    for (const [name, want] of ref.outputs[r]) {
      const have = got.outputs[r]?.get(name);
      const { ulps, perElement, why } = contract(name);
      if (!have) {
        out.push({
          name: `rank ${r}: ${name}`,
          maxAbs: Infinity,
          maxRel: Infinity,
          bitwiseEqual: false,
          ulps: Infinity,
          tolerance: 'the output is missing',
          pass: false,
          fedFrom: [],
          proven: false,
        });
        continue;
      }
      out.push(
        perElement
          ? compareMapOutput(`rank ${r}: ${name}`, want, have, ulps, why)
          : ulps === 0
            ? compareTensor(`rank ${r}: ${name}`, want, have, 0, why)
            : compareScaled(`rank ${r}: ${name}`, want, have, ulps, why),
      );
    }
  }
  return out;
}

/** The smallest normal f32: below it a backend may return zero (WGSL may flush subnormals). */
const MIN_NORMAL = 2 ** -126;

/**
 * A map step's output under its function's rounding, element by element (within `ulps`; 0:
 * bitwise), except that where the reference is a subnormal a backend may return zero.
 */
export function compareMapOutput(
  name: string,
  want: HostTensor,
  have: HostTensor,
  ulps: number,
  why: string,
): OutputComparison {
  const w = hostValues(want),
    h = hostValues(have);
  const flushed = (i: number) => h[i] === 0 && w[i] !== 0 && Math.abs(w[i]) < MIN_NORMAL;
  if (
    (have.dtype === 'bf16' || have.dtype === 'f32') &&
    w.length === h.length &&
    h.some((_, i) => flushed(i))
  )
    have = toHostTensor(
      have.dtype,
      have.shape,
      Array.from(h, (v, i) => (flushed(i) ? w[i] : v)),
    );
  return compareTensor(name, want, have, ulps, why);
}

/** The ulp of the dtype at magnitude x (x > 0). */
function ulpAt(dtype: HostTensor['dtype'], x: number): number {
  const e = Math.floor(Math.log2(x));
  return 2 ** (e - (dtype === 'bf16' ? 7 : dtype === 'f16' ? 10 : 23));
}

/** Distance in ulps at the tensor's scale: max |a − b| over the ulp at max |a|. */
export function compareScaled(
  name: string,
  want: HostTensor,
  have: HostTensor,
  allowed: number,
  why: string,
): OutputComparison {
  const c = compareTensor(name, want, have, Infinity, why);
  if (want.shape.join() !== have.shape.join())
    return { ...c, tolerance: `shapes differ: [${want.shape}] vs [${have.shape}]`, pass: false };
  const x = hostValues(want);
  let scale = 0;
  for (const v of x) scale = Math.max(scale, Math.abs(v));
  const ulps = c.maxAbs === 0 ? 0 : scale === 0 ? Infinity : c.maxAbs / ulpAt(want.dtype, scale);
  return {
    ...c,
    ulps,
    tolerance: `≤ ${allowed} ${want.dtype} ulps at the output's scale (${why})`,
    pass: ulps <= allowed,
  };
}

/** The cases of one sweep: dtypes, 1–`maxRanks` ranks and the three all-reduce algorithms, from one seed. */
export function differentialCases(seed: number, count: number, maxRanks = 4): DifferentialCase[] {
  const algos: RunOptions['allreduce'][] = ['ring', 'one-shot', 'two-shot'];
  return Array.from({ length: count }, (_, i) => ({
    seed: (seed + i * 0x9e3779b1) >>> 0,
    dtype: i % 2 === 0 ? 'bf16' : 'f32',
    ranks: 1 + (i % maxRanks),
    allreduce: algos[i % 3],
    tokens: [5, 7, 3, 9][(i >> 1) % 4],
  }));
}

/** One line per backend: cases, outputs compared, bitwise, failures (the first few named). */
export function summarize(results: DifferentialResult[]): { lines: string[]; failures: string[] } {
  const byBackend = new Map<string, { outputs: number; bitwise: number; failed: string[] }>();
  for (const r of results) {
    for (const [name, cs] of r.comparisons) {
      const s = byBackend.get(name) ?? { outputs: 0, bitwise: 0, failed: [] };
      for (const c of cs) {
        s.outputs++;
        if (c.bitwiseEqual) s.bitwise++;
        if (!c.pass)
          s.failed.push(
            `seed ${r.case.seed} (${r.case.dtype}, ${r.case.ranks} ranks, ${r.case.allreduce}) ${c.name}: ${c.ulps} ulps, allowed ${c.tolerance}`,
          );
      }
      byBackend.set(name, s);
    }
  }
  // The largest distance seen per kernel and map function (ulps at scale for inexact kernels, per
  // element for map functions), to set contracts from.
  const worst = new Map<string, number>();
  for (const r of results)
    for (const [, cs] of r.comparisons)
      for (const c of cs) {
        const k = `${c.tolerance.match(/\(((?:map )?\w+):/)?.[1] ?? '?'} ${r.case.dtype}`;
        worst.set(k, Math.max(worst.get(k) ?? 0, c.ulps));
      }
  const kernels = new Map<string, number>();
  for (const r of results) for (const [k, n] of r.kernelCounts) kernels.set(k, (kernels.get(k) ?? 0) + n);
  const lines = [
    `differential: ${results.length} graphs, seeds ${results.map((r) => r.case.seed).join(', ')}`,
    `kernel steps: ${[...kernels].map(([k, n]) => `${k} ${n}`).join(', ')}`,
    `largest distance per kernel (ulps): ${[...worst].map(([k, u]) => `${k} ${+u.toFixed(2)}`).join(', ')}`,
    ...[...byBackend].map(
      ([name, s]) =>
        `${name}: ${s.outputs} outputs against the CPU reference, ${s.bitwise} bitwise, ${s.failed.length} outside their contract`,
    ),
  ];
  return { lines, failures: [...byBackend.values()].flatMap((s) => s.failed) };
}
