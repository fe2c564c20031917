// The cost model: per node, bytes read and written and FLOPs from shapes and dtypes (symbolic
// dims bound to a token count); per collective, the bytes each rank sends over NVLink for ring,
// one-shot or two-shot all-reduce; and a roofline time per node on a hardware profile.
//
// Times are serial sums (no overlap between kernels, nor between a collective's link traffic and
// its own HBM traffic), so a rewrite's saving reads directly: fusing all-reduce + RMSNorm removes
// one kernel launch and one round trip of the activation through HBM (the all-reduce's write of
// its result and the norm's read of it).
//
// A node is priced by the op it runs (call.ts), whatever form the call takes: auto_functionalized
// v1 or v2, or in place. Every registered op has an entry in `FX_OP_COST`.

import type { Arg, Graph, Node, TensorType, ValueType } from '../ir.ts';
import { DTYPE_BYTES, isRef } from '../ir.ts';
import { callArg, calledOp, callForm, functionalizedView, type FunctionalizedView } from '../call.ts';
import { isFxOp, lookupOp, type FxOp, type OpDef } from '../ops.ts';
import { dimValue } from '../sizeExpr.ts';
import type { HardwareProfile } from './profiles.ts';

export type Algorithm = 'ring' | 'one-shot' | 'two-shot';

export interface CostEnv {
  /** The value every symbolic dim (s72, 2*s0) is evaluated with its symbols set to. */
  tokens: number;
  /** Ranks in the collective's group; default 1 (no link traffic). */
  tp?: number;
  algorithm?: Algorithm;
}

/** One kernel's HBM traffic and arithmetic. */
export interface KernelCost {
  bytesRead: number;
  bytesWritten: number;
  flops: number;
}

export interface NodeCost extends KernelCost {
  /** For collectives: bytes each rank moves over its links. */
  collectiveBytesPerRank?: number;
  /** Sequential link steps when not the all-reduce algorithm's (a reduce-scatter or all-gather ring: N−1). */
  linkSteps?: number;
  /** The link traffic overlaps the node's own compute (async TP's chunked, fused matmuls). */
  overlapsLink?: boolean;
  /**
   * Kernels the node runs after its own: auto_functionalized_v2 writes each argument it was given
   * as a slice of a base back into that base, where v1's graph spells the same work as slice_scatter nodes.
   */
  writeBacks?: KernelCost[];
}

const NONE: NodeCost = { bytesRead: 0, bytesWritten: 0, flops: 0 };

/** A dim's value: symbols take `tokens` (Python semantics, src/graph/sizeExpr.ts). */
export const bindDim = dimValue;

function bytesOf(t: ValueType | null | undefined, tokens: number): number {
  if (!t || t.kind !== 'tensor') return 0;
  return elems(t, tokens) * DTYPE_BYTES[t.dtype];
}

function elems(t: TensorType, tokens: number): number {
  let n = 1;
  for (const d of t.shape) n *= bindDim(d, tokens);
  return n;
}

/** Bytes each rank moves over its links to all-reduce S bytes among n ranks. */
export function allReduceBytesPerRank(S: number, n: number, algorithm: Algorithm): number {
  if (n <= 1) return 0;
  switch (algorithm) {
    // reduce-scatter then all-gather, each (n−1)/n·S
    case 'ring':
      return ((2 * (n - 1)) / n) * S;
    // every rank reads every peer's whole buffer
    case 'one-shot':
      return (n - 1) * S;
    // reduce-scatter by reading peers' chunks, then all-gather by reading the reduced chunks
    case 'two-shot':
      return ((2 * (n - 1)) / n) * S;
  }
}

/** Sequential link steps of the algorithm (each pays the step latency). */
export function algorithmSteps(n: number, algorithm: Algorithm): number {
  if (n <= 1) return 0;
  return algorithm === 'ring' ? 2 * (n - 1) : algorithm === 'one-shot' ? 1 : 2;
}

/** FlashInfer's fused kernel is one-shot or two-shot (Lamport buffers); no ring. */
function fusedAlgorithm(a: Algorithm | undefined): Algorithm {
  return a === 'two-shot' ? 'two-shot' : 'one-shot';
}

