// The FP8 / NVFP4 input quants, after vLLM's MatcherQuantFP8 (vllm/compilation/matcher_utils.py)
// and QUANT_OPS there, one op per QuantKey:
//
//   fp8_static_tensor   kFp8StaticTensorSym   _C.static_scaled_fp8_quant(result, input, scale)      [1] quant
//   fp8_dynamic_tensor  kFp8DynamicTensorSym  _C.dynamic_scaled_fp8_quant(result, input, scale)     [1] quant, [2] scale
//   fp8_dynamic_token   kFp8DynamicTokenSym   _C.dynamic_per_token_scaled_fp8_quant(result, input, scale, scale_ub)
//   nvfp4               kNvfp4Quant           _C.scaled_fp4_quant(output, input, output_scale, input_scale)
//                                             [1] quant, [2] the swizzled block scales (custom form only)
//
// The native forms are QuantFP8.forward_native (vllm/model_executor/layers/quantization/
// input_quant_fp8.py) as a post-grad graph prints it (torch 2.13):
//
//   static    convert(clamp(convert(x, f32) · reciprocal(scale), -448, 448), f8e4m3fn)   (or x / scale)
//   dynamic   scale = clamp_min(convert(unsqueeze(max(abs(x)), -1), f32) / 448, 1 / (448 · 512))
//             per token: max.dim(abs(x), -1)[0] (or amax(abs(x), [-1], True)); then as static
//
// Inductor spells clamp(lo, hi) as clamp_min then clamp_max; an f32 input has no convert.

import type { Arg, Node } from '../../ir.ts';
import { isRef, numberOf } from '../../ir.ts';
import type { GraphIndex } from '../../match.ts';
import { argOf, usersOfValue } from '../../match.ts';
import { AUTO_FUNCTIONALIZED, functionalizedArg } from '../../call.ts';
import { F8E4M3FN_MAX } from '../../fp8.ts';
import {
  ABS,
  AMAX,
  CLAMP,
  CLAMP_MAX,
  CLAMP_MIN,
  CONVERT_ELEMENT_TYPE,
  DIV,
  DYNAMIC_PER_TOKEN_QUANT_FP8,
  DYNAMIC_QUANT_FP8,
  MAX,
  MAX_DIM,
  MUL,
  QUANT_FP4,
  QUANT_FP8,
  RECIPROCAL,
  UNSQUEEZE,
} from '../patternOps.ts';
import type { MatchRefusal, Occurrence, Recognized } from './occurrence.ts';
import {
  conversion,
  nativeOccurrence,
  functionalizedCall,
  producer,
  recognizer,
  sameRef,
  throughConversion,
} from './occurrence.ts';

export type QuantOp = 'fp8_static_tensor' | 'fp8_dynamic_tensor' | 'fp8_dynamic_token' | 'nvfp4';
export const QUANT_OPS: readonly QuantOp[] = [
  'fp8_static_tensor',
  'fp8_dynamic_tensor',
  'fp8_dynamic_token',
  'nvfp4',
];

/** `quant`: the quantized tensor; `scale`: the scale the op computes (dynamic FP8, NVFP4's block scales). */
export type QuantOutput = 'quant' | 'scale';

export interface QuantOccurrence extends Occurrence<QuantOp, QuantOutput> {
  readonly input: Arg;
  /** The scale the op divides by, for static FP8 (and NVFP4's global input scale); null when computed. */
  readonly scale: Arg;
  /**
   * The custom op's output buffers as passed (`result` / `output`, and a scale buffer), for a
   * replacement that writes into them; those made for the op alone are also among `nodes`.
   */
  readonly buffers: Readonly<Partial<Record<QuantOutput, Arg>>>;
}

