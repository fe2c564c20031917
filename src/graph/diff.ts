// Before/after node mapping for a rewrite: which after-node is which before-node, and what
// happened to each. Built from the rewrite's matches (what each site consumed and produced)
// and, outside the matched sites, from names: a pass keeps every node it did not touch.

import { nodeInputs, type Graph, type Node } from './ir.ts';
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

  // Inside each site: a produced node is the consumed node it came from (madeBy), or the one
  // with its name, or the first unpaired consumed node computing the same thing.
  const mergedInto = new Map<string, string>();
  for (const s of sites) {
    const free = s.consumed.filter((c) => beforeNodes.has(c) && !beforeToAfter.has(c));
    for (const p of s.produced) {
      const an = afterNodes.get(p);
      if (!an || afterToBefore.has(p)) continue;
      const key = opKey(an);
      const from = an.meta.madeBy?.from ?? [];
      const candidates = [...from.filter((f) => free.includes(f)), ...(free.includes(p) ? [p] : []), ...free];
      const match = candidates.find((c) => opKey(beforeNodes.get(c)!) === key);
      if (match) {
        pair(p, match);
        free.splice(free.indexOf(match), 1);
      }
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
      opKey(bn) === opKey(an)
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

  return { afterToBefore, beforeToAfter, before: beforeChange, after: afterChange, mergedInto };
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