/** A call as the pricing rules see it: the op it runs and its arguments, whatever form the call takes. */
interface PricedCall {
  readonly node: Node;
  readonly def: OpDef | undefined;
  readonly env: CostEnv;
  readonly tokens: number;
  readonly tp: number;
  readonly typeOf: (a: Arg) => ValueType | null | undefined;
  /** Bytes of the node's own result. */
  readonly out: number;
  /** An argument by schema name: positional or keyword as passed (see `callArg`). */
  arg(name: string): Arg | undefined;
  /** Its type: for auto_functionalized_v2, the view of its base that the op is given. */
  type(name: string): ValueType | null | undefined;
  size(name: string): number;
  elems(name: string): number;
}

type PriceRule = (c: PricedCall) => NodeCost;
/** How an op is priced: a rule, or no kernel at all (views, allocations, tuple access, metadata). */
type OpCost = PriceRule | 'no-kernel';

/** An elementwise kernel: reads its positional tensor arguments, writes its result, one FLOP an element. */
const elementwise: PriceRule = (c) => {
  let read = 0;
  for (const a of c.node.args) if (isRef(a)) read += bytesOf(c.typeOf(a), c.tokens);
  const t = c.node.type;
  return { bytesRead: read, bytesWritten: c.out, flops: t && t.kind === 'tensor' ? elems(t, c.tokens) : 0 };
};

/**
 * An op that writes into its arguments (a custom op vLLM registers with mutates_args): reads its
 * tensor arguments, writes the ones it mutates; `readsMutated` when it also reads what it overwrites,
 * `returnsLike` the argument its own result is shaped like, `flops` its arithmetic.
 */
function mutatingCall(
  o: {
    readsMutated?: boolean;
    /** Mutated arguments the kernel also reads (a fused norm's residual: read, then z written back). */
    alsoReads?: string[];
    returnsLike?: string;
    flops?: (c: PricedCall) => number;
  } = {},
) {
  return (c: PricedCall): NodeCost => {
    let read = 0,
      written = 0;
    for (const a of c.def?.args ?? []) {
      const b = c.size(a.name);
      if (a.mutates) written += b;
      if (!a.mutates || o.readsMutated || o.alsoReads?.includes(a.name)) read += b;
    }
    if (o.returnsLike !== undefined) written += c.size(o.returnsLike);
    return { bytesRead: read, bytesWritten: written, flops: o.flops?.(c) ?? 0 };
  };
}

const matmul =
  (a: string, b: string, bias: boolean): PriceRule =>
  (c) => {
    const ta = c.type(a),
      tb = c.type(b);
    const read = elementwise(c).bytesRead;
    if (ta?.kind !== 'tensor' || tb?.kind !== 'tensor')
      return { bytesRead: read, bytesWritten: c.out, flops: 0 };
    const M = bindDim(ta.shape[0]!, c.tokens),
      K = bindDim(ta.shape[1]!, c.tokens),
      N = bindDim(tb.shape[1]!, c.tokens);
    return { bytesRead: read, bytesWritten: c.out, flops: 2 * M * K * N + (bias ? M * N : 0) };
  };

const allReduce =
  (input: string): PriceRule =>
  (c) => {
    const S = c.size(input);
    return {
      bytesRead: S,
      bytesWritten: S,
      flops: (c.tp - 1) * c.elems(input),
      collectiveBytesPerRank: allReduceBytesPerRank(S, c.tp, c.env.algorithm ?? 'ring'),
    };
  };

/** Sequence parallelism: each rank sends (N−1)/N of the whole tensor around the ring. */
const ringCollective =
  (scatter: boolean): PriceRule =>
  (c) => {
    const whole = scatter ? c.size('tensor') : c.out;
    return {
      bytesRead: elementwise(c).bytesRead,
      bytesWritten: c.out,
      flops: scatter ? ((c.tp - 1) / c.tp) * c.elems('tensor') : 0,
      collectiveBytesPerRank: c.tp > 1 ? ((c.tp - 1) / c.tp) * whole : 0,
      linkSteps: c.tp - 1,
    };
  };

