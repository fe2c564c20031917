// silu_and_mul, after vLLM's MatcherSiluAndMul (vllm/compilation/matcher_utils.py): SwiGLU's
// silu(x[..., :d]) · x[..., d:] with d = half the last dim.
//
//   custom   auto_functionalized(_C.silu_and_mul, result = buf, input = x)[1]
//   native   SiluAndMul.forward_native (vllm/model_executor/layers/activation.py) as torch 2.13
//            prints it post-grad: slice(x, 1, 0, d), slice(x, 1, d, INT64_MAX), and silu decomposed
//            to a / (1 + exp(-a)) in f32 (a converted from the model's dtype and back); also
//            silu(a) and a · sigmoid(a), as other Inductor versions leave them.

import type { Arg, Node } from '../../ir.ts';
import { isRef, numberOf } from '../../ir.ts';
import type { GraphIndex } from '../../match.ts';
import { argOf, tensorOf } from '../../match.ts';
import { AUTO_FUNCTIONALIZED, functionalizedArg } from '../../call.ts';
import { ADD, DIV, EXP, MUL, NEG, SIGMOID, SILU, SILU_AND_MUL, SLICE } from '../patternOps.ts';
import type { MatchRefusal, Occurrence, Recognized } from './occurrence.ts';
import {
  conversion,
  nativeOccurrence,
  functionalizedCall,
  otherOperand,
  producer,
  recognizer,
  sameRef,
  throughConversion,
} from './occurrence.ts';

export type ActivationOp = 'silu_and_mul';
export type ActivationOutput = 'out';

export interface ActivationOccurrence extends Occurrence<ActivationOp, ActivationOutput> {
  /** The [.., 2d] input whose first half goes through silu and gates the second. */
  readonly input: Arg;
}

type Found = ActivationOccurrence | MatchRefusal | undefined;

function customSiluAndMul(ix: GraphIndex, n: Node): Found {
  const input = functionalizedArg(n, 'input');
  if (input === undefined) return undefined;
  const call = functionalizedCall<ActivationOp, ActivationOutput>(
    ix,
    n,
    'silu_and_mul',
    [['out', 'result']],
    ['result'],
  );
  return 'reason' in call ? call : { ...call.occurrence, input };
}

/** `a` of silu(a) in any of its spellings, and the nodes it takes. */
function siluOf(ix: GraphIndex, n: Node | undefined): { a: Arg; nodes: Node[] } | undefined {
  if (!n) return undefined;
  if (n.op === SILU) return { a: n.args[0]!, nodes: [n] };
  if (n.op === MUL) {
    for (const s of [producer(ix, n.args[0]), producer(ix, n.args[1])]) {
      if (s && s.op === SIGMOID && sameRef(otherOperand(n, s.name), s.args[0]))
        return { a: s.args[0]!, nodes: [n, s] };
    }
  }
  if (n.op === DIV) {
    const onePlus = producer(ix, n.args[1]);
    const exp =
      onePlus && onePlus.op === ADD && numberOf(onePlus.args[1]) === 1
        ? producer(ix, onePlus.args[0])
        : undefined;
    const neg = exp && exp.op === EXP ? producer(ix, exp.args[0]) : undefined;
    if (neg && neg.op === NEG && sameRef(neg.args[0], n.args[0]))
      return { a: n.args[0]!, nodes: [n, onePlus!, exp!, neg] };
  }
  return undefined;
}

/** `slice(x, last dim, start, end)`: x and the bounds. */
function lastDimSlice(
  ix: GraphIndex,
  n: Node | undefined,
): { x: Arg; start: Arg; end: Arg; node: Node } | undefined {
  if (!n || n.op !== SLICE) return undefined;
  const x = n.args[0];
  const dim = numberOf(argOf(n, 1, 'dim') ?? 0);
  const rank = tensorOf(ix, x)?.shape.length;
  if (!x || !isRef(x) || !(dim === -1 || (rank !== undefined && dim === rank - 1))) return undefined;
  return { x, start: argOf(n, 2, 'start') ?? null, end: argOf(n, 3, 'end') ?? null, node: n };
}

function nativeSiluAndMul(ix: GraphIndex, m: Node): Found {
  for (const [gateArg, upArg] of [
    [m.args[0], m.args[1]],
    [m.args[1], m.args[0]],
  ] as const) {
    // silu in f32 and back to the model's dtype, or in the model's dtype throughout.
    const gateNode = producer(ix, gateArg);
    const back = conversion(gateNode);
    const silu = siluOf(ix, back ? producer(ix, back.source) : gateNode);
    if (!silu) continue;
    const a = throughConversion(ix, silu.a, 'f32');
    if (!!back !== !!a.convert) continue;
    const lo = lastDimSlice(ix, producer(ix, a.value));
    const hi = lastDimSlice(ix, producer(ix, upArg));
    if (!lo || !hi || !sameRef(lo.x, hi.x)) continue;
    // x[..., :d] and x[..., d:]: the first half starts at 0, the second where the first ends.
    if (numberOf(lo.start) !== 0 || JSON.stringify(lo.end) !== JSON.stringify(hi.start)) continue;
    const parts = [lo.node, hi.node, a.convert, ...silu.nodes, back ? gateNode : undefined, m];
    const nodes = parts.filter((n): n is Node => !!n).map((n) => n.name);
    const base = nativeOccurrence<ActivationOp, ActivationOutput>(ix, 'silu_and_mul', nodes, { out: m.name });
    return 'reason' in base ? base : { ...base, input: lo.x };
  }
  return undefined;
}

/** Every silu_and_mul occurrence in any form, in graph order, and the would-be ones refused. */
export const findActivations: (ix: GraphIndex) => Recognized<ActivationOccurrence> =
  recognizer(activationCandidates);

function* activationCandidates(ix: GraphIndex): Generator<Found> {
  for (const n of ix.byKey.get(`${AUTO_FUNCTIONALIZED}:${SILU_AND_MUL}`) ?? []) yield customSiluAndMul(ix, n);
  for (const n of ix.byKey.get(MUL) ?? []) yield nativeSiluAndMul(ix, n);
}
