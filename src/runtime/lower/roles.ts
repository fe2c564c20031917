// Roles of graph inputs and a fragment's free names (weight, bias, norm weight, embedding, token
// ids…), from how the whole graph uses them: each op's lowering entry declares its arguments'
// roles; this pass applies them from the last node back, so a view hands its own role on to the
// tensor it views and a role may depend on where a node's result goes (an MoE's router logits)
// or where an argument comes from (async-tp's fused matmul).

import type { Arg, Graph, Node } from '../../graph/ir.ts';
import { isRef } from '../../graph/ir.ts';
import { calledOp, readCall } from '../../graph/call.ts';
import { argIndex, type ArgRole, type RoleContext } from './lowering.ts';
import { rolesOf } from './table.ts';

export function roleHints(g: Graph): Map<string, ArgRole> {
  const hints = new Map<string, ArgRole>();
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  /** The node that computes `a`, through getitem. */
  const producer = (a: Arg | undefined): Node | undefined => {
    let n = a && isRef(a) ? byName.get(a.name) : undefined;
    while (n?.op === 'getitem' && isRef(n.args[0])) n = byName.get(n.args[0].name);
    return n;
  };
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    const call = readCall(n);
    const decl = rolesOf(call.op);
    if (!decl) continue;
    const arg = (name: string) => {
      const at = argIndex(call.op, name);
      if (at < 0)
        throw new Error(`${call.op} declares a role for '${name}', which is not one of its arguments`);
      return call.arg(at, name);
    };
    const context: RoleContext = {
      result: hints.get(n.name),
      producer: (name) => {
        const p = producer(arg(name));
        return p && calledOp(p);
      },
    };
    const roles = typeof decl === 'function' ? decl(context) : decl;
    for (const [name, role] of Object.entries(roles)) {
      if (!role) continue;
      const a = arg(name);
      for (const r of Array.isArray(a) ? a : [a])
        if (r && isRef(r) && !hints.has(r.name)) hints.set(r.name, role);
    }
  }
  return hints;
}
