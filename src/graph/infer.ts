// Result types for nodes that passes create: the op's shape rule from the registry, and for
// tuple-valued nodes the PyTorch convention — `auto_functionalized(op)[0]` is the op's own
// return, `[1..]` the new values of its mutated arguments in schema order.

import type { Arg, Node, ValueType } from './ir.ts';
import { isRef } from './ir.ts';
import { lookupOp } from './ops.ts';
import { callForm, functionalizedTarget } from './call.ts';

export type TypeOf = (a: Arg) => ValueType | null | undefined;

/** Names of the mutated arguments of `op`, in schema order (what auto_functionalized returns from [1]). */
export function mutatedArgs(op: string): string[] | undefined {
  const def = lookupOp(op);
  return def?.args.filter((a) => a.mutates).map((a) => a.name);
}

/** The types of an auto_functionalized node's results, or undefined for other nodes. */
export function autoFunctionalizedResults(n: Node, typeOf: TypeOf): (ValueType | null)[] | undefined {
  // v2 returns its bases, typed by the getitems that read them.
  const target = callForm(n) === 'functionalized' ? functionalizedTarget(n) : undefined;
  if (target === undefined) return undefined;
  const mutated = mutatedArgs(target);
  if (!mutated) return undefined;
  const inner = lookupOp(target)!;
  // The wrapped op's own return: only ops that return a tensor shaped like an input have a rule.
  const own =
    inner.returns === 0
      ? null
      : (inner.infer?.(
          { ...n, op: target, args: inner.args.map((a) => n.kwargs[a.name] ?? null), kwargs: {} },
          typeOf,
        ) ?? null);
  return [
    own,
    ...mutated.map((m) => {
      const v = n.kwargs[m];
      return v === undefined || v === null ? null : (typeOf(v) ?? null);
    }),
  ];
}

/** The result type of `n` given the types of the values it reads; null where not derivable. */
export function inferType(
  n: Node,
  typeOf: TypeOf,
  producer: (name: string) => Node | undefined,
): ValueType | null {
  if (n.op === 'getitem') {
    const src = n.args[0],
      i = n.args[1];
    if (!src || !isRef(src) || typeof i !== 'number') return null;
    const p = producer(src.name);
    if (!p) return null;
    const results = autoFunctionalizedResults(p, typeOf);
    if (results) return results[i] ?? null;
    return null;
  }
  return lookupOp(n.op)?.infer?.(n, typeOf) ?? null;
}
