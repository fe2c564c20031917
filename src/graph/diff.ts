// Before/after node mapping for a rewrite: which after-node is which before-node, and what
// happened to each. Built from provenance only: inside a matched site, from what each new node
// says it was made from (`meta.madeBy`); outside, from names (a pass keeps every node it did not
// touch). A node with no such counterpart has none: pairing never falls back to an op or index
// that merely looks alike (a fused op's [1] is not the norm's [1]).

import { isRef, nodeInputs, type Graph, type Node } from './ir.ts';
import { opKind } from './ops.ts';
import { calledOp, functionalizedTarget } from './call.ts';

/** The part of a pass's Match the diff needs (src/graph/passes/pipeline.ts). */
export interface RewriteSite {
  pass?: string;
  consumed: readonly string[];
  produced: readonly string[];
}

/**
 * unchanged: same node, same inputs. rewired: same node, reads values that a rewrite made.
 * moved: a node a rewrite re-placed (the slice that now sits above the all-reduce).
 * removed: before-only. added: after-only. fused: after-only and it replaced several nodes
 * (or runs a fused kernel).
 */
export type NodeChange = 'unchanged' | 'rewired' | 'moved' | 'removed' | 'added' | 'fused';

export interface GraphDiff {
  /** after-name → before-name, for every node present in both. */
  afterToBefore: Map<string, string>;
  beforeToAfter: Map<string, string>;
  /** Change of every before-node (unchanged, rewired, moved, removed). */
  before: Map<string, NodeChange>;
  /** Change of every after-node (unchanged, rewired, moved, added, fused). */
  after: Map<string, NodeChange>;
  /** A removed before-node → the after-node that took over its work (all_reduce → the fused op). */
  mergedInto: Map<string, string>;
  /**
   * after-name → the before-node it stands for, for |Δ|, selection and the inspector: every pair
   * above, and a fused op's result that holds a removed node's value (the fused all-reduce +
   * norm's [1] holds the all-reduce's sum, though the all-reduce itself is gone).
   */
  counterparts: Map<string, string>;
  /** The inverse of `counterparts`. */
  counterpartsBefore: Map<string, string>;
}

/** What a node computes, for pairing: the op, the wrapped op of auto_functionalized, getitem's index. */
export function opKey(n: Node): string {
  const wrapped = functionalizedTarget(n);
  if (wrapped !== undefined) return `${n.op}(${wrapped})`;
  if (n.op === 'getitem') return `getitem[${String(n.args[1])}]`;
  return n.op;
}

