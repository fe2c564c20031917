// Rotary embedding, after vLLM's MatcherRotaryEmbedding (vllm/compilation/passes/fusion/
// matcher_utils.py): query and key rotated by the position's angle.
//
//   custom   auto_functionalized(_C.rotary_embedding, positions, query, key, head_size,
//            cos_sin_cache, is_neox)[1] query, [2] key; also vllm.flashinfer_rotary_embedding, the op
//            MatcherRotaryEmbedding(use_flashinfer = True) matches, with the same arguments
//   native   RotaryEmbedding.forward_static (rotary_embedding/base.py) over ApplyRotaryEmb.forward_static
//            (common.py), as torch 2.13's Inductor prints it post-grad (matchers/rotaryForms.ts):
//              cos, sin = split(index(cos_sin_cache, [positions]), rot/2, -1)
//              per rotated tensor x (query, then key):
//                v = reshape(x, [T, -1, head_size])
//                x1, x2 = split(v, rot/2, -1)                        (neox)
//                         slice(v, 2, 0, ∞, 2), slice(v, 2, 1, ∞, 2) (GPT-J)
//                o1 = x1·unsqueeze(cos, -2) − x2·unsqueeze(sin, -2)
//                o2 = x2·unsqueeze(cos, -2) + x1·unsqueeze(sin, -2)
//                out = reshape(cat([o1, o2], -1), x.shape)                          (neox)
//                      reshape(reshape(cat([o1[..., None], o2[..., None]], -1)), x.shape)  (GPT-J)
//            with rotary_dim = head_size as vLLM's matcher sets it (a partial rotary keeps a pass-through
//            slice and a second cat: not matched, as vLLM's pattern does not trace one).
//
// vLLM IR has no rotary op (vllm/ir/ops holds the norms and the quant), so there is no `vllm-ir` form.

import type { Arg, Node } from '../../ir.ts';
import { isRef, numberOf } from '../../ir.ts';
import type { GraphIndex } from '../../match.ts';
import { argOf, tensorOf } from '../../match.ts';
import { AUTO_FUNCTIONALIZED, functionalizedArg } from '../../call.ts';
import {
  ADD,
  CAT,
  FLASHINFER_ROTARY_EMBEDDING,
  INDEX,
  MUL,
  RESHAPE,
  ROTARY_EMBEDDING,
  SLICE,
  SPLIT,
  SUB,
  UNSQUEEZE,
  VIEW,
} from '../patternOps.ts';
import type { MatchRefusal, Occurrence, Recognized } from './occurrence.ts';
import {
  functionalizedCall,
  nativeOccurrence,
  producer,
  readerNodes,
  recognizer,
  sameRef,
} from './occurrence.ts';

export type RotaryOp = 'rotary_embedding';
export type RotaryOutput = 'query' | 'key';

export interface RotaryOccurrence extends Occurrence<RotaryOp, RotaryOutput> {
  readonly positions: Arg;
  readonly query: Arg;
  /** null where the op rotates the query alone. */
  readonly key: Arg;
  readonly headSize: Arg;
  readonly cosSinCache: Arg;
  readonly isNeox: Arg;
  /** The custom op called (`_C.rotary_embedding` or FlashInfer's); undefined for the native form. */
  readonly target?: string;
}

type Found = RotaryOccurrence | MatchRefusal | undefined;

function customRotary(ix: GraphIndex, n: Node, target: string): Found {
  const query = functionalizedArg(n, 'query');
  if (query === undefined) return undefined;
  const call = functionalizedCall<RotaryOp, RotaryOutput>(ix, n, 'rotary_embedding', [
    ['query', 'query'],
    ['key', 'key'],
  ]);
  if ('reason' in call) return call;
  const arg = (name: string) => functionalizedArg(n, name) ?? null;
  return {
    ...call.occurrence,
    positions: arg('positions'),
    query,
    key: arg('key'),
    headSize: arg('head_size'),
    cosSinCache: arg('cos_sin_cache'),
    isNeox: arg('is_neox'),
    target,
  };
}

// --- native ------------------------------------------------------------------------------------

const isReshape = (n: Node | undefined): n is Node => !!n && (n.op === RESHAPE || n.op === VIEW);

/** The getitem `index` of a tuple-valued node, if `n` is one: [tuple node, index]. */
function getitemOf(ix: GraphIndex, n: Node | undefined): [Node, number] | undefined {
  if (!n || n.op !== 'getitem') return undefined;
  const t = producer(ix, n.args[0]);
  const i = numberOf(n.args[1]);
  return t && i !== undefined ? [t, i] : undefined;
}

