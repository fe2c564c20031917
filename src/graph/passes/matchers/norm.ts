// The RMSNorm family, after vLLM's MatcherRMSNorm and MatcherFusedAddRMSNorm
// (vllm/compilation/matcher_utils.py): rms_norm(x, w, eps) and fused_add_rms_norm(x, residual, w, eps)
// in each of their three spellings —
//
//   custom   auto_functionalized(_C.rms_norm, result = buf, input = x, weight = w, epsilon = eps)[1]
//            auto_functionalized(_C.fused_add_rms_norm, input = x, residual = r, …)[1] normed, [2] residual
//            (v2 as v1: results read through mutatedResultIndex)
//   vllm-ir  vllm_ir.rms_norm(x, weight, epsilon) → normed
//            vllm_ir.fused_add_rms_norm(x, x_residual, weight, epsilon) → (normed, residual)
//            (vllm/ir/ops/layernorm.py; a `variance_size` is not matched, as vLLM's matchers do not)
//   custom   on ROCm with AITER (MatcherFusedAddRMSNorm(match_rocm_aiter=True)): AITER's functional
//            vllm.rocm_aiter_rmsnorm2d_fwd_with_add(x, residual, weight, variance_epsilon) → (normed, residual)
//   native   RMSNorm.forward_native / forward_static (vllm/model_executor/layers/layernorm.py) as a
//            post-grad graph prints it:
//              x32 = convert(x, f32)                     [fused_add: z = convert(x, f32) + convert(r, f32),
//                                                          new residual = convert(z, bf16)]
//              rsqrt(mean(pow(x32, 2), [-1], True) + eps) · x32 → convert(…, bf16) → · w
//            with what Inductor varies: no converts in an f32 model, x·x for pow(x, 2), mean over
//            [H-1], the weight multiplied before the final convert, the weight itself converted.

import type { Arg, DType, Node } from '../../ir.ts';
import { isRef, numberOf } from '../../ir.ts';
import type { GraphIndex } from '../../match.ts';
import { argOf, tensorOf, usersOfValue } from '../../match.ts';
import { AUTO_FUNCTIONALIZED, functionalizedArg } from '../../call.ts';
import {
  ADD,
  ADD_SCALAR,
  FUSED_ADD_RMS_NORM,
  MEAN_DIM,
  MUL,
  POW,
  RMS_NORM,
  ROCM_AITER_FUSED_ADD_RMS_NORM,
  RSQRT,
  VLLM_IR_FUSED_ADD_RMS_NORM,
  VLLM_IR_RMS_NORM,
} from '../patternOps.ts';
import type { MatchRefusal, Occurrence, Recognized } from './occurrence.ts';
import {
  conversion,
  nativeOccurrence,
  functionalizedCall,
  inGraphOrder,
  otherOperand,
  producer,
  readerNodes,
  recognizer,
  refusal,
  sameRef,
  throughConversion,
  tupleOutputs,
} from './occurrence.ts';

export type NormOp = 'rms_norm' | 'fused_add_rms_norm';
export const NORM_OPS: readonly NormOp[] = ['rms_norm', 'fused_add_rms_norm'];

/** `normed`: the normalized, weighted output; `residual`: fused_add_rms_norm's new residual (x + residual). */
export type NormOutput = 'normed' | 'residual';

export interface NormOccurrence extends Occurrence<NormOp, NormOutput> {
  readonly input: Arg;
  /** fused_add_rms_norm's residual input; undefined for rms_norm. */
  readonly residual?: Arg;
  /** null where the native form multiplies by no weight (RMSNorm(has_weight = False)). */
  readonly weight: Arg;
  readonly epsilon: Arg;
  /**
   * The custom rms_norm's result buffer when something else reads it too; a scratch buffer
   * (`empty` / `empty_like` read by the norm alone) is one of `nodes` instead.
   */
  readonly buffer?: Arg;
}