/** Async TP: the matmul of the whole (gathered) input, its collective overlapped chunk by chunk. */
const asyncTpMatmul =
  (rs: boolean, a = rs ? 'A' : 'A_shard'): PriceRule =>
  (c) => {
    const bs = c.arg('Bs');
    const b0 = rs ? c.arg('B') : Array.isArray(bs) ? bs[0] : undefined;
    const ta = c.type(a),
      tb = c.typeOf(b0 ?? null);
    if (ta?.kind !== 'tensor' || tb?.kind !== 'tensor')
      return { bytesRead: elementwise(c).bytesRead, bytesWritten: c.out, flops: 0 };
    const M = bindDim(ta.shape[0]!, c.tokens) * (rs ? 1 : c.tp),
      K = bindDim(ta.shape[1]!, c.tokens),
      N = bindDim(tb.shape[1]!, c.tokens);
    const elem = DTYPE_BYTES[ta.dtype];
    const whole = rs ? M * N * elem : M * K * elem;
    return {
      bytesRead: c.size(a) + bytesOf(tb, c.tokens) + (rs ? 0 : whole),
      bytesWritten: rs ? (M / c.tp) * N * elem : whole + M * N * elem,
      flops: 2 * M * K * N,
      collectiveBytesPerRank: c.tp > 1 ? ((c.tp - 1) / c.tp) * whole : 0,
      linkSteps: c.tp - 1,
      overlapsLink: true,
    };
  };

/** FlashInfer's all-reduce + RMSNorm: reads its input, the residual and γ; writes the normed output and the new residual. */
const fusedAllReduceNorm: PriceRule = (c) => {
  const S = c.size('allreduce_in');
  const e = c.elems('allreduce_in');
  const algorithm = fusedAlgorithm(c.env.algorithm);
  return {
    bytesRead: S + c.size('residual') + c.size('rms_gamma'),
    bytesWritten: S + c.size('residual'),
    flops: 5 * e + (c.tp - 1) * e,
    collectiveBytesPerRank: allReduceBytesPerRank(S, c.tp, algorithm),
    linkSteps: algorithmSteps(c.tp, algorithm),
  };
};

/**
 * What each registered op costs. A `Record` over every op of `FX_OPS`, so registering an op is a
 * type error here until it is priced (or said to launch nothing). Elementwise ops of the op table
 * are priced as `elementwise`; ops outside the registry as `elementwise` when called plainly.
 */
