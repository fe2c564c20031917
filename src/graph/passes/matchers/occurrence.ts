// What every recognizer of the matcher layer hands a pass (see index.ts): one occurrence of a
// vLLM op, whatever form the graph spells it in, and the refusals of would-be occurrences whose
// interior values escape. Also the few walks over a native decomposition the recognizers share.

import type { Arg, DType, Node } from '../../ir.ts';
import { isRef, torchDtype } from '../../ir.ts';
import type { GraphIndex } from '../../match.ts';
import { getitemReaders, usersOfValue } from '../../match.ts';
import { AUTO_FUNCTIONALIZED, functionalizedArg, mutatedResultIndex } from '../../call.ts';
import { CONVERT_ELEMENT_TYPE, EMPTY, EMPTY_LIKE, TO_COPY } from '../patternOps.ts';

/**
 * The spelling an op was found in: `custom` — the `_C` op through auto_functionalized (v1 or v2),
 * as vLLM's `forward_custom`; `vllm-ir` — the functional `vllm_ir.*` op, before VllmIRLoweringPass;
 * `native` — the torch decomposition of `forward_native` as Inductor's post-grad graph prints it.
 */
export type OpForm = 'custom' | 'vllm-ir' | 'native';

export const OP_FORMS: readonly OpForm[] = ['custom', 'vllm-ir', 'native'];

export interface Occurrence<Op extends string, Out extends string> {
  readonly op: Op;
  readonly form: OpForm;
  /** Every node the occurrence consists of, in graph order: a rewrite that replaces it removes them all. */
  readonly nodes: readonly string[];
  /**
   * The values readers outside the occurrence read, by role (a getitem of the custom or IR op, the
   * native form's last node); absent where nothing reads that result.
   */
  readonly outputs: Readonly<Partial<Record<Out, string>>>;
  /** The op's call (custom, vllm-ir) or the native form's first node: where a replacement goes. */
  readonly anchor: string;
}

/** A would-be occurrence Inductor's matcher would refuse: an interior value is read from outside. */
export interface MatchRefusal {
  readonly op: string;
  readonly form: OpForm;
  /** The would-be occurrence's anchor. */
  readonly anchor: string;
  /** Every node the would-be occurrence consists of. */
  readonly nodes: readonly string[];
  /** The interior value read from outside, and the node that reads it (`output`: the graph's return). */
  readonly value: string;
  readonly reader: string;
  readonly reason: string;
}

export interface Recognized<O> {
  readonly occurrences: readonly O[];
  readonly refusals: readonly MatchRefusal[];
}

// --- reading a native decomposition -----------------------------------------------------------

/** The node that produces an argument's value; undefined for literals and graph inputs. */
export function producer(ix: GraphIndex, a: Arg | undefined): Node | undefined {
  return a && isRef(a) ? ix.byName.get(a.name) : undefined;
}

/** The nodes that read `name`, looked up (the graph's return is left out). */
export function readerNodes(ix: GraphIndex, name: string): Node[] {
  return usersOfValue(ix, name)
    .map((u) => ix.byName.get(u))
    .filter((n): n is Node => !!n);
}

/** The single node reading `name`, when exactly one reads it (and the graph does not return it). */
export function soleReader(ix: GraphIndex, name: string): Node | undefined {
  const users = usersOfValue(ix, name);
  return users.length === 1 ? ix.byName.get(users[0]!) : undefined;
}

/** A dtype conversion: `convert_element_type(x, dtype)` or `_to_copy(x, dtype = …)`. */
export function conversion(n: Node | undefined): { source: Arg; dtype: DType } | undefined {
  if (!n) return undefined;
  const dtype =
    n.op === CONVERT_ELEMENT_TYPE
      ? torchDtype(n.args[1] ?? n.kwargs['dtype'])
      : n.op === TO_COPY
        ? torchDtype(n.kwargs['dtype'])
        : undefined;
  const source = n.args[0];
  return dtype && source !== undefined ? { source, dtype } : undefined;
}

