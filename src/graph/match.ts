// A declarative pattern matcher in the spirit of tinygrad's UPat: a pattern is data — an op (or
// several), sub-patterns or captures for its arguments, predicates, a user-count constraint — and
// a pass is a list of (pattern, rewrite) rules. Matching is indexed: a pattern's root op picks the
// candidate nodes from a per-op index, so a pass over N nodes touches only the nodes it could match.

import type { Arg, Graph, Node, TensorType, ValueType } from './ir.ts';
import { isRef, usersOf } from './ir.ts';
import { AUTO_FUNCTIONALIZED, calledOp, callArg, functionalizedArg, functionalizedTarget } from './call.ts';
import { lookupOp } from './ops.ts';

/** Everything a pass needs to look things up in O(1): nodes by name and by op, users, positions. */
export interface GraphIndex {
  graph: Graph;
  byName: Map<string, Node>;
  /** Position of each node in `graph.nodes`. */
  pos: Map<string, number>;
  /** Value name → names of the nodes that read it (`'output'` for the graph's return). */
  users: Map<string, string[]>;
  /** Nodes by match key (see `matchKey`), in graph order. */
  byKey: Map<string, Node[]>;
  /** Value name → its annotated type (inputs and nodes). */
  types: Map<string, ValueType | null>;
}

/**
 * The key a node is indexed under: its op, except that `auto_functionalized` nodes are keyed by the
 * op they wrap (`auto_functionalized:_C.fused_add_rms_norm.default`) — vLLM's patterns name that op.
 */
export function matchKey(n: Node): string {
  // v2 is keyed as v1: a pattern written against auto_functionalized matches through either.
  const t = functionalizedTarget(n);
  return t === undefined ? n.op : `${AUTO_FUNCTIONALIZED}:${t}`;
}

export function indexGraph(g: Graph): GraphIndex {
  const byName = new Map<string, Node>();
  const pos = new Map<string, number>();
  const byKey = new Map<string, Node[]>();
  const types = new Map<string, ValueType | null>();
  for (const i of g.inputs) types.set(i.name, i.type);
  const nodes = g.nodes;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    byName.set(n.name, n);
    pos.set(n.name, i);
    types.set(n.name, n.type);
    const k = matchKey(n);
    let l = byKey.get(k);
    if (!l) byKey.set(k, (l = []));
    l.push(n);
  }
  return { graph: g, byName, pos, users: usersOf(g), byKey, types };
}

export function usersOfValue(ix: GraphIndex, name: string): string[] {
  return ix.users.get(name) ?? [];
}

/** The annotated tensor type of the value an argument refers to; undefined for literals, symbols and untyped values. */
export function tensorOf(ix: GraphIndex, a: Arg | undefined): TensorType | undefined {
  const t = a && isRef(a) ? ix.types.get(a.name) : undefined;
  return t && t.kind === 'tensor' ? t : undefined;
}

/** The getitem readers of a tuple-valued node, with the index each takes; null if anything else reads it. */
export function getitemReaders(ix: GraphIndex, n: Node): { node: Node; index: number }[] | null {
  const out: { node: Node; index: number }[] = [];
  for (const u of usersOfValue(ix, n.name)) {
    const g = ix.byName.get(u);
    if (!g || g.op !== 'getitem' || typeof g.args[1] !== 'number') return null;
    out.push({ node: g, index: g.args[1] });
  }
  return out;
}

/**
 * The value of a node's argument by schema position or name: FX may pass any argument either
 * positionally or as a keyword, and omitted ones take the schema default.
 */
export function argOf(n: Node, index: number, name: string): Arg | undefined {
  return callArg(n, index, name) ?? lookupOp(calledOp(n))?.args.find((a) => a.name === name)?.default;
}

// --- patterns ------------------------------------------------------------------------------

export interface Bindings {
  /** Nodes bound by `as`. */
  nodes: Record<string, Node>;
  /** Argument values bound by captures. */
  values: Record<string, Arg>;
}

export type Predicate = (n: Node, b: Bindings, ix: GraphIndex) => boolean;

export interface NodePat {
  kind: 'node';
  /** Match keys (see `matchKey`) this pattern accepts. */
  keys: string[];
  as?: string;
  /** Positional sub-patterns; looked up by schema name when the node passes them as keywords. */
  args?: ArgPat[];
  kwargs?: Record<string, ArgPat>;
  /** Exact number of distinct users (the graph's return counts as one). */
  users?: number;
  where?: Predicate;
}

