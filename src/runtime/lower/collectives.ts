// Collectives: all_reduce (vLLM's and c10d's, sums only), and sequence parallelism's token-dim
// reduce_scatter / all_gather, each over the process group it names (rankMesh.ts resolves the
// name to ranks). c10d's async gather and scatter have no kernel: vLLM's graphs use
// vllm.all_gather / vllm.reduce_scatter, which run.

import type { Arg, Node } from '../../graph/ir.ts';
import { numberOf } from '../../graph/ir.ts';
import { DEFAULT_TP_GROUP } from '../../graph/passes/options.ts';
import { resolveGroup } from '../rankMesh.ts';
import { RunError } from '../runError.ts';
import type { PlanBuilder } from './builder.ts';
import {
  argIndex,
  noKernel,
  tensorValue as T,
  type LoweredOp,
  type Lowering,
  type OpCall,
} from './lowering.ts';
import { identity } from './views.ts';

/**
 * The TP group's name as vLLM's graphs carry it: FlashInfer's fused all-reduce + norm names no
 * group, its workspace spans the TP group (vllm/compilation/passes/fusion/allreduce_rms_fusion.py).
 */
export const TP_GROUP = DEFAULT_TP_GROUP;

/** c10d ops that state a group's size beside its name (`group_size`), by the positions of both. */
const C10D_SIZED = {
  '_c10d_functional.all_gather_into_tensor.default': { size: 1, name: 2 },
  '_c10d_functional.reduce_scatter_tensor.default': { size: 2, name: 3 },
} as const;

/** The size some c10d collective of the graph states for the group `name` (c10d's names say nothing of it). */
function statedGroupSize(b: PlanBuilder, name: string): number | undefined {
  for (const n of b.graph.nodes) {
    const at = C10D_SIZED[n.op as keyof typeof C10D_SIZED];
    if (!at) continue;
    const named = n.args[at.name] ?? n.kwargs['group_name'];
    const size = numberOf(n.args[at.size] ?? n.kwargs['group_size']);
    if (named === name && size !== undefined) return size;
  }
  return undefined;
}

/**
 * The process group of collective node `n` (`name`: the group argument as the graph gives it):
 * its name for the step, and its size. A name the run cannot resolve to ranks is recorded in
 * `b.unknownGroups` (the comparison's verdict then says it cannot tell); it runs over the world.
 */
export function collectiveGroup(b: PlanBuilder, n: Node, name: Arg): { group: string; size: number } {
  const group = typeof name === 'string' ? name : TP_GROUP;
  const resolved = resolveGroup(b.mesh, group, statedGroupSize(b, group));
  if (resolved.unknown) b.unknownGroups.push({ node: n.name, group, why: resolved.unknown });
  return { group, size: resolved.groups[0].length };
}

/** The group argument of a call of a collective op, by its schema name. */
export const groupArg = (c: OpCall): Arg => c.arg(argIndex(c.op, 'group_name'));

/** A reduce-scatter / all-gather along tokens over a group of `ranks`, of a token count they split evenly. */
export function tokenDimCollective(
  n: Node,
  dim: Arg,
  worldSize: Arg,
  tokenRows: number,
  ranks: number,
): void {
  const where = { node: n.name, op: n.op };
  if ((numberOf(dim) ?? 0) !== 0)
    throw new RunError(
      'input',
      `node ${n.name} (${n.op}): dim ${JSON.stringify(dim)} is not the token dim 0; only token-dim collectives run`,
      where,
    );
  const ws = numberOf(worldSize);
  if (ws !== undefined && ws !== ranks)
    throw new RunError(
      'input',
      `node ${n.name} (${n.op}): the graph splits over world_size ${ws} but the run has ${ranks} rank(s); use --ranks ${ws}`,
      where,
    );
  if (tokenRows % ranks !== 0)
    throw new RunError(
      'input',
      `node ${n.name} (${n.op}): ${tokenRows} tokens do not split over ${ranks} ranks; use a token count divisible by ${ranks} (--tokens ${Math.ceil(tokenRows / ranks) * ranks})`,
      where,
    );
}

const allReduce: Lowering['lower'] = (b, c) => {
  const x = b.contiguous(c.tensor(0, 'tensor'), c.node);
  const { group } = collectiveGroup(b, c.node, groupArg(c));
  const out = b.newStorage(c.node.name, x.dtype, x.shape);
  b.push(c.node, { kernel: 'all_reduce', x, group, out: out.storage });
  return T(out);
};

/** Rows split over the group's ranks (reduce_scatter) or gathered from them (all_gather), along dim 0. */
const tokenDim = (kernel: 'reduce_scatter' | 'all_gather'): Lowering => ({
  lower: (b, c) => {
    const x = b.contiguous(c.tensor(0, 'tensor'), c.node);
    const { group, size } = collectiveGroup(b, c.node, groupArg(c));
    const rows = kernel === 'reduce_scatter' ? x.shape[0] / size : x.shape[0] * size;
    tokenDimCollective(c.node, c.arg(1), c.arg(2), kernel === 'reduce_scatter' ? x.shape[0] : rows, size);
    const out = b.newStorage(c.node.name, x.dtype, [rows, ...x.shape.slice(1)]);
    b.push(c.node, { kernel, x, group, out: out.storage });
    return T(out);
  },
});

export const COLLECTIVE_LOWERINGS = {
  'vllm.all_reduce.default': { lower: allReduce },
  '_c10d_functional.all_reduce.default': {
    // Only sums have a kernel; another reduce_op (max, avg) is fed like any op without one.
    lower: (b, c) => (typeof c.arg(1) === 'string' && c.arg(1) !== 'sum' ? 'unsupported' : allReduce(b, c)),
  },
  '_c10d_functional.wait_tensor.default': identity('tensor'),
  'vllm.reduce_scatter.default': tokenDim('reduce_scatter'),
  'vllm.all_gather.default': tokenDim('all_gather'),
  '_c10d_functional.all_gather_into_tensor.default': noKernel(
    'async collective: vLLM graphs use vllm.all_gather',
  ),
  '_c10d_functional.reduce_scatter_tensor.default': noKernel(
    'async collective: vLLM graphs use vllm.reduce_scatter',
  ),
} satisfies Partial<Record<LoweredOp, Lowering>>;