const FX_OP_COST: Record<FxOp, OpCost> = {
  'vllm.all_reduce.default': allReduce('tensor'),
  '_c10d_functional.all_reduce.default': allReduce('input'),
  '_c10d_functional.wait_tensor.default': 'no-kernel',
  '_c10d_functional.all_gather_into_tensor.default': elementwise,
  '_c10d_functional.reduce_scatter_tensor.default': elementwise,
  'vllm.reduce_scatter.default': ringCollective(true),
  'vllm.all_gather.default': ringCollective(false),
  'symm_mem.fused_matmul_reduce_scatter.default': asyncTpMatmul(true),
  'symm_mem.fused_all_gather_matmul.default': asyncTpMatmul(false),
  'symm_mem.fused_scaled_matmul_reduce_scatter.default': asyncTpMatmul(true),
  'symm_mem.fused_all_gather_scaled_matmul.default': asyncTpMatmul(false, 'A'),
  'aten.slice.Tensor': 'no-kernel',
  'aten.clone.default': elementwise,
  'aten.view.default': 'no-kernel',
  'aten.reshape.default': 'no-kernel',
  'aten.t.default': 'no-kernel',
  'aten.detach.default': 'no-kernel',
  'aten.slice_scatter.default': elementwise,
  'aten.permute.default': 'no-kernel',
  'aten.where.self': elementwise,
  'aten.as_strided.default': 'no-kernel',
  'aten.sym_size.int': 'no-kernel',
  'aten.full.default': elementwise,
  'aten.copy_.default': elementwise,
  'aten.constant_pad_nd.default': elementwise,
  'aten.empty_like.default': 'no-kernel',
  'aten.zeros_like.default': (c) => ({ bytesRead: 0, bytesWritten: c.out, flops: 0 }),
  'aten.empty.memory_format': 'no-kernel',
  'aten.split_with_sizes.default': 'no-kernel',
  getitem: 'no-kernel',
  'higher_order.auto_functionalized_v2': 'no-kernel',
  'higher_order.auto_functionalized': 'no-kernel',
  'aten.mm.default': matmul('self', 'mat2', false),
  'aten.addmm.default': matmul('mat1', 'mat2', true),
  // A gather: reads one weight row per token, not the table.
  'aten.embedding.default': (c) => ({ bytesRead: c.out + c.size('indices'), bytesWritten: c.out, flops: 0 }),
  'vllm.moe_forward.default': mutatingCall({ returnsLike: 'hidden_states' }),
  'vllm.unified_attention_with_output.default': mutatingCall(),
  '_C.rotary_embedding.default': mutatingCall({ readsMutated: true }),
  // One pass over q and k: the norm's sum of squares and scale, then the rotation (≈ 10 flops an element).
  // The cache write: key and value read, the same bytes written into the cache.
  'vllm.unified_kv_cache_update.default': (c) => ({
    bytesRead: c.size('key') + c.size('value'),
    bytesWritten: c.size('key') + c.size('value'),
    flops: 0,
  }),
  'vllm.fused_rope_and_unified_kv_cache_update.default': mutatingCall({ readsMutated: true }),
  '_C.fused_qk_norm_rope.default': mutatingCall({ readsMutated: true, flops: (c) => 10 * c.elems('qkv') }),
  '_C.silu_and_mul.default': mutatingCall({ flops: (c) => 3 * c.elems('input') }),
  'aten.sub.Tensor': elementwise,
  'aten.unsqueeze.default': 'no-kernel',
  '_C.rms_norm.default': mutatingCall({ flops: (c) => 4 * c.elems('input') }),
  '_C.fused_add_rms_norm.default': mutatingCall({ readsMutated: true, flops: (c) => 5 * c.elems('input') }),
  'vllm.flashinfer_trtllm_fused_allreduce_norm.default': fusedAllReduceNorm,
  'vllm_ir.rms_norm.default': (c) => ({
    bytesRead: elementwise(c).bytesRead,
    bytesWritten: c.out,
    flops: 4 * c.elems('x'),
  }),
  'vllm_ir.fused_add_rms_norm.default': (c) => ({
    bytesRead: elementwise(c).bytesRead,
    bytesWritten: 2 * c.size('x'),
    flops: 5 * c.elems('x'),
  }),
  '_C.static_scaled_fp8_quant.default': mutatingCall(),
  '_C.scaled_fp4_quant.default': mutatingCall(),
  'prims.convert_element_type.default': elementwise,
  'aten._to_copy.default': elementwise,
  'aten.mean.dim': elementwise,
  'aten.max.default': elementwise,
  'aten.max.dim': elementwise,
  'aten.amax.default': elementwise,
  'aten.clamp.default': elementwise,
  '_C.dynamic_scaled_fp8_quant.default': mutatingCall({ flops: (c) => 4 * c.elems('input') }),
  '_C.dynamic_per_token_scaled_fp8_quant.default': mutatingCall({ flops: (c) => 4 * c.elems('input') }),
  '_C.per_token_group_fp8_quant.default': mutatingCall({ flops: (c) => 4 * c.elems('input') }),
  '_C.cutlass_scaled_mm.default': mutatingCall(),
  // 2·M·N·K for out [M, N] and a [M, K/2] (two e2m1 values a byte).
  '_C.cutlass_scaled_fp4_mm.default': mutatingCall({
    flops: (c) => {
      const a = c.type('a');
      return a?.kind === 'tensor' ? 4 * c.elems('out') * bindDim(a.shape[a.shape.length - 1]!, c.tokens) : 0;
    },
  }),
  'aten._scaled_mm.default': matmul('self', 'mat2', false),
  // The fused norm / activation + quant ops: one pass over the input, the quantized result written
  // once; with a residual, it is read and the sum written back (as fused_add_rms_norm does).
  '_C.rms_norm_static_fp8_quant.default': mutatingCall({ flops: (c) => 6 * c.elems('input') }),
  '_C.fused_add_rms_norm_static_fp8_quant.default': mutatingCall({
    alsoReads: ['residual'],
    flops: (c) => 7 * c.elems('input'),
  }),
  '_C.rms_norm_dynamic_per_token_quant.default': mutatingCall({
    alsoReads: ['residual'],
    flops: (c) => 8 * c.elems('input'),
  }),
  '_C.rms_norm_per_block_quant.default': mutatingCall({
    alsoReads: ['residual'],
    flops: (c) => 8 * c.elems('input'),
  }),
  // Written once each: the padded norm (its zero columns, 2-7% of GPT-OSS's, not counted) and the residual.
  'vllm.rocm_aiter_rmsnorm2d_fwd_with_add.default': (c) => ({
    bytesRead: elementwise(c).bytesRead,
    bytesWritten: 2 * c.size('x'),
    flops: 5 * c.elems('x'),
  }),
  // x [M, K] · weightᵀ ([N, K]) + bias.
  'vllm.rocm_unquantized_gemm.default': (c) => {
    const x = c.type('x'),
      w = c.type('weight');
    const read = elementwise(c).bytesRead;
    if (x?.kind !== 'tensor' || w?.kind !== 'tensor')
      return { bytesRead: read, bytesWritten: c.out, flops: 0 };
    const K = bindDim(w.shape[1]!, c.tokens),
      N = bindDim(w.shape[0]!, c.tokens);
    return { bytesRead: read, bytesWritten: c.out, flops: (2 * K + 1) * N * (c.elems('x') / K) };
  },
  'vllm.rocm_aiter_triton_add_rmsnorm_pad.default': (c) => ({
    bytesRead: elementwise(c).bytesRead,
    bytesWritten: 2 * c.size('x'),
    flops: 5 * c.elems('x'),
  }),
  '_C.silu_and_mul_quant.default': mutatingCall({ flops: (c) => 4 * c.elems('input') }),
  '_C.silu_and_mul_per_block_quant.default': mutatingCall({ flops: (c) => 4 * c.elems('input') }),
  '_C.silu_and_mul_nvfp4_quant.default': mutatingCall({ flops: (c) => 4 * c.elems('input') }),
};