export function diffGraphs(before: Graph, after: Graph, sites: readonly RewriteSite[] = []): GraphDiff {
  const beforeNodes = new Map(before.nodes.map((n) => [n.name, n]));
  const afterNodes = new Map(after.nodes.map((n) => [n.name, n]));
  const afterToBefore = new Map<string, string>();
  const beforeToAfter = new Map<string, string>();
  const pair = (a: string, b: string) => {
    afterToBefore.set(a, b);
    beforeToAfter.set(b, a);
  };

  const consumed = new Set<string>();
  const produced = new Set<string>();
  for (const s of sites) {
    for (const c of s.consumed) consumed.add(c);
    for (const p of s.produced) produced.add(p);
  }

  // Inside each site a produced node pairs only with what it says it was made from (madeBy), or
  // with the consumed node whose name it kept, when both compute the same thing in the same role.
  const mergedInto = new Map<string, string>();
  const standsFor = new Map<string, string>();
  for (const s of sites) {
    const free = s.consumed.filter((c) => beforeNodes.has(c) && !beforeToAfter.has(c));
    const inSite = { consumed: new Set(s.consumed), produced: new Set(s.produced) };
    for (const p of s.produced) {
      const an = afterNodes.get(p);
      if (!an || afterToBefore.has(p)) continue;
      const from = an.meta.madeBy?.from ?? [];
      const candidates = [...from, p].filter((c) => free.includes(c));
      const match = candidates.find((c) => sameRole(an, beforeNodes.get(c)!, afterToBefore, inSite));
      if (match) {
        pair(p, match);
        free.splice(free.indexOf(match), 1);
        continue;
      }
      const stand = standIn(an, from, beforeNodes);
      if (stand !== undefined && free.includes(stand)) standsFor.set(p, stand);
    }
    // What is left was absorbed: by the site's fused node or another new node that says it came
    // from it, else by the fused node, else by the site's first new node.
    const fresh = s.produced.filter((p) => afterNodes.has(p) && !afterToBefore.has(p));
    const fusedNode = fresh.find((p) => opKind(calledOp(afterNodes.get(p)!)) === 'fused');
    for (const c of free) {
      const makers = fresh.filter((p) => afterNodes.get(p)!.meta.madeBy?.from.includes(c));
      const owner = makers.find((p) => p === fusedNode) ?? makers[0] ?? fusedNode ?? fresh[0];
      if (owner) mergedInto.set(c, owner);
    }
  }

  // Outside the sites a node keeps its name.
  for (const [name, an] of afterNodes) {
    if (afterToBefore.has(name) || (produced.has(name) && !beforeNodes.has(name))) continue;
    const bn = beforeNodes.get(name);
    if (
      bn &&
      !beforeToAfter.has(name) &&
      !(consumed.has(name) && !produced.has(name)) &&
      sameRole(an, bn, afterToBefore)
    )
      pair(name, name);
  }

  const beforeInputs = new Set(before.inputs.map((i) => i.name));
  const afterChange = new Map<string, NodeChange>();
  const beforeChange = new Map<string, NodeChange>();
  for (const an of after.nodes) {
    const b = afterToBefore.get(an.name);
    if (b === undefined) {
      const absorbed = [...mergedInto.values()].filter((o) => o === an.name).length;
      const isFused = opKind(calledOp(an)) === 'fused' || absorbed >= 2;
      afterChange.set(an.name, isFused ? 'fused' : 'added');
      continue;
    }
    const now = nodeInputs(an).map((r) => afterToBefore.get(r) ?? (beforeInputs.has(r) ? r : `\0${r}`));
    const was = nodeInputs(beforeNodes.get(b)!);
    const same = now.length === was.length && now.every((r, i) => r === was[i]);
    let change: NodeChange = 'unchanged';
    if (!same) change = produced.has(an.name) && now.every((r) => !r.startsWith('\0')) ? 'moved' : 'rewired';
    afterChange.set(an.name, change);
    beforeChange.set(b, change);
  }
  for (const bn of before.nodes) if (!beforeChange.has(bn.name)) beforeChange.set(bn.name, 'removed');

  const counterparts = new Map([...afterToBefore, ...standsFor]);
  const counterpartsBefore = new Map([...counterparts].map(([a, b]) => [b, a]));
  return {
    afterToBefore,
    beforeToAfter,
    before: beforeChange,
    after: afterChange,
    mergedInto,
    counterparts,
    counterpartsBefore,
  };
}

const producerOf = (n: Node): string | undefined => {
  const p = n.args[0];
  return p !== undefined && isRef(p) ? p.name : undefined;
};

/**
 * Whether after-node `a` computes what before-node `b` did: the same op, and for a getitem the
 * same producer's counterpart (the result index may differ: the fused all-reduce + norm returns
 * the normed output as [3] where rms_norm returned [1]; the pass's provenance says which is which).
 * Inside a site the producers are the site's own nodes: the consumed norm and the fused op.
 */
function sameRole(
  a: Node,
  b: Node,
  afterToBefore: ReadonlyMap<string, string>,
  site?: { consumed: ReadonlySet<string>; produced: ReadonlySet<string> },
): boolean {
  if (a.op !== 'getitem' || b.op !== 'getitem') return opKey(a) === opKey(b);
  const pa = producerOf(a),
    pb = producerOf(b);
  if (pa === undefined || pb === undefined) return false;
  if (afterToBefore.get(pa) === pb) return opKey(a) === opKey(b) || site !== undefined;
  return site !== undefined && site.consumed.has(pb) && site.produced.has(pa);
}

/**
 * The removed node whose value a new getitem holds: the one node it was made from, when that is
 * not a getitem and has its type (the fused all-reduce + norm's [1], made from the all-reduce).
 */
function standIn(
  a: Node,
  from: readonly string[],
  beforeNodes: ReadonlyMap<string, Node>,
): string | undefined {
  if (a.op !== 'getitem' || from.length !== 1) return undefined;
  const b = beforeNodes.get(from[0]!);
  if (!b || b.op === 'getitem' || !a.type || !b.type) return undefined;
  return JSON.stringify(a.type) === JSON.stringify(b.type) ? b.name : undefined;
}

/** Highlights for a view: only what a reader should notice (rewired nodes stay plain). */
export function changeMarks(
  changes: Map<string, NodeChange>,
): Map<string, 'added' | 'removed' | 'moved' | 'fused'> {
  const marks = new Map<string, 'added' | 'removed' | 'moved' | 'fused'>();
  for (const [name, c] of changes)
    if (c === 'added' || c === 'removed' || c === 'moved' || c === 'fused') marks.set(name, c);
  return marks;
}