/** Per op: the custom op and its argument names (output buffer, input scale, computed-scale buffer). */
const CUSTOM_QUANTS: Record<QuantOp, { target: string; out: string; scaleIn?: string; scaleOut?: string }> = {
  fp8_static_tensor: { target: QUANT_FP8, out: 'result', scaleIn: 'scale' },
  fp8_dynamic_tensor: { target: DYNAMIC_QUANT_FP8, out: 'result', scaleOut: 'scale' },
  fp8_dynamic_token: { target: DYNAMIC_PER_TOKEN_QUANT_FP8, out: 'result', scaleOut: 'scale' },
  nvfp4: { target: QUANT_FP4, out: 'output', scaleIn: 'input_scale', scaleOut: 'output_scale' },
};

type Found = QuantOccurrence | MatchRefusal | undefined;

function customQuant(ix: GraphIndex, n: Node, op: QuantOp): Found {
  const spec = CUSTOM_QUANTS[op];
  const input = functionalizedArg(n, 'input');
  if (input === undefined) return undefined;
  const results: [QuantOutput, string][] = [['quant', spec.out]];
  if (spec.scaleOut) results.push(['scale', spec.scaleOut]);
  const call = functionalizedCall<QuantOp, QuantOutput>(
    ix,
    n,
    op,
    results,
    results.map(([, arg]) => arg),
  );
  if ('reason' in call) return call;
  const buffers: Partial<Record<QuantOutput, Arg>> = {};
  for (const [role, arg] of results) if (call.buffers[arg] !== undefined) buffers[role] = call.buffers[arg];
  return {
    ...call.occurrence,
    input,
    scale: spec.scaleIn ? (functionalizedArg(n, spec.scaleIn) ?? null) : null,
    buffers,
  };
}

// --- native ------------------------------------------------------------------------------------

const isNum = (a: Arg | undefined, v: number) => numberOf(a) === v;

/** The value clamped to ±448 and the clamp nodes: clamp(v, lo, hi), or clamp_min and clamp_max in either order. */
function clampedToFp8Range(ix: GraphIndex, n: Node | undefined): { value: Arg; nodes: Node[] } | undefined {
  if (!n) return undefined;
  const lo = -F8E4M3FN_MAX,
    hi = F8E4M3FN_MAX;
  if (n.op === CLAMP && isNum(n.args[1], lo) && isNum(n.args[2], hi))
    return { value: n.args[0]!, nodes: [n] };
  const pairs: [string, number, string, number][] = [
    [CLAMP_MAX, hi, CLAMP_MIN, lo],
    [CLAMP_MIN, lo, CLAMP_MAX, hi],
  ];
  for (const [outerOp, outerBound, innerOp, innerBound] of pairs) {
    if (n.op !== outerOp || !isNum(n.args[1], outerBound)) continue;
    const inner = producer(ix, n.args[0]);
    if (inner && inner.op === innerOp && isNum(inner.args[1], innerBound))
      return { value: inner.args[0]!, nodes: [n, inner] };
  }
  return undefined;
}

/** `x32 · reciprocal(s)` or `x32 / s`: the scaled value and the scale. */
function scaledBy(ix: GraphIndex, n: Node | undefined): { x: Arg; scale: Arg; nodes: Node[] } | undefined {
  if (!n) return undefined;
  if (n.op === DIV && isRef(n.args[1]!)) return { x: n.args[0]!, scale: n.args[1]!, nodes: [n] };
  if (n.op !== MUL) return undefined;
  for (const [x, r] of [
    [n.args[0], n.args[1]],
    [n.args[1], n.args[0]],
  ] as const) {
    const recip = producer(ix, r);
    if (recip && recip.op === RECIPROCAL && x !== undefined)
      return { x, scale: recip.args[0]!, nodes: [n, recip] };
  }
  return undefined;
}

/**
 * A dynamic scale computed from `x`: clamp_min(convert(unsqueeze(max(abs(x)), -1), f32) / 448, min),
 * per tensor, or from max.dim(abs(x), -1)[0] / amax(abs(x), [-1], True) per token.
 */