/** Per op: the custom op and the vLLM IR op. */
export const NORM_SPELLINGS: Record<NormOp, { custom: string; ir: string }> = {
  rms_norm: { custom: RMS_NORM, ir: VLLM_IR_RMS_NORM },
  fused_add_rms_norm: { custom: FUSED_ADD_RMS_NORM, ir: VLLM_IR_FUSED_ADD_RMS_NORM },
};

type Found = NormOccurrence | MatchRefusal | undefined;

function customNorm(ix: GraphIndex, n: Node, op: NormOp): Found {
  const input = functionalizedArg(n, 'input');
  if (input === undefined) return undefined; // a view of a v2 base: not the pattern's input
  const first = op === 'rms_norm';
  const call = functionalizedCall<NormOp, NormOutput>(
    ix,
    n,
    op,
    first
      ? [['normed', 'result']]
      : [
          ['normed', 'input'],
          ['residual', 'residual'],
        ],
    first ? ['result'] : [],
  );
  if ('reason' in call) return call;
  const result = call.buffers['result'];
  return {
    ...call.occurrence,
    input,
    ...(first ? {} : { residual: functionalizedArg(n, 'residual') ?? null }),
    weight: functionalizedArg(n, 'weight') ?? null,
    epsilon: functionalizedArg(n, 'epsilon') ?? null,
    ...(result !== undefined && !(isRef(result) && call.scratch.has(result.name)) ? { buffer: result } : {}),
  };
}

function irNorm(ix: GraphIndex, n: Node, op: NormOp): Found {
  const add = op === 'fused_add_rms_norm';
  const at = add ? 1 : 0;
  const varianceSize = argOf(n, at + 3, 'variance_size');
  if (varianceSize !== undefined && varianceSize !== null) return undefined;
  const input = argOf(n, 0, 'x');
  if (input === undefined) return undefined;
  const common = {
    op,
    form: 'vllm-ir' as const,
    anchor: n.name,
    input,
    weight: argOf(n, at + 1, 'weight') ?? null,
    epsilon: argOf(n, at + 2, 'epsilon') ?? null,
  };
  if (!add) return { ...common, nodes: [n.name], outputs: { normed: n.name } };
  const read = tupleOutputs<NormOutput>(ix, n, (i) =>
    i === 0 ? 'normed' : i === 1 ? 'residual' : undefined,
  );
  const nodes = inGraphOrder(ix, [n.name, ...('getitems' in read ? read.getitems : [])]);
  if ('escape' in read) return refusal(op, 'vllm-ir', n.name, nodes, read.escape);
  return { ...common, nodes, outputs: read.outputs, residual: argOf(n, 1, 'x_residual') ?? null };
}

/** AITER's fused add + RMSNorm: the custom kernel vLLM's RMSNorm calls on ROCm with AITER on. */
function aiterNorm(ix: GraphIndex, n: Node): Found {
  const input = argOf(n, 0, 'x');
  if (input === undefined) return undefined;
  const read = tupleOutputs<NormOutput>(ix, n, (i) =>
    i === 0 ? 'normed' : i === 1 ? 'residual' : undefined,
  );
  const nodes = inGraphOrder(ix, [n.name, ...('getitems' in read ? read.getitems : [])]);
  if ('escape' in read) return refusal('fused_add_rms_norm', 'custom', n.name, nodes, read.escape);
  return {
    op: 'fused_add_rms_norm',
    form: 'custom',
    anchor: n.name,
    nodes,
    outputs: read.outputs,
    input,
    residual: argOf(n, 1, 'residual') ?? null,
    weight: argOf(n, 2, 'weight') ?? null,
    epsilon: argOf(n, 3, 'variance_epsilon') ?? null,
  };
}

// --- native ------------------------------------------------------------------------------------