/** `a`, or the value it was converted from when a conversion to `dtype` produced it (and the conversion). */
export function throughConversion(ix: GraphIndex, a: Arg, dtype: DType): { value: Arg; convert?: Node } {
  const n = producer(ix, a);
  const c = conversion(n);
  return c && c.dtype === dtype ? { value: c.source, convert: n } : { value: a };
}

/** The other operand of a binary op one of whose operands is `known` (a value name); undefined if neither is. */
export function otherOperand(n: Node, known: string): Arg | undefined {
  const [a, b] = n.args;
  if (a !== undefined && isRef(a) && a.name === known) return b;
  if (b !== undefined && isRef(b) && b.name === known) return a;
  return undefined;
}

export function sameRef(a: Arg | undefined, b: Arg | undefined): boolean {
  return !!a && !!b && isRef(a) && isRef(b) && a.name === b.name;
}

export function inGraphOrder(ix: GraphIndex, names: Iterable<string>): string[] {
  return [...new Set(names)].sort((x, y) => (ix.pos.get(x) ?? -1) - (ix.pos.get(y) ?? -1));
}

/**
 * The first interior value of a would-be occurrence read from outside it: Inductor's matcher
 * replaces a pattern only when nothing but its declared outputs escapes.
 */
export function escapingRead(
  ix: GraphIndex,
  nodes: readonly string[],
  outputs: readonly string[],
): { value: string; reader: string } | undefined {
  const inside = new Set(nodes);
  for (const n of nodes) {
    if (outputs.includes(n)) continue;
    const reader = usersOfValue(ix, n).find((u) => !inside.has(u));
    if (reader !== undefined) return { value: n, reader };
  }
  return undefined;
}

/**
 * A native occurrence of `op` made of `nodes` (in any order; anchored at the first in graph
 * order), or its refusal when an interior value other than `outputs` is read from outside.
 */
export function nativeOccurrence<Op extends string, Out extends string>(
  ix: GraphIndex,
  op: Op,
  nodes: Iterable<string>,
  outputs: Partial<Record<Out, string>>,
): Occurrence<Op, Out> | MatchRefusal {
  const ordered = inGraphOrder(ix, nodes);
  const anchor = ordered[0]!;
  const escape = escapingRead(
    ix,
    ordered,
    Object.values<string | undefined>(outputs).filter((o) => o !== undefined),
  );
  if (escape) return refusal(op, 'native', anchor, ordered, escape);
  return { op, form: 'native', nodes: ordered, outputs, anchor };
}

export function refusal(
  op: string,
  form: OpForm,
  anchor: string,
  nodes: readonly string[],
  read: { value: string; reader: string },
  why?: string,
): MatchRefusal {
  const by = read.reader === 'output' ? "the graph's return" : read.reader;
  return {
    op,
    form,
    anchor,
    nodes,
    ...read,
    reason:
      why ??
      `${read.value}, inside the ${op} at ${anchor} (${form} form), is read by ${by}: Inductor's matcher refuses a pattern whose interior value is read from outside it`,
  };
}

/**
 * The results of a tuple-valued call (a functionalized custom op, a vLLM IR op returning a tuple) by
 * role: `roleOf(index)` names the role of each getitem; undefined roles, or anything other than a
 * getitem reading the call, refuse the occurrence, as do two getitems of one role (post-grad graphs
 * have one).
 */
export function tupleOutputs<Out extends string>(
  ix: GraphIndex,
  call: Node,
  roleOf: (index: number) => Out | undefined,
):
  | { outputs: Partial<Record<Out, string>>; getitems: string[] }
  | { escape: { value: string; reader: string } } {
  const readers = getitemReaders(ix, call);
  const outputs: Partial<Record<Out, string>> = {};
  const getitems: string[] = [];
  if (!readers) {
    const reader = usersOfValue(ix, call.name).find((u) => ix.byName.get(u)?.op !== 'getitem') ?? 'output';
    return { escape: { value: call.name, reader } };
  }
  for (const r of readers) {
    const role = roleOf(r.index);
    if (role === undefined) return { escape: { value: call.name, reader: r.node.name } };
    if (outputs[role] !== undefined) return { escape: { value: call.name, reader: r.node.name } };
    outputs[role] = r.node.name;
    getitems.push(r.node.name);
  }
  return { outputs, getitems };
}