/** An op outside the registry wrapped in auto_functionalized: no schema, so nothing to count but its launch. */
const unregisteredWrapped = mutatingCall();

function costOf(n: Node): OpCost {
  const op = calledOp(n);
  if (isFxOp(op)) return FX_OP_COST[op];
  return callForm(n) === 'plain' ? elementwise : unregisteredWrapped;
}

/** Whether a node launches a kernel at all (views, allocations and tuple access do not). */
export function launchesKernel(n: Node): boolean {
  return costOf(n) !== 'no-kernel';
}

/** An integer argument of a view (a literal, or a symbolic input bound to `tokens`). */
function intArg(a: Arg, typeOf: PricedCall['typeOf'], tokens: number): number | undefined {
  if (typeof a === 'number') return a;
  const t = isRef(a) ? typeOf(a) : undefined;
  return t && t.kind === 'sym' ? bindDim(t.expr, tokens) : undefined;
}

/** The tensor a v2 view of a base is: its dims bound (the cost model needs sizes, not symbols). */
function viewType(
  v: FunctionalizedView,
  typeOf: PricedCall['typeOf'],
  tokens: number,
): ValueType | undefined {
  const base = typeOf(v.base);
  if (!base || base.kind !== 'tensor') return undefined;
  if (v.view === 'base') return base;
  const int = (a: Arg) => intArg(a, typeOf, tokens);
  if (v.view === 'slice') {
    const dim = int(v.dim);
    if (dim === undefined || base.shape[dim] === undefined) return undefined;
    const size = bindDim(base.shape[dim], tokens);
    const clamp = (x: number) => (x < 0 ? Math.max(0, x + size) : Math.min(x, size));
    const start = clamp(v.start === null ? 0 : (int(v.start) ?? 0)),
      end = clamp(v.end === null ? size : (int(v.end) ?? size));
    const shape = base.shape.map((d) => bindDim(d, tokens));
    shape[dim] = Math.max(0, end - start);
    return { kind: 'tensor', dtype: base.dtype, shape };
  }
  const items = Array.isArray(v.size)
    ? v.size
    : v.size && typeof v.size === 'object' && v.size.kind === 'tuple'
      ? v.size.items
      : [];
  const shape = items.map(int);
  return shape.every((d) => d !== undefined)
    ? { kind: 'tensor', dtype: base.dtype, shape: shape as number[] }
    : undefined;
}