/** `mean(v, [-1] | [rank-1], keepdim = True)`'s reduced value `v`, else undefined. */
function meanOverLastDim(ix: GraphIndex, mean: Node | undefined): Arg | undefined {
  if (!mean || mean.op !== MEAN_DIM) return undefined;
  const dims = argOf(mean, 1, 'dim');
  const keepdim = argOf(mean, 2, 'keepdim');
  if (keepdim !== true || !Array.isArray(dims) || dims.length !== 1) return undefined;
  const d = dims[0];
  const rank = tensorOf(ix, mean.args[0])?.shape.length;
  return d === -1 || (rank !== undefined && d === rank - 1) ? mean.args[0] : undefined;
}

/** `v` of `pow(v, 2)` or `v · v`. */
function squared(n: Node | undefined): Arg | undefined {
  if (!n) return undefined;
  if (n.op === POW && numberOf(n.args[1]) === 2) return n.args[0];
  if (n.op === MUL && sameRef(n.args[0], n.args[1])) return n.args[0];
  return undefined;
}

/** The weight `mul` reading `value` multiplies by (a 1-d tensor, perhaps converted to `f32`), if `n` is one. */
function weightMul(
  ix: GraphIndex,
  n: Node | undefined,
  value: string,
): { weight: Arg; convert?: Node } | undefined {
  if (!n || n.op !== MUL) return undefined;
  const w = otherOperand(n, value);
  if (!w || !isRef(w) || w.name === value) return undefined;
  const through = throughConversion(ix, w, 'f32');
  const t = tensorOf(ix, through.value);
  if (t && t.shape.length !== 1) return undefined;
  // A weight converted to f32 for this mul alone is part of the occurrence; the weight is its source.
  return through.convert && usersOfValue(ix, through.convert.name).length === 1
    ? { weight: through.value, convert: through.convert }
    : { weight: w };
}

/** A conversion back to the model's dtype (`want` when known), reading `value`. */
function backConversion(ix: GraphIndex, value: string, want: DType | undefined): Node | undefined {
  return readerNodes(ix, value).find((n) => {
    const c = conversion(n);
    return !!c && c.dtype !== 'f32' && (want === undefined || c.dtype === want);
  });
}

/** The value each RMSNorm statistic normalizes, walking back from `rsqrt(mean(x²) + eps)`. */
function nativeStatistic(ix: GraphIndex, r: Node) {
  const epsAdd = producer(ix, r.args[0]);
  if (!epsAdd || (epsAdd.op !== ADD && epsAdd.op !== ADD_SCALAR)) return undefined;
  const [m, epsilon] = epsAdd.args;
  if (numberOf(epsilon) === undefined) return undefined;
  const mean = producer(ix, m);
  const sq = producer(ix, meanOverLastDim(ix, mean));
  const v = squared(sq);
  if (!v || !isRef(v)) return undefined;
  return { v, epsilon: epsilon!, nodes: [sq!.name, mean!.name, epsAdd.name, r.name] };
}

