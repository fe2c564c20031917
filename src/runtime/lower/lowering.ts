// What a lowering is: one entry per op, after Inductor's `register_lowering` — how the op becomes
// kernel steps (a function over the plan builder and the call), and what its arguments are
// (weights, biases, token ids…) so a graph input they name is seeded as such. The entries live
// in one module per op family; table.ts gathers them into one Record over every lowered op.

import type { Arg, Node } from '../../graph/ir.ts';
import { numberOf } from '../../graph/ir.ts';
import { isFxOp, lookupOp, type FxOp, type OpDef } from '../../graph/ops.ts';
import type { InputRole, StorageDType, View } from '../../graph/opTable.ts';
import type { PlanBuilder } from './builder.ts';

/** What a node's lowering yields: a tensor view, auto_functionalized's tuple, nothing, or a SymInt. */
export type Value =
  | { t: 'tensor'; view: View }
  | { t: 'tuple'; items: (Value | null)[] }
  | { t: 'none' }
  | { t: 'sym'; value: number };

/** 'unsupported': no kernel computes it here; the node is fed from its annotated type, or reported. */
export type Lowered = Value | 'unsupported';

export const tensorValue = (view: View): Value => ({ t: 'tensor', view });
export const NONE: Value = { t: 'none' };

/** How a graph input or a fragment's free name is seeded, as its readers use it. */
export interface Hint {
  role: InputRole;
  range?: number;
  shape?: number[];
  dtype?: StorageDType;
}

/**
 * What an argument is to its op. 'router-logits' is seeded as nothing of its own: it tells the
 * GEMM that computes an MoE's router logits that its weight and bias are the router's.
 */
export type ArgRole = InputRole | 'router-logits';
/** Argument roles by schema name. */
export type Roles = Readonly<Partial<Record<string, ArgRole>>>;
/** What a role may depend on beyond the op. */
export interface RoleContext {
  /** The role the node's own result has, given by the nodes that read it (roles flow from the last node back). */
  readonly result: ArgRole | undefined;
  /** The op that computes an argument, seen through getitem. */
  producer(arg: string): string | undefined;
}
export type RoleDecl = Roles | ((c: RoleContext) => Roles);

export interface Lowering {
  /** The argument roles (see roles.ts); a new op's roles are part of its one entry. */
  readonly roles?: RoleDecl;
  /** Why there is no kernel, for an op that always lowers to 'unsupported'. */
  readonly unsupported?: string;
  readonly lower: (b: PlanBuilder, c: OpCall) => Lowered;
}

/** An op without a kernel: fed from its node's annotated type, or reported when it has none. */
export const noKernel = (reason: string): Lowering => ({ unsupported: reason, lower: () => 'unsupported' });

/** Spellings outside the op registry that the planner still lowers (aliases of registered ops, SymInt arithmetic), with their argument names. */
export const UNREGISTERED_LOWERED = {
  'aten.contiguous.default': ['self', 'memory_format'],
  'aten._unsafe_view.default': ['self', 'size'],
  'aten.split.Tensor': ['self', 'split_size', 'dim'],
  'aten.alias.default': ['self'],
  'aten.zeros.default': ['size'],
  'aten.new_zeros.default': ['self', 'size'],
  'operator.add': ['a', 'b'],
  'operator.sub': ['a', 'b'],
  'operator.mul': ['a', 'b'],
  'operator.floordiv': ['a', 'b'],
} as const satisfies Record<string, readonly string[]>;
type Unregistered = keyof typeof UNREGISTERED_LOWERED;

/** Every op the table must lower (elementwise ops lower through their op-table entry instead). */
export type LoweredOp = FxOp | Unregistered;
const isUnregistered = (op: string): op is Unregistered => Object.hasOwn(UNREGISTERED_LOWERED, op);
export const isLoweredOp = (op: string): op is LoweredOp => isFxOp(op) || isUnregistered(op);

/** The schema position of an op's argument, from the registry or the unregistered spellings' names; -1 if it has none. */
export function argIndex(op: string, name: string): number {
  const def = lookupOp(op);
  if (def) return def.args.findIndex((a) => a.name === name);
  return isUnregistered(op) ? (UNREGISTERED_LOWERED[op] as readonly string[]).indexOf(name) : -1;
}

/** One call of an op, as a lowering reads it: arguments by schema position, with their defaults. */
export class OpCall {
  readonly def: OpDef | undefined;
  constructor(
    private readonly b: PlanBuilder,
    readonly node: Node,
    readonly op: string,
    private readonly get: (i: number, name: string) => Arg | undefined,
  ) {
    this.def = lookupOp(op);
  }

  /** Argument i: as given, else its schema default, else null. */
  arg(i: number): Arg {
    const spec = this.def?.args[i];
    const name = spec?.name ?? (isUnregistered(this.op) ? UNREGISTERED_LOWERED[this.op][i] : undefined);
    const v = this.get(i, name ?? `#${i}`);
    return v === undefined ? (spec?.default ?? null) : v;
  }

  /** Argument i as a number, or `fallback`. */
  num(i: number, fallback: number): number {
    return numberOf(this.arg(i)) ?? fallback;
  }

  /** A size (a number mapped through the preset, a SymInt, a size expression), or `fallback`. */
  symInt(a: Arg, fallback: number): number {
    return this.b.symInt(this.node, a, fallback);
  }

  /** Argument i as a tensor view (`what` names it in errors; `hint` seeds it if it is a graph input). */
  tensor(i: number, what: string, hint?: Hint): View {
    return this.b.tensor(this.arg(i), this.node, what, hint);
  }

  fail(msg: string): never {
    return this.b.fail(this.node, msg);
  }
}