function dynamicScale(
  ix: GraphIndex,
  scale: Arg,
  x: Arg,
): { op: 'fp8_dynamic_tensor' | 'fp8_dynamic_token'; nodes: Node[] } | undefined {
  const floor = producer(ix, scale);
  if (!floor || floor.op !== CLAMP_MIN || numberOf(floor.args[1]) === undefined) return undefined;
  const div = producer(ix, floor.args[0]);
  if (!div || div.op !== DIV || !isNum(div.args[1], F8E4M3FN_MAX)) return undefined;
  const toF32 = throughConversion(ix, div.args[0]!, 'f32');
  let at = producer(ix, toF32.value);
  const nodes: Node[] = [floor, div, ...(toF32.convert ? [toF32.convert] : [])];
  let op: 'fp8_dynamic_tensor' | 'fp8_dynamic_token';
  let absOf: Arg | undefined;
  if (at && at.op === AMAX) {
    op = 'fp8_dynamic_token';
    absOf = at.args[0];
    nodes.push(at);
  } else {
    if (!at || at.op !== UNSQUEEZE || !isNum(at.args[1], -1)) return undefined;
    nodes.push(at);
    at = producer(ix, at.args[0]);
    if (at && at.op === MAX) {
      op = 'fp8_dynamic_tensor';
      absOf = at.args[0];
      nodes.push(at);
    } else if (at && at.op === 'getitem' && at.args[1] === 0) {
      const max = producer(ix, at.args[0]);
      if (!max || max.op !== MAX_DIM || !isNum(argOf(max, 1, 'dim'), -1)) return undefined;
      op = 'fp8_dynamic_token';
      absOf = max.args[0];
      nodes.push(at, max);
    } else return undefined;
  }
  const abs = producer(ix, absOf);
  if (!abs || abs.op !== ABS || !sameRef(abs.args[0], x)) return undefined;
  nodes.push(abs);
  return { op, nodes };
}

function nativeQuant(ix: GraphIndex, q: Node): Found {
  const toFp8 = conversion(q);
  if (!toFp8 || toFp8.dtype !== 'f8e4m3fn') return undefined;
  const clamp = clampedToFp8Range(ix, producer(ix, toFp8.source));
  const scaled = clamp && scaledBy(ix, producer(ix, clamp.value));
  if (!clamp || !scaled) return undefined;
  const x = throughConversion(ix, scaled.x, 'f32');
  const s = throughConversion(ix, scaled.scale, 'f32');
  const dynamic = dynamicScale(ix, s.value, x.value);
  // A static scale converted to f32 for this quant alone is part of it; a shared conversion is its input.
  const ownScaleConvert = s.convert && usersOfValue(ix, s.convert.name).length === 1 ? s.convert : undefined;
  const scale = dynamic || ownScaleConvert ? s.value : scaled.scale;
  const parts = [q, ...clamp.nodes, ...scaled.nodes, x.convert, ownScaleConvert, ...(dynamic?.nodes ?? [])];
  const op: QuantOp = dynamic?.op ?? 'fp8_static_tensor';
  const outputs: Partial<Record<QuantOutput, string>> = { quant: q.name };
  if (dynamic && isRef(s.value)) outputs.scale = s.value.name;
  const nodes = parts.filter((n): n is Node => !!n).map((n) => n.name);
  const base = nativeOccurrence(ix, op, nodes, outputs);
  if ('reason' in base) return base;
  return { ...base, input: x.value, scale: dynamic ? null : scale, buffers: {} };
}

/** Every FP8 / NVFP4 quant occurrence of the graph in any form, in graph order, and the would-be ones refused. */
export const findQuants: (ix: GraphIndex) => Recognized<QuantOccurrence> = recognizer(quantCandidates);

function* quantCandidates(ix: GraphIndex): Generator<Found> {
  for (const op of QUANT_OPS) {
    for (const n of ix.byKey.get(`${AUTO_FUNCTIONALIZED}:${CUSTOM_QUANTS[op].target}`) ?? [])
      yield customQuant(ix, n, op);
  }
  for (const n of ix.byKey.get(CONVERT_ELEMENT_TYPE) ?? []) yield nativeQuant(ix, n);
}
