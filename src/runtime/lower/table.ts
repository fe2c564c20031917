// The lowering table: every op the planner lowers, one entry each, gathered from the family
// modules. It is a Record over LoweredOp (the registry's ops and the spellings planned beyond
// it), so registering an op without saying how it lowers is a type error naming the op.

import type { Arg, Node } from '../../graph/ir.ts';
import { lookupOp } from '../../graph/ops.ts';
import { elementwiseOp } from '../../graph/opTable.ts';
import type { PlanBuilder } from './builder.ts';
import { ATTENTION_LOWERINGS } from './attention.ts';
import { COLLECTIVE_LOWERINGS } from './collectives.ts';
import { ELEMENTWISE_LOWERINGS, elementwiseRoles, lowerElementwise } from './elementwise.ts';
import { FUSED_QUANT_LOWERINGS } from './fusedQuant.ts';
import { HOST_LOWERINGS } from './host.ts';
import { KV_CACHE_LOWERINGS } from './kvCache.ts';
import {
  isLoweredOp,
  noKernel,
  OpCall,
  type Lowered,
  type LoweredOp,
  type Lowering,
  type RoleDecl,
} from './lowering.ts';
import { MATMUL_LOWERINGS } from './matmul.ts';
import { MEMORY_LOWERINGS } from './memory.ts';
import { MOE_LOWERINGS } from './moe.ts';
import { NORM_LOWERINGS } from './norms.ts';
import { QUANT_LOWERINGS } from './quant.ts';
import { REDUCTION_LOWERINGS } from './reductions.ts';
import { VIEW_LOWERINGS } from './views.ts';

/** The node loop takes these apart itself (nodes.ts); as the op inside auto_functionalized they are meaningless. */
const CALL_FORM = noKernel('a form of call, not an op: the node loop reads it');

export const FAMILIES = {
  views: VIEW_LOWERINGS,
  elementwise: ELEMENTWISE_LOWERINGS,
  reductions: REDUCTION_LOWERINGS,
  matmul: MATMUL_LOWERINGS,
  norms: NORM_LOWERINGS,
  collectives: COLLECTIVE_LOWERINGS,
  moe: MOE_LOWERINGS,
  attention: ATTENTION_LOWERINGS,
  kvCache: KV_CACHE_LOWERINGS,
  quant: QUANT_LOWERINGS,
  fusedQuant: FUSED_QUANT_LOWERINGS,
  memory: MEMORY_LOWERINGS,
  host: HOST_LOWERINGS,
  forms: {
    getitem: CALL_FORM,
    'higher_order.auto_functionalized': CALL_FORM,
    'higher_order.auto_functionalized_v2': CALL_FORM,
  },
} satisfies Record<string, Partial<Record<LoweredOp, Lowering>>>;

export const LOWERINGS: Record<LoweredOp, Lowering> = {
  ...FAMILIES.views,
  ...FAMILIES.elementwise,
  ...FAMILIES.reductions,
  ...FAMILIES.matmul,
  ...FAMILIES.norms,
  ...FAMILIES.collectives,
  ...FAMILIES.moe,
  ...FAMILIES.attention,
  ...FAMILIES.kvCache,
  ...FAMILIES.quant,
  ...FAMILIES.fusedQuant,
  ...FAMILIES.memory,
  ...FAMILIES.host,
  ...FAMILIES.forms,
};

/** Lower one call of `op` on node `n`, its arguments read by `get`; returns the tuple auto_functionalized would. */
export function lowerCall(
  b: PlanBuilder,
  n: Node,
  op: string,
  get: (i: number, name: string) => Arg | undefined,
): Lowered {
  const c = new OpCall(b, n, op, get);
  const ew = elementwiseOp(op);
  if (ew) return lowerElementwise(b, c, ew);
  return isLoweredOp(op) ? LOWERINGS[op].lower(b, c) : 'unsupported';
}

/** The argument roles an op declares (roles.ts reads them); elementwise ops share one rule. */
export function rolesOf(op: string): RoleDecl | undefined {
  if (elementwiseOp(op)) {
    const operands = lookupOp(op)?.args.map((a) => a.name) ?? [];
    return (c) => elementwiseRoles(op, operands, c);
  }
  return isLoweredOp(op) ? LOWERINGS[op].roles : undefined;
}