/** The occurrences and refusals among a recognizer's candidates, each in graph order of its anchor. */
function recognized<O extends { anchor: string }>(
  ix: GraphIndex,
  candidates: Iterable<O | MatchRefusal | undefined>,
): Recognized<O> {
  const occurrences: O[] = [];
  const refusals: MatchRefusal[] = [];
  for (const f of candidates) {
    if (!f) continue;
    if ('reason' in f) refusals.push(f);
    else occurrences.push(f);
  }
  const at = (o: { anchor: string }) => ix.pos.get(o.anchor) ?? -1;
  occurrences.sort((a, b) => at(a) - at(b));
  refusals.sort((a, b) => at(a) - at(b));
  return { occurrences, refusals };
}

/**
 * A recognizer from the candidates it weighs: its answer is remembered per graph index, so a pass
 * whose rules (and diagnostics) ask for the same occurrences of one graph recognizes them once
 * (the answer is shared: read it only).
 */
export function recognizer<O extends { anchor: string }>(
  candidates: (ix: GraphIndex) => Iterable<O | MatchRefusal | undefined>,
): (ix: GraphIndex) => Recognized<O> {
  const seen = new WeakMap<GraphIndex, Recognized<O>>();
  return (ix) => {
    let r = seen.get(ix);
    if (r === undefined) seen.set(ix, (r = recognized(ix, candidates(ix))));
    return r;
  };
}

/**
 * A custom op called through auto_functionalized (v1 or v2), as an occurrence: `results` lists
 * each output role with the mutated argument that carries it, in schema order (v1 returns them
 * from [1] in that order, which stands in while the registry does not know the op); `buffers`
 * names the output arguments whose scratch buffer (made for this call alone) is part of it.
 */
export function functionalizedCall<Op extends string, Out extends string>(
  ix: GraphIndex,
  n: Node,
  op: Op,
  results: readonly (readonly [Out, string])[],
  buffers: readonly string[] = [],
): { occurrence: Occurrence<Op, Out>; buffers: Record<string, Arg>; scratch: Set<string> } | MatchRefusal {
  const index = results.map(
    ([, arg], i) => mutatedResultIndex(n, arg) ?? (n.op === AUTO_FUNCTIONALIZED ? i + 1 : undefined),
  );
  const read = tupleOutputs<Out>(ix, n, (i) => results[index.indexOf(i)]?.[0]);
  const passed: Record<string, Arg> = {};
  const scratch = new Set<string>();
  for (const arg of buffers) {
    const b = functionalizedArg(n, arg);
    if (b === undefined) continue;
    passed[arg] = b;
    const s = scratchBuffer(ix, b, n);
    if (s) scratch.add(s.name);
  }
  const nodes = inGraphOrder(ix, [...scratch, n.name, ...('getitems' in read ? read.getitems : [])]);
  if ('escape' in read) return refusal(op, 'custom', n.name, nodes, read.escape);
  return {
    occurrence: { op, form: 'custom', nodes, outputs: read.outputs, anchor: n.name },
    buffers: passed,
    scratch,
  };
}

/** A buffer made for `reader` alone (`empty_like` / `empty`): part of the occurrence that writes it. */
export function scratchBuffer(ix: GraphIndex, a: Arg | undefined, reader: Node): Node | undefined {
  const n = producer(ix, a);
  if (!n || (n.op !== EMPTY_LIKE && n.op !== EMPTY)) return undefined;
  const users = usersOfValue(ix, n.name);
  return users.length === 1 && users[0] === reader.name ? n : undefined;
}
