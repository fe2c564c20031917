// Collectives: all_reduce (vLLM's and c10d's, sums only), and sequence parallelism's token-dim
// reduce_scatter / all_gather over the run's ranks. c10d's async gather and scatter have no
// kernel: vLLM's graphs use vllm.all_gather / vllm.reduce_scatter, which run.

import type { Arg, Node } from '../../graph/ir.ts';
import { numberOf } from '../../graph/ir.ts';
import { RunError } from '../runError.ts';
import type { PlanBuilder } from './builder.ts';
import { noKernel, tensorValue as T, type LoweredOp, type Lowering } from './lowering.ts';
import { identity } from './views.ts';

/** A reduce-scatter / all-gather along tokens over this run's ranks, of a token count they split evenly. */
export function tokenDimCollective(
  b: PlanBuilder,
  n: Node,
  dim: Arg,
  worldSize: Arg,
  tokenRows: number,
): void {
  const where = { node: n.name, op: n.op };
  const ranks = b.ranks;
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
  const out = b.newStorage(c.node.name, x.dtype, x.shape);
  b.push(c.node, { kernel: 'all_reduce', x, out: out.storage });
  return T(out);
};

/** Rows split over the ranks (reduce_scatter) or gathered from them (all_gather), along dim 0. */
const tokenDim = (kernel: 'reduce_scatter' | 'all_gather'): Lowering => ({
  lower: (b, c) => {
    const x = b.contiguous(c.tensor(0, 'tensor'), c.node);
    const rows = kernel === 'reduce_scatter' ? x.shape[0] / b.ranks : x.shape[0] * b.ranks;
    tokenDimCollective(b, c.node, c.arg(1), c.arg(2), kernel === 'reduce_scatter' ? x.shape[0] : rows);
    const out = b.newStorage(c.node.name, x.dtype, [rows, ...x.shape.slice(1)]);
    b.push(c.node, { kernel, x, out: out.storage });
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
