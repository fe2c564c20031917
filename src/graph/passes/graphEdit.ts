// The one way passes change a graph: record removals, substitutions (every use of a value
// replaced by another) and new nodes, then build a new graph in one linear sweep. The input graph
// is never touched; unchanged nodes are shared with it (graphs are treated as immutable values).

import type { Arg, Graph, Node, ValueType } from '../ir.ts';
import { forEachInput, isRef, mapArg, nodeInputs, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { inferType } from '../infer.ts';

export class GraphEdit {
  readonly removed = new Set<string>();
  /** Nodes a match has already claimed: a later match touching one of them is skipped. */
  readonly claimed = new Set<string>();
  private subst = new Map<string, Arg>();
  /** New nodes to place just before an anchor node of the input graph. */
  private before = new Map<string, Node[]>();
  private newTypes = new Map<string, ValueType | null>();
  private newNodes = new Map<string, Node>();
  /** Names this edit has handed out (the input graph's are looked up in its index). */
  private taken = new Set<string>();
  private counters = new Map<string, number>();

  constructor(
    readonly ix: GraphIndex,
    readonly pass: string,
  ) {}

  private isTaken(name: string): boolean {
    return this.taken.has(name) || this.ix.types.has(name);
  }

  /** An unused name in FX's style: `base`, then `base_1`, `base_2`, … */
  fresh(base: string): string {
    let k = this.counters.get(base) ?? 0;
    let name = k === 0 ? base : `${base}_${k}`;
    while (this.isTaken(name)) name = `${base}_${++k}`;
    this.counters.set(base, k + 1);
    this.taken.add(name);
    return name;
  }

  typeOf = (a: Arg): ValueType | null | undefined => {
    if (!isRef(a)) return undefined;
    if (this.newTypes.has(a.name)) return this.newTypes.get(a.name);
    return this.ix.types.get(a.name);
  };

  private producer = (name: string): Node | undefined => this.newNodes.get(name) ?? this.ix.byName.get(name);

  /**
   * A node made by this pass from `from` (nodes of the input graph; the one it stands in for
   * last, whose `# File:` location it keeps). Its type is the annotated
   * `type` when given, else inferred through the registry. A name may reuse one of `from`'s names
   * (slice-hoist keeps `slice_1` and `all_reduce_1`, as the hoisted vLLM graph names them).
   */
  make(
    name: string,
    op: string,
    args: Arg[],
    kwargs: Record<string, Arg>,
    from: string[],
    type?: ValueType | null,
  ): Node {
    const n: Node = { name, op, args, kwargs, type: null, meta: { madeBy: { pass: this.pass, from } } };
    // Keep the source location of the node it stands in for (listed last in `from`).
    for (let i = from.length - 1; i >= 0; i--) {
      const file = this.ix.byName.get(from[i]!)?.meta.file;
      if (file !== undefined) {
        n.meta.file = file;
        break;
      }
    }
    n.type = type !== undefined ? type : inferType(n, this.typeOf, this.producer);
    this.newTypes.set(name, n.type);
    this.newNodes.set(name, n);
    this.taken.add(name);
    return n;
  }

  /**
   * `getitem(tuple, index)` standing in for `value`: typed as `value` was, and every use of `value`
   * reads it instead (a fused op's result replacing the value it computes).
   */
  takeResult(tuple: string, index: number, value: string, from: string[]): Node {
    const g = this.make(
      this.fresh('getitem'),
      'getitem',
      [ref(tuple), index],
      {},
      from,
      this.typeOf(ref(value)),
    );
    this.replaceUses(value, ref(g.name));
    return g;
  }

  /** Places new nodes just before `anchor` (a node of the input graph, possibly one being removed). */
  insertBefore(anchor: string, ...nodes: Node[]) {
    let l = this.before.get(anchor);
    if (!l) this.before.set(anchor, (l = []));
    l.push(...nodes);
  }

  remove(...names: string[]) {
    for (const n of names) this.removed.add(n);
  }

  /** Every use of `name` in the input graph's remaining nodes and outputs reads `by` instead. */
  replaceUses(name: string, by: Arg) {
    this.subst.set(name, by);
  }

  claim(...names: string[]): boolean {
    if (names.some((n) => this.claimed.has(n))) return false;
    for (const n of names) this.claimed.add(n);
    return true;
  }

  get changed(): boolean {
    return this.removed.size > 0 || this.before.size > 0 || this.subst.size > 0;
  }

  /**
   * `a` with substitutions applied. In a new node (`inNew`), a name that is itself a new node's
   * refers to that node, not to the input-graph node it replaced under the same name.
   */
  private rewrite(a: Arg, inNew = false): Arg {
    return mapArg(a, (leaf) => {
      if (!isRef(leaf) || (inNew && this.newNodes.has(leaf.name))) return leaf;
      let r: Arg = leaf;
      // Chains (a → b → c) resolve to the last; the depth bound guards against a cycle.
      for (let depth = 0; isRef(r) && this.subst.has(r.name) && depth < 64; depth++)
        r = this.subst.get(r.name)!;
      return r;
    });
  }

  commit(): Graph {
    const g = this.ix.graph;
    if (!this.changed) return { ...g };
    const nodes: Node[] = [];
    let touched = false;
    const touches = (r: string) => {
      if (this.subst.has(r)) touched = true;
    };
    const rewritten = (n: Node, inNew: boolean): Node => {
      // Most nodes read nothing substituted: keep them as they are, allocating nothing.
      touched = false;
      forEachInput(n, touches);
      if (!touched) return n;
      const args = this.rewrite(n.args, inNew) as Arg[];
      let kwargs = n.kwargs;
      for (const k in n.kwargs) {
        const r = this.rewrite(n.kwargs[k]!, inNew);
        if (r !== n.kwargs[k]) {
          if (kwargs === n.kwargs) kwargs = { ...n.kwargs };
          kwargs[k] = r;
        }
      }
      return args !== n.args || kwargs !== n.kwargs ? { ...n, args, kwargs } : n;
    };
    for (const n of g.nodes) {
      // A new node may read a value another match replaced (the residual stream of a fused norm).
      const extra = this.before.get(n.name);
      if (extra) for (const x of extra) nodes.push(rewritten(x, true));
      if (this.removed.has(n.name)) continue;
      nodes.push(rewritten(n, false));
    }
    const outputs = g.outputs ? (this.rewrite(g.outputs) as Arg[]) : null;
    return { ...g, nodes: topologicalOrder(g, nodes), outputs };
  }
}

/**
 * The nodes in an order where each is defined before it is read, keeping the given order wherever
 * it already is one (a rewrite that rewires a value to a later-placed node moves that node up).
 */
export function topologicalOrder(g: Graph, nodes: Node[]): Node[] {
  const defined = new Set<string>();
  for (const i of g.inputs) defined.add(i.name);
  const names = new Set<string>();
  for (const n of nodes) names.add(n.name);
  let early = false;
  const check = (r: string) => {
    if (!defined.has(r) && names.has(r)) early = true;
  };
  for (const n of nodes) {
    forEachInput(n, check);
    if (early) break;
    defined.add(n.name);
  }
  if (!early) return nodes;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const out: Node[] = [];
  const state = new Map<string, 1 | 2>();
  const visit = (n: Node) => {
    const s = state.get(n.name);
    if (s === 2) return;
    if (s === 1) throw new Error(`rewrite made a cycle through node '${n.name}' (${n.op})`);
    state.set(n.name, 1);
    for (const r of nodeInputs(n)) {
      const d = byName.get(r);
      if (d) visit(d);
    }
    state.set(n.name, 2);
    out.push(n);
  };
  for (const n of nodes) visit(n);
  return out;
}
