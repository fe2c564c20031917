// The cost model: per node, bytes read and written and FLOPs from shapes and dtypes (symbolic
// dims bound to a token count); per collective, the bytes each rank sends over NVLink for ring,
// one-shot or two-shot all-reduce; and a roofline time per node on a hardware profile.
//
// Times are serial sums (no overlap between kernels, nor between a collective's link traffic and
// its own HBM traffic), so a rewrite's saving reads directly: fusing all-reduce + RMSNorm removes
// one kernel launch and one round trip of the activation through HBM (the all-reduce's write of
// its result and the norm's read of it).

import type { Arg, Graph, Node, TensorType, ValueType } from '../ir.ts';
import { DTYPE_BYTES, isRef } from '../ir.ts';
import { AUTO_FUNCTIONALIZED } from '../call.ts';
import { lookupOp, opKind } from '../ops.ts';
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

export interface NodeCost {
  bytesRead: number;
  bytesWritten: number;
  flops: number;
  /** For collectives: bytes each rank moves over its links. */
  collectiveBytesPerRank?: number;
  /** Sequential link steps when not the all-reduce algorithm's (a reduce-scatter or all-gather ring: N−1). */
  linkSteps?: number;
  /** The link traffic overlaps the node's own compute (async TP's chunked, fused matmuls). */
  overlapsLink?: boolean;
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

const NO_KERNEL = new Set([
  'aten.empty_like.default',
  'aten.empty.memory_format',
  'getitem',
  'aten.split_with_sizes.default',
  '_c10d_functional.wait_tensor.default',
]);
const FUSED = 'vllm.flashinfer_trtllm_fused_allreduce_norm.default';

/** The op a node runs: auto_functionalized runs the op it wraps. */
export function effectiveOp(n: Node): string {
  if (n.op === AUTO_FUNCTIONALIZED) {
    const t = n.args[0];
    if (t && typeof t === 'object' && !Array.isArray(t) && t.kind === 'op') return t.target;
  }
  return n.op;
}

/** Whether a node launches a kernel at all (views, allocations and tuple access do not). */
export function launchesKernel(n: Node): boolean {
  const op = effectiveOp(n);
  if (NO_KERNEL.has(op)) return false;
  const kind = opKind(op);
  return kind !== 'view' && kind !== 'meta';
}

export function nodeCost(
  g: Graph,
  n: Node,
  env: CostEnv,
  typeOf: (a: Arg) => ValueType | null | undefined = typeLookup(g),
): NodeCost {
  const tok = env.tokens;
  const size = (a: Arg | undefined) => (a === undefined ? 0 : bytesOf(typeOf(a), tok));
  const op = effectiveOp(n);
  if (!launchesKernel(n)) return NONE;
  const out = bytesOf(n.type, tok);
  const tp = env.tp ?? 1;
  if (n.op === AUTO_FUNCTIONALIZED) {
    const def = lookupOp(op);
    const kw = n.kwargs;
    if (op === FUSED) {
      const S = size(kw['allreduce_in']);
      const t = typeOf(kw['allreduce_in'] ?? null);
      const e = t && t.kind === 'tensor' ? elems(t, tok) : 0;
      // Reads its input, the residual and γ; writes the normed output and the new residual.
      return {
        bytesRead: S + size(kw['residual']) + size(kw['rms_gamma']),
        bytesWritten: S + size(kw['residual']),
        flops: 5 * e + (tp - 1) * e,
        collectiveBytesPerRank: allReduceBytesPerRank(S, tp, fusedAlgorithm(env.algorithm)),
      };
    }
    // A wrapped op reads its tensor arguments and writes the ones it mutates.
    let read = 0,
      written = 0,
      flops = 0;
    for (const a of def?.args ?? []) {
      const v = kw[a.name];
      if (v === undefined || v === null) continue;
      const b = size(v);
      if (a.mutates) written += b;
      if (!a.mutates || op === '_C.fused_add_rms_norm.default' || op === '_C.rotary_embedding.default')
        read += b;
    }
    const main = typeOf(kw['input'] ?? kw['query'] ?? kw['hidden_states'] ?? null);
    const e = main && main.kind === 'tensor' ? elems(main, tok) : 0;
    if (op === '_C.rms_norm.default') flops = 4 * e;
    else if (op === '_C.fused_add_rms_norm.default') flops = 5 * e;
    else if (op === '_C.silu_and_mul.default') flops = 3 * e;
    else if (op === 'vllm.moe_forward.default') written += size(kw['hidden_states']);
    return { bytesRead: read, bytesWritten: written, flops };
  }
  const inputs = n.args.filter((a): a is Arg => isRef(a)).map(size);
  const read = inputs.reduce((s, b) => s + b, 0);
  switch (op) {
    case 'aten.mm.default':
    case 'aten.addmm.default': {
      const [a, b] = op === 'aten.mm.default' ? [n.args[0], n.args[1]] : [n.args[1], n.args[2]];
      const ta = typeOf(a ?? null),
        tb = typeOf(b ?? null);
      if (ta?.kind !== 'tensor' || tb?.kind !== 'tensor')
        return { bytesRead: read, bytesWritten: out, flops: 0 };
      const M = bindDim(ta.shape[0]!, tok),
        K = bindDim(ta.shape[1]!, tok),
        N = bindDim(tb.shape[1]!, tok);
      return {
        bytesRead: read,
        bytesWritten: out,
        flops: 2 * M * K * N + (op === 'aten.addmm.default' ? M * N : 0),
      };
    }
    case 'vllm.all_reduce.default':
    case '_c10d_functional.all_reduce.default': {
      const S = size(n.args[0]);
      const t = typeOf(n.args[0] ?? null);
      return {
        bytesRead: S,
        bytesWritten: S,
        flops: t && t.kind === 'tensor' ? (tp - 1) * elems(t, tok) : 0,
        collectiveBytesPerRank: allReduceBytesPerRank(S, tp, env.algorithm ?? 'ring'),
      };
    }
    // Sequence parallelism: each rank sends (N−1)/N of the whole tensor around the ring.
    case 'vllm.reduce_scatter.default':
    case 'vllm.all_gather.default': {
      const whole = op === 'vllm.reduce_scatter.default' ? size(n.args[0]) : out;
      const t = typeOf(n.args[0] ?? null);
      return {
        bytesRead: read,
        bytesWritten: out,
        flops:
          op === 'vllm.reduce_scatter.default' && t && t.kind === 'tensor'
            ? ((tp - 1) / tp) * elems(t, tok)
            : 0,
        collectiveBytesPerRank: tp > 1 ? ((tp - 1) / tp) * whole : 0,
        linkSteps: tp - 1,
      };
    }
    // Async TP: the matmul of the whole (gathered) input, its collective overlapped chunk by chunk.
    case 'symm_mem.fused_matmul_reduce_scatter.default':
    case 'symm_mem.fused_all_gather_matmul.default': {
      const rs = op === 'symm_mem.fused_matmul_reduce_scatter.default';
      const ta = typeOf(n.args[0] ?? null);
      const b0 = rs ? n.args[1] : Array.isArray(n.args[1]) ? n.args[1][0] : undefined;
      const tb = typeOf(b0 ?? null);
      if (ta?.kind !== 'tensor' || tb?.kind !== 'tensor')
        return { bytesRead: read, bytesWritten: out, flops: 0 };
      const M = bindDim(ta.shape[0]!, tok) * (rs ? 1 : tp),
        K = bindDim(ta.shape[1]!, tok),
        N = bindDim(tb.shape[1]!, tok);
      const elem = DTYPE_BYTES[ta.dtype];
      const whole = rs ? M * N * elem : M * K * elem;
      return {
        bytesRead: size(n.args[0]) + size(b0) + (rs ? 0 : whole),
        bytesWritten: rs ? (M / tp) * N * elem : whole + M * N * elem,
        flops: 2 * M * K * N,
        collectiveBytesPerRank: tp > 1 ? ((tp - 1) / tp) * whole : 0,
        linkSteps: tp - 1,
        overlapsLink: true,
      };
    }
    case 'aten.embedding.default':
      // A gather: reads one weight row per token, not the table.
      return { bytesRead: out + size(n.args[1]), bytesWritten: out, flops: 0 };
    case 'aten.zeros_like.default':
      return { bytesRead: 0, bytesWritten: out, flops: 0 };
    default: {
      const t = n.type;
      return { bytesRead: read, bytesWritten: out, flops: t && t.kind === 'tensor' ? elems(t, tok) : 0 };
    }
  }
}

/** FlashInfer's fused kernel is one-shot or two-shot (Lamport buffers); no ring. */
function fusedAlgorithm(a: Algorithm | undefined): Algorithm {
  return a === 'two-shot' ? 'two-shot' : 'one-shot';
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
    const memUs = ((c.bytesRead + c.bytesWritten) / profile.hbmBytesPerSec) * 1e6;
    const computeUs = (c.flops / profile.bf16FlopsPerSec) * 1e6;
    let us: number, bound: NodeTime['bound'];
    if (c.collectiveBytesPerRank !== undefined && opts.tp > 1) {
      const op = effectiveOp(n);
      const alg = op === FUSED ? fusedAlgorithm(opts.algorithm) : (opts.algorithm ?? 'ring');
      const latencyUs = (c.linkSteps ?? algorithmSteps(opts.tp, alg)) * profile.linkStepLatencyUs;
      const netUs = latencyUs + (c.collectiveBytesPerRank / profile.nvlinkBytesPerSec) * 1e6;
      us = c.overlapsLink
        ? profile.launchUs + latencyUs + Math.max(netUs - latencyUs, memUs, computeUs)
        : profile.launchUs + netUs + Math.max(memUs, computeUs);
      bound = netUs >= Math.max(memUs, computeUs) ? 'network' : memUs >= computeUs ? 'memory' : 'compute';
    } else {
      us = profile.launchUs + Math.max(memUs, computeUs);
      bound = computeUs > memUs ? 'compute' : 'memory';
    }
    perNode.push({ name: n.name, us, bound });
    total += us;
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
    t.launches++;
    t.hbmBytes += c.bytesRead + c.bytesWritten;
    t.flops += c.flops;
    t.linkBytesPerRank += c.collectiveBytesPerRank ?? 0;
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