/** cos (0) or sin (1) of the cache rows: getitem(split(index(cache, [positions]), rot/2, -1), i). */
function cacheHalf(ix: GraphIndex, u: Node | undefined) {
  if (!u || u.op !== UNSQUEEZE || numberOf(u.args[1]) !== -2) return undefined;
  const g = producer(ix, u.args[0]);
  const [split, half] = getitemOf(ix, g) ?? [];
  if (!split || split.op !== SPLIT || numberOf(split.args[2]) !== -1) return undefined;
  const index = producer(ix, split.args[0]);
  if (!index || index.op !== INDEX) return undefined;
  const positions =
    Array.isArray(index.args[1]) && index.args[1].length === 1 ? index.args[1][0]! : undefined;
  if (positions === undefined) return undefined;
  return { half: half!, unsqueeze: u, getitem: g!, split, index, positions, cache: index.args[0]! };
}

/** `mul(x, unsqueeze(cos|sin))`: x and which half. */
function rotatedTerm(ix: GraphIndex, m: Node | undefined) {
  if (!m || m.op !== MUL) return undefined;
  for (const [x, c] of [
    [m.args[0], m.args[1]],
    [m.args[1], m.args[0]],
  ] as const) {
    const h = cacheHalf(ix, producer(ix, c));
    if (h && x !== undefined) return { x, ...h, mul: m };
  }
  return undefined;
}

/** Two splits of one value into the same halves (Inductor may leave one per getitem; vLLM's SplitCoalescingPass merges them). */
function sameSplit(a: Node, b: Node): boolean {
  return a === b || (a.op === SPLIT && b.op === SPLIT && JSON.stringify(a.args) === JSON.stringify(b.args));
}

/**
 * x1, x2 of the heads value v ([T, H, D]): neox halves (split) or GPT-J's even and odd dims
 * (step-2 slices); v itself, or the reshape of the flat tensor to heads that made it.
 */
function headHalves(ix: GraphIndex, x1: Arg, x2: Arg) {
  const a = producer(ix, x1),
    b = producer(ix, x2);
  const ga = getitemOf(ix, a),
    gb = getitemOf(ix, b);
  let heads: Arg | undefined, nodes: Node[];
  let neox: boolean;
  if (ga && gb && ga[0].op === SPLIT && sameSplit(ga[0], gb[0]) && ga[1] === 0 && gb[1] === 1) {
    neox = true;
    heads = ga[0].args[0];
    nodes = [a!, b!, ga[0], ...(gb[0] !== ga[0] ? [gb[0]] : [])];
  } else {
    const slice = (n: Node | undefined, start: number) =>
      !!n &&
      n.op === SLICE &&
      numberOf(n.args[1]) === 2 &&
      numberOf(n.args[2]) === start &&
      numberOf(n.args[4]) === 2;
    if (!slice(a, 0) || !slice(b, 1) || !sameRef(a!.args[0], b!.args[0])) return undefined;
    neox = false;
    heads = a!.args[0];
    nodes = [a!, b!];
  }
  if (heads === undefined) return undefined;
  const headSize = tensorOf(ix, heads)?.shape.at(-1);
  // The reshape of x to [T, -1, head_size] (Inductor folds it away when x is heads already).
  const view = producer(ix, heads);
  if (isReshape(view) && readerNodes(ix, view.name).every((r) => nodes.includes(r)))
    return {
      neox,
      input: view.args[0]!,
      headSize: typeof headSize === 'number' ? headSize : numberOf((argOf(view, 1, 'shape') as Arg[]).at(-1)),
      nodes: [view, ...nodes],
    };
  return { neox, input: heads, headSize: typeof headSize === 'number' ? headSize : undefined, nodes };
}

/** One rotated tensor of the native form, found from its `o1 = x1·cos − x2·sin`. */
function nativeHalf(ix: GraphIndex, sub: Node) {
  const t1 = rotatedTerm(ix, producer(ix, sub.args[0]));
  const t2 = rotatedTerm(ix, producer(ix, sub.args[1]));
  if (!t1 || !t2 || t1.half !== 0 || t2.half !== 1 || t1.split !== t2.split) return undefined;
  const halves = headHalves(ix, t1.x, t2.x);
  if (!halves) return undefined;
  // o2 = x2·cos + x1·sin: the add reading the other two products.
  const add = findO2(ix, t1, t2);
  if (!add) return undefined;
  const out = halvesJoined(ix, sub, add.node, halves.neox);
  if (!out) return undefined;
  return {
    input: halves.input,
    neox: halves.neox,
    headSize: halves.headSize,
    cos: t1,
    sin: t2,
    output: out.output,
    nodes: [...halves.nodes, t1.unsqueeze, t1.mul, t2.unsqueeze, t2.mul, sub, ...add.nodes, ...out.nodes].map(
      (n) => n.name,
    ),
  };
}