/**
 * auto_functionalized_v2 returns each base with the op's writes in it: an argument given as a
 * slice (torch writes one only for a narrower view) or a narrower as_strided view is copied back
 * into its base, as v1's slice_scatter does: reads the base and the view, writes the base.
 */
function writeBacks(c: PricedCall): KernelCost[] {
  const out: KernelCost[] = [];
  for (const a of c.def?.args ?? []) {
    if (!a.mutates) continue;
    const v = functionalizedView(c.node, a.name);
    if (!v || v.view === 'base') continue;
    const base = c.typeOf(v.base),
      view = c.type(a.name);
    const known = base?.kind === 'tensor' && view?.kind === 'tensor';
    if (v.view === 'strided' && !(known && elems(view, c.tokens) < elems(base, c.tokens))) continue;
    const b = bytesOf(base, c.tokens);
    out.push({
      bytesRead: b + bytesOf(view, c.tokens),
      bytesWritten: b,
      flops: base?.kind === 'tensor' ? elems(base, c.tokens) : 0,
    });
  }
  return out;
}

function pricedCall(n: Node, env: CostEnv, typeOf: PricedCall['typeOf']): PricedCall {
  const def = lookupOp(calledOp(n));
  const index = (name: string) => def?.args.findIndex((a) => a.name === name) ?? -1;
  const arg = (name: string) => callArg(n, index(name), name);
  const type = (name: string) => {
    const v = functionalizedView(n, name);
    if (v) return viewType(v, typeOf, env.tokens);
    const a = arg(name);
    return a === undefined ? undefined : typeOf(a);
  };
  return {
    node: n,
    def,
    env,
    tokens: env.tokens,
    tp: env.tp ?? 1,
    typeOf,
    out: bytesOf(n.type, env.tokens),
    arg,
    type,
    size: (name) => bytesOf(type(name), env.tokens),
    elems: (name) => {
      const t = type(name);
      return t && t.kind === 'tensor' ? elems(t, env.tokens) : 0;
    },
  };
}

export function nodeCost(
  g: Graph,
  n: Node,
  env: CostEnv,
  typeOf: (a: Arg) => ValueType | null | undefined = typeLookup(g),
): NodeCost {
  const rule = costOf(n);
  if (rule === 'no-kernel') return NONE;
  const c = pricedCall(n, env, typeOf);
  const cost = rule(c);
  if (callForm(n) !== 'functionalized_v2') return cost;
  const back = writeBacks(c);
  return back.length ? { ...cost, writeBacks: back } : cost;
}

/** Each value's type by name, indexed once per graph (pass it to nodeCost over many nodes). */
export function typeLookup(g: Graph): (a: Arg) => ValueType | null | undefined {
  const m = new Map<string, ValueType | null>();
  for (const i of g.inputs) m.set(i.name, i.type);
  for (const n of g.nodes) m.set(n.name, n.type);
  // auto_functionalized results: [i] of a getitem is typed by its annotation already.
  return (a) => (isRef(a) ? m.get(a.name) : undefined);
}

export interface NodeTime {
  name: string;
  us: number;
  bound: 'memory' | 'compute' | 'network';
}

