import type { Node } from '../../graph/ir.ts';
import { opKind, type OpKind } from '../../graph/ops.ts';

/** The op a node really runs: auto_functionalized wraps it as its first argument. */
export function innerOp(n: Node): string {
  const first = n.args[0];
  if (
    n.op === 'higher_order.auto_functionalized' &&
    first &&
    typeof first === 'object' &&
    !Array.isArray(first) &&
    first.kind === 'op'
  ) {
    return first.target;
  }
  return n.op;
}

export function innerKind(n: Node): OpKind {
  return opKind(innerOp(n));
}
