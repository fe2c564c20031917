// One way to read a call: which op a node runs and where its arguments are, whatever form the
// call takes in the graph. Every layer that asks "what does this node do" (matcher, cost model,
// diff, planner, UI) asks here, so a new form (auto_functionalized_v2 was one) is taught once.
//
// The forms, as torch.compile writes them:
// - plain:              `op(a, b, k = v)` — positional arguments, then keywords;
// - functionalized:     `auto_functionalized(op, a = …, b = …)` — every argument a keyword;
//   results [0] the op's return, [1..] its mutated arguments in schema order;
// - functionalized_v2:  `auto_functionalized_v2(op, …, _x_base_index = i, _all_bases = […])` — a
//   mutated argument is a view of one of `_all_bases`; results [0] the return, [1..] every base.
// An in-place call (after decompose_auto_functionalized) is the plain form of an op whose schema
// mutates arguments: `isInPlace` tells it apart.
import type { Arg, Node } from './ir.ts';
import { lookupOp } from './ops.ts';

// Which values a call reads: the IR's walkers (ir.ts holds them, as everything in src/graph imports it).
export { forEachInput, forEachRef } from './ir.ts';

export const AUTO_FUNCTIONALIZED = 'higher_order.auto_functionalized';
export const AUTO_FUNCTIONALIZED_V2 = 'higher_order.auto_functionalized_v2';

export type CallForm = 'plain' | 'functionalized' | 'functionalized_v2';

export interface Call {
  readonly node: Node;
  readonly form: CallForm;
  /**
   * The op the node runs, without a `torch.ops.` prefix: the wrapped op of auto_functionalized
   * (v1 or v2), else the node's own op. An auto_functionalized node whose first argument is not
   * an op runs the op `higher_order.auto_functionalized` itself (nothing a backend can lower).
   */
  readonly op: string;
  /** The argument at schema position `index` named `name` (see `callArg`). */
  arg(index: number, name: string): Arg | undefined;
}

/** `torch.ops.aten.mm.default` → `aten.mm.default`. */
export function normalizeTarget(t: string): string {
  return t.startsWith('torch.ops.') ? t.slice('torch.ops.'.length) : t;
}

function wrappedTarget(n: Node): string | undefined {
  const t = n.args[0];
  return t && typeof t === 'object' && !Array.isArray(t) && t.kind === 'op' ? t.target : undefined;
}

export function callForm(n: Node): CallForm {
  return callFormOf(n.op);
}

/** The form of a call to `op` (a node's own op, as a trace event names it). */
export function callFormOf(op: string): CallForm {
  return op === AUTO_FUNCTIONALIZED
    ? 'functionalized'
    : op === AUTO_FUNCTIONALIZED_V2
      ? 'functionalized_v2'
      : 'plain';
}

/** The op an auto_functionalized (v1 or v2) node runs, as written; undefined for other nodes. */
export function functionalizedTarget(n: Node): string | undefined {
  return callForm(n) === 'plain' ? undefined : wrappedTarget(n);
}

/** The op a node runs (normalized): what cost, colour, pairing and lowering key on. */
export function calledOp(n: Node): string {
  const t = functionalizedTarget(n);
  return normalizeTarget(t ?? n.op);
}

/**
 * An argument of the op a node runs, by schema position and name. Plain calls: positional when
 * given so, else the keyword. auto_functionalized passes every argument as a keyword. v2 passes a
 * mutated argument as `_{name}_base_index` into `_all_bases`, plus `_{name}_size/_stride/…` or
 * `_{name}_slice_*` when it is a view of that base: a view is not the base, so it reads as undefined
 * (the planner builds those views itself from `v2View`).
 */
export function callArg(n: Node, index: number, name: string): Arg | undefined {
  switch (callForm(n)) {
    case 'plain':
      return index >= 0 && index < n.args.length ? n.args[index] : n.kwargs[name];
    case 'functionalized':
      return n.kwargs[name];
    case 'functionalized_v2':
      return functionalizedArg(n, name);
  }
}

export function readCall(n: Node): Call {
  return { node: n, form: callForm(n), op: calledOp(n), arg: (i, name) => callArg(n, i, name) };
}

/** A plain call of an op whose schema writes into its arguments (`Tensor(a!)`). */
export function isInPlace(n: Node): boolean {
  return callForm(n) === 'plain' && (lookupOp(normalizeTarget(n.op))?.args.some((a) => a.mutates) ?? false);
}

/**
 * An argument of the op a functionalized node runs, by schema name (see `callArg`); for plain
 * calls the keyword only. Kept for the matcher, whose patterns name arguments.
 */
export function functionalizedArg(n: Node, name: string): Arg | undefined {
  if (n.op !== AUTO_FUNCTIONALIZED_V2 || name in n.kwargs) return n.kwargs[name];
  const v = functionalizedView(n, name);
  return v === undefined ? undefined : v.view === 'base' ? v.base : undefined;
}

/**
 * How auto_functionalized_v2 passes its mutated argument `name`: one of `_all_bases` (`base`, null
 * for an omitted optional argument), whole or through a view torch regenerates from it — a slice
 * along one dim (`_x_slice_dim/_start/_end`; torch writes it only when the view is narrower) or
 * an as_strided view (`_x_size/_stride/_storage_offset`). Undefined where the node passes no such
 * argument.
 */
export type FunctionalizedView =
  | { view: 'base'; base: Arg }
  | { view: 'slice'; base: Arg; dim: Arg; start: Arg; end: Arg }
  | { view: 'strided'; base: Arg; size: Arg; stride: Arg; storageOffset: Arg };

export function functionalizedView(n: Node, name: string): FunctionalizedView | undefined {
  if (n.op !== AUTO_FUNCTIONALIZED_V2) return undefined;
  const k = n.kwargs;
  const index = k[`_${name}_base_index`];
  if (index === undefined) return undefined;
  if (index === null) return { view: 'base', base: null };
  const bases = k['_all_bases'];
  if (typeof index !== 'number' || !Array.isArray(bases) || bases[index] === undefined) return undefined;
  const base = bases[index];
  const at = (key: string): Arg => k[`_${name}_${key}`] ?? null;
  if (`_${name}_slice_dim` in k)
    return { view: 'slice', base, dim: at('slice_dim'), start: at('slice_start'), end: at('slice_end') };
  if (`_${name}_size` in k)
    return {
      view: 'strided',
      base,
      size: at('size'),
      stride: at('stride'),
      storageOffset: at('storage_offset'),
    };
  return { view: 'base', base };
}

/**
 * The getitem index under which a functionalized node returns the new value of its mutated
 * argument `name`: v1 returns the mutated arguments in schema order from [1]; v2 returns every
 * base from [1] (`[1 + _{name}_base_index]`). Undefined when the argument is not returned whole.
 */
export function mutatedResultIndex(n: Node, name: string): number | undefined {
  const target = functionalizedTarget(n);
  if (target === undefined) return undefined;
  if (n.op === AUTO_FUNCTIONALIZED) {
    const i = (lookupOp(normalizeTarget(target))?.args.filter((a) => a.mutates) ?? []).findIndex(
      (a) => a.name === name,
    );
    return i < 0 ? undefined : i + 1;
  }
  const base = n.kwargs[`_${name}_base_index`];
  return typeof base === 'number' && functionalizedArg(n, name) !== undefined ? base + 1 : undefined;
}