/** `add(x2·cos, x1·sin)` with the same x1, x2 and cache halves as o1's products (each its own unsqueeze). */
function findO2(
  ix: GraphIndex,
  t1: NonNullable<ReturnType<typeof rotatedTerm>>,
  t2: NonNullable<ReturnType<typeof rotatedTerm>>,
): { node: Node; nodes: Node[] } | undefined {
  for (const m of readerNodes(ix, isRef(t2.x) ? t2.x.name : '')) {
    const a = rotatedTerm(ix, m);
    if (!a || a.half !== 0 || a.split !== t1.split || !sameRef(a.x, t2.x)) continue;
    for (const add of readerNodes(ix, m.name)) {
      if (add.op !== ADD) continue;
      const other = producer(
        ix,
        sameRef(add.args[0], { kind: 'ref', name: m.name }) ? add.args[1] : add.args[0],
      );
      const b = rotatedTerm(ix, other);
      if (b && b.half === 1 && b.split === t1.split && sameRef(b.x, t1.x))
        return {
          node: add,
          nodes: [
            m,
            ...(a.unsqueeze !== t1.unsqueeze ? [a.unsqueeze] : []),
            b.mul,
            ...(b.unsqueeze !== t2.unsqueeze ? [b.unsqueeze] : []),
            add,
          ],
        };
    }
  }
  return undefined;
}

/** The rotated halves put back: neox cat([o1, o2], -1) → reshape; GPT-J stack → flatten → reshape. */
function halvesJoined(ix: GraphIndex, o1: Node, o2: Node, neox: boolean) {
  const only = (n: Node) => {
    const r = readerNodes(ix, n.name);
    return r.length === 1 ? r[0] : undefined;
  };
  const nodes: Node[] = [];
  let a: Node = o1,
    b: Node = o2;
  if (!neox) {
    const ua = only(o1),
      ub = only(o2);
    if (!ua || !ub || ua.op !== UNSQUEEZE || ub.op !== UNSQUEEZE) return undefined;
    nodes.push(ua, ub);
    a = ua;
    b = ub;
  }
  const cat = only(a);
  const items = cat?.args[0];
  if (
    !cat ||
    cat.op !== CAT ||
    numberOf(cat.args[1]) !== -1 ||
    !Array.isArray(items) ||
    items.length !== 2 ||
    !sameRef(items[0], { kind: 'ref', name: a.name }) ||
    !sameRef(items[1], { kind: 'ref', name: b.name })
  )
    return undefined;
  nodes.push(cat);
  // Reshapes back to x's shape (GPT-J: two, the flatten and the query shape).
  let output: Node = cat;
  for (let r = only(output); isReshape(r) && nodes.length < 8; r = only(output)) {
    nodes.push(r);
    output = r;
  }
  if (output === cat) return undefined;
  return { output, nodes };
}

/** Every native rotary in the graph: its rotated tensors paired, query then key, per cos/sin split. */
function* nativeRotaries(ix: GraphIndex): Generator<Found> {
  const bySplit = new Map<Node, NonNullable<ReturnType<typeof nativeHalf>>[]>();
  for (const sub of ix.byKey.get(SUB) ?? []) {
    const h = nativeHalf(ix, sub);
    if (!h) continue;
    const l = bySplit.get(h.cos.split) ?? [];
    l.push(h);
    bySplit.set(h.cos.split, l);
  }
  for (const [split, halves] of bySplit) {
    halves.sort((a, b) => (ix.pos.get(a.nodes[0]!) ?? 0) - (ix.pos.get(b.nodes[0]!) ?? 0));
    for (let i = 0; i < halves.length; i += 2) {
      const q = halves[i]!,
        k = halves[i + 1];
      // The cache rows are the pair's own where it alone reads them (one rotary per index_select).
      const own = halves.length <= 2 ? [q.cos.index, split, q.cos.getitem, q.sin.getitem] : [];
      const outputs: Partial<Record<RotaryOutput, string>> = { query: q.output.name };
      if (k) outputs.key = k.output.name;
      const base = nativeOccurrence(
        ix,
        'rotary_embedding' as const,
        [...own.map((n) => n.name), ...q.nodes, ...(k?.nodes ?? [])],
        outputs,
      );
      if ('reason' in base) {
        yield base;
        continue;
      }
      yield {
        ...base,
        positions: q.cos.positions,
        query: q.input,
        key: k?.input ?? null,
        headSize: q.headSize ?? null,
        cosSinCache: q.cos.cache,
        isNeox: q.neox,
      };
    }
  }
}

function* rotaryCandidates(ix: GraphIndex): Generator<Found> {
  for (const target of [ROTARY_EMBEDDING, FLASHINFER_ROTARY_EMBEDDING])
    for (const n of ix.byKey.get(`${AUTO_FUNCTIONALIZED}:${target}`) ?? []) yield customRotary(ix, n, target);
  yield* nativeRotaries(ix);
}

/** Every rotary embedding occurrence (custom and native forms), in graph order, and the would-be ones refused. */
export const findRotaries: (ix: GraphIndex) => Recognized<RotaryOccurrence> = recognizer(rotaryCandidates);