export interface CapturePat {
  kind: 'capture';
  name?: string;
  where?: (a: Arg | undefined) => boolean;
}
export interface LitPat {
  kind: 'lit';
  value: Arg;
}
export type ArgPat = NodePat | CapturePat | LitPat;

export interface NodeSpec {
  as?: string;
  args?: ArgPat[];
  kwargs?: Record<string, ArgPat>;
  users?: number;
  where?: Predicate;
}

export const P = {
  /** A node whose op is `op` (or one of several). */
  node(op: string | string[], spec: NodeSpec = {}): NodePat {
    return { kind: 'node', keys: Array.isArray(op) ? op : [op], ...spec };
  },
  /** `auto_functionalized(target, **kwargs)`. */
  af(target: string, kwargs: Record<string, ArgPat>, spec: Omit<NodeSpec, 'kwargs' | 'args'> = {}): NodePat {
    return { kind: 'node', keys: [`${AUTO_FUNCTIONALIZED}:${target}`], kwargs, ...spec };
  },
  /** Any argument, optionally bound to a name and checked. */
  any(name?: string, where?: (a: Arg | undefined) => boolean): CapturePat {
    const c: CapturePat = { kind: 'capture' };
    if (name !== undefined) c.name = name;
    if (where) c.where = where;
    return c;
  },
  lit(value: Arg): LitPat {
    return { kind: 'lit', value };
  },
};

function argEquals(a: Arg | undefined, b: Arg): boolean {
  if (a === undefined) return false;
  if (a === b) return true;
  return JSON.stringify(a) === JSON.stringify(b);
}

function schemaName(n: Node, i: number): string {
  return lookupOp(n.op)?.args[i]?.name ?? `#${i}`;
}

function matchArg(p: ArgPat, a: Arg | undefined, ix: GraphIndex, b: Bindings): boolean {
  switch (p.kind) {
    case 'lit':
      return argEquals(a, p.value);
    case 'capture':
      if (p.where && !p.where(a)) return false;
      if (p.name !== undefined) {
        if (p.name in b.values) return argEquals(a, b.values[p.name]!);
        b.values[p.name] = a ?? null;
      }
      return true;
    case 'node': {
      if (!a || !isRef(a)) return false;
      const n = ix.byName.get(a.name);
      return !!n && matchInto(p, n, ix, b);
    }
  }
}

function matchInto(p: NodePat, n: Node, ix: GraphIndex, b: Bindings): boolean {
  if (!p.keys.includes(matchKey(n))) return false;
  if (p.as !== undefined) {
    const bound = b.nodes[p.as];
    if (bound && bound !== n) return false;
    b.nodes[p.as] = n;
  }
  if (p.users !== undefined && usersOfValue(ix, n.name).length !== p.users) return false;
  if (p.args) {
    for (let i = 0; i < p.args.length; i++) {
      if (!matchArg(p.args[i]!, argOf(n, i, schemaName(n, i)), ix, b)) return false;
    }
  }
  if (p.kwargs) {
    for (const k in p.kwargs) if (!matchArg(p.kwargs[k]!, functionalizedArg(n, k), ix, b)) return false;
  }
  return !p.where || p.where(n, b, ix);
}

/** Matches `p` rooted at `n`; the bindings, or null. */
export function matchAt(p: NodePat, n: Node, ix: GraphIndex): Bindings | null {
  const b: Bindings = { nodes: {}, values: {} };
  return matchInto(p, n, ix, b) ? b : null;
}

/** Every match of `p` in graph order, rooted at the nodes its keys index. */
export function findAll(p: NodePat, ix: GraphIndex): { root: Node; bindings: Bindings }[] {
  const roots: Node[] = [];
  for (const k of p.keys) roots.push(...(ix.byKey.get(k) ?? []));
  if (p.keys.length > 1) roots.sort((x, y) => ix.pos.get(x.name)! - ix.pos.get(y.name)!);
  const out: { root: Node; bindings: Bindings }[] = [];
  for (const r of roots) {
    const b = matchAt(p, r, ix);
    if (b) out.push({ root: r, bindings: b });
  }
  return out;
}