function nativeNorm(ix: GraphIndex, r: Node): Found {
  const stat = nativeStatistic(ix, r);
  if (!stat) return undefined;
  const { v } = stat;
  const mulR = readerNodes(ix, r.name).find((n) => n.op === MUL && sameRef(otherOperand(n, r.name), v));
  if (!mulR) return undefined;
  const nodes = [...stat.nodes, mulR.name];
  // The input side: x (rms_norm) or x + residual (fused_add_rms_norm), each converted to f32
  // unless the model computes in f32 already (then Inductor drops the converts).
  const vNode = producer(ix, v);
  let op: NormOp = 'rms_norm';
  let input: Arg, residual: Arg | undefined, sum: Node | undefined;
  let converted: boolean;
  if (vNode && vNode.op === ADD && isRef(vNode.args[0]!) && isRef(vNode.args[1]!)) {
    op = 'fused_add_rms_norm';
    sum = vNode;
    const a = throughConversion(ix, vNode.args[0]!, 'f32');
    const b = throughConversion(ix, vNode.args[1]!, 'f32');
    if (!!a.convert !== !!b.convert) return undefined; // forward_native converts both or neither
    converted = !!a.convert;
    input = a.value;
    residual = b.value;
    nodes.push(vNode.name, ...[a.convert, b.convert].filter((n): n is Node => !!n).map((n) => n.name));
  } else {
    const a = throughConversion(ix, v, 'f32');
    converted = !!a.convert;
    input = a.value;
    if (a.convert) nodes.push(a.convert.name);
  }
  const modelDtype = converted ? tensorOf(ix, input)?.dtype : undefined;
  // The output side: · w and the conversion back, in either order.
  let normed = mulR;
  let weight: Arg = null;
  const takeWeight = (n: Node | undefined) => {
    const w = n && weightMul(ix, n, normed.name);
    if (!w || !n) return false;
    weight = w.weight;
    if (w.convert) nodes.push(w.convert.name);
    nodes.push(n.name);
    normed = n;
    return true;
  };
  if (converted) {
    const back = backConversion(ix, normed.name, modelDtype);
    const before = back ? undefined : readerNodes(ix, normed.name).find((n) => weightMul(ix, n, normed.name));
    if (before) takeWeight(before);
    const last = back ?? backConversion(ix, normed.name, modelDtype);
    if (!last) {
      const reader = usersOfValue(ix, normed.name)[0] ?? 'output';
      return refusal(
        op,
        'native',
        r.name,
        inGraphOrder(ix, nodes),
        { value: normed.name, reader },
        `${normed.name}, the f32 normalized value of the ${op} at ${r.name} (native form), is read by ${reader} before it is converted back to the model's dtype`,
      );
    }
    nodes.push(last.name);
    normed = last;
    if (!before) takeWeight(readerNodes(ix, normed.name).find((n) => weightMul(ix, n, normed.name)));
  } else {
    takeWeight(readerNodes(ix, normed.name).find((n) => weightMul(ix, n, normed.name)));
  }
  // The new residual: z converted back to the model's dtype, or z itself in an f32 model.
  let residualOut: string | undefined;
  if (sum) {
    const back = converted ? backConversion(ix, sum.name, modelDtype) : undefined;
    if (back) nodes.push(back.name);
    const inside = new Set(nodes);
    residualOut =
      back?.name ??
      (!converted && usersOfValue(ix, sum.name).some((u) => !inside.has(u)) ? sum.name : undefined);
  }
  const outputs: Partial<Record<NormOutput, string>> = { normed: normed.name };
  if (residualOut) outputs.residual = residualOut;
  const base = nativeOccurrence(ix, op, nodes, outputs);
  if ('reason' in base) return base;
  return { ...base, input, ...(residual !== undefined ? { residual } : {}), weight, epsilon: stat.epsilon };
}

/** Every RMSNorm occurrence of the graph in any form, in graph order, and the would-be ones refused. */
export const findNorms: (ix: GraphIndex) => Recognized<NormOccurrence> = recognizer(normCandidates);

function* normCandidates(ix: GraphIndex): Generator<Found> {
  for (const op of NORM_OPS) {
    const s = NORM_SPELLINGS[op];
    for (const n of ix.byKey.get(`${AUTO_FUNCTIONALIZED}:${s.custom}`) ?? []) yield customNorm(ix, n, op);
    for (const n of ix.byKey.get(s.ir) ?? []) yield irNorm(ix, n, op);
  }
  for (const n of ix.byKey.get(ROCM_AITER_FUSED_ADD_RMS_NORM) ?? []) yield aiterNorm(ix, n);
  for (const r of ix.byKey.get(RSQRT) ?? []) yield nativeNorm(ix, r);
}

/** The occurrences by the value they normalize (their `input`), for passes anchored on its producer. */
export function normsByInput<O extends { input: Arg }>(occurrences: readonly O[]): Map<string, O> {
  const m = new Map<string, O>();
  for (const o of occurrences) if (isRef(o.input) && !m.has(o.input.name)) m.set(o.input.name, o);
  return m;
}