/** One kernel's roofline time: its launch, its link traffic (collectives), and HBM or compute, whichever binds. */
function kernelTime(c: NodeCost, profile: HardwareProfile, opts: { tp: number; algorithm?: Algorithm }) {
  const memUs = ((c.bytesRead + c.bytesWritten) / profile.hbmBytesPerSec) * 1e6;
  const computeUs = (c.flops / profile.bf16FlopsPerSec) * 1e6;
  if (c.collectiveBytesPerRank === undefined || opts.tp <= 1)
    return {
      us: profile.launchUs + Math.max(memUs, computeUs),
      bound: computeUs > memUs ? ('compute' as const) : ('memory' as const),
    };
  const steps = c.linkSteps ?? algorithmSteps(opts.tp, opts.algorithm ?? 'ring');
  const latencyUs = steps * profile.linkStepLatencyUs;
  const netUs = latencyUs + (c.collectiveBytesPerRank / profile.nvlinkBytesPerSec) * 1e6;
  return {
    us: c.overlapsLink
      ? profile.launchUs + latencyUs + Math.max(netUs - latencyUs, memUs, computeUs)
      : profile.launchUs + netUs + Math.max(memUs, computeUs),
    bound:
      netUs >= Math.max(memUs, computeUs)
        ? ('network' as const)
        : memUs >= computeUs
          ? ('memory' as const)
          : ('compute' as const),
  };
}

export function predictGraph(
  g: Graph,
  profile: HardwareProfile,
  opts: { tp: number; tokens: number; algorithm?: Algorithm },
): { total_us: number; perNode: NodeTime[] } {
  const typeOf = typeLookup(g);
  const env: CostEnv = { tokens: opts.tokens, tp: opts.tp, algorithm: opts.algorithm ?? 'ring' };
  const perNode: NodeTime[] = [];
  let total = 0;
  for (const n of g.nodes) {
    if (!launchesKernel(n)) {
      perNode.push({ name: n.name, us: 0, bound: 'memory' });
      continue;
    }
    const c = nodeCost(g, n, env, typeOf);
    const own = kernelTime(c, profile, opts);
    let us = own.us;
    // Summed kernel by kernel, as the same kernels would be as separate nodes.
    total += own.us;
    for (const k of c.writeBacks ?? []) {
      const t = kernelTime(k, profile, opts).us;
      us += t;
      total += t;
    }
    perNode.push({ name: n.name, us, bound: own.bound });
  }
  return { total_us: total, perNode };
}

export interface GraphTotals {
  launches: number;
  hbmBytes: number;
  flops: number;
  linkBytesPerRank: number;
  us: number;
}

export function graphTotals(
  g: Graph,
  profile: HardwareProfile,
  opts: { tp: number; tokens: number; algorithm?: Algorithm },
): GraphTotals {
  const typeOf = typeLookup(g);
  const env: CostEnv = { tokens: opts.tokens, tp: opts.tp, algorithm: opts.algorithm ?? 'ring' };
  const t: GraphTotals = {
    launches: 0,
    hbmBytes: 0,
    flops: 0,
    linkBytesPerRank: 0,
    us: predictGraph(g, profile, opts).total_us,
  };
  for (const n of g.nodes) {
    if (!launchesKernel(n)) continue;
    const c = nodeCost(g, n, env, typeOf);
    t.linkBytesPerRank += c.collectiveBytesPerRank ?? 0;
    for (const k of [c, ...(c.writeBacks ?? [])]) {
      t.launches++;
      t.hbmBytes += k.bytesRead + k.bytesWritten;
      t.flops += k.flops;
    }
  }
  return t;
}

/** What a rewrite buys, in the model's terms: kernel launches, HBM traffic, link traffic, time. */
export function rewriteSavings(
  before: Graph,
  after: Graph,
  profile: HardwareProfile,
  opts: { tp: number; tokens: number; algorithm?: Algorithm },
) {
  const a = graphTotals(before, profile, opts),
    b = graphTotals(after, profile, opts);
  return {
    launches: a.launches - b.launches,
    hbmBytes: a.hbmBytes - b.hbmBytes,
    linkBytesPerRank: a.linkBytesPerRank - b.linkBytesPerRank,
    us: a.us - b.us,
    before: a,
    after: b,
  };
}
