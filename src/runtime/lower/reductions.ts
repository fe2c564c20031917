// Reductions as Inductor's decompositions spell them (vLLM's native RMSNorm: mean of squares over
// the last dim; native QuantFP8: max of |x| over the tensor or per token): one reduce_rows step
// over rows of the last dim. Another dim has no kernel.

import type { Arg } from '../../graph/ir.ts';
import type { View } from '../../graph/opTable.ts';
import type { PlanBuilder } from './builder.ts';
import { numelOf } from './layout.ts';
import { NONE, tensorValue as T, type LoweredOp, type Lowering, type OpCall } from './lowering.ts';

/** Whether `dims` names only x's last dim ('all': every dim, as an empty list or None does). */
function reducedDims(c: OpCall, x: View, dims: Arg): 'last' | 'all' {
  const list = dims === null ? [] : Array.isArray(dims) ? dims : [dims];
  if (list.length === 0) return 'all';
  const rank = x.shape.length;
  if (list.length === 1 && typeof list[0] === 'number' && (list[0] + rank) % rank === rank - 1) return 'last';
  return c.fail(
    `reduces over dims ${JSON.stringify(dims)} of a ${rank}-d tensor: only the last dim has a kernel`,
  );
}

/** x reduced over its last dim (or, `all`, over every element as one row), dims kept as 1s when keepdim. */
function reduce(
  b: PlanBuilder,
  c: OpCall,
  x: View,
  over: 'last' | 'all',
  keepdim: boolean,
  mean: boolean,
): View {
  const n = c.node;
  const numel = numelOf(x.shape);
  const rows: View =
    over === 'all' ? { ...b.contiguous(x, n), shape: [1, numel], strides: [numel, 1] } : b.rowsOrCopy(x, n);
  const kept = over === 'all' ? x.shape.map(() => 1) : [...x.shape.slice(0, -1), 1];
  const shape = keepdim ? kept : kept.slice(0, over === 'all' ? 0 : -1);
  const out = b.newStorage(n.name, b.resultDtype(n, [x], x.dtype), shape);
  b.push(n, { kernel: 'reduce_rows', x: rows, mean, out: out.storage });
  return out;
}

export const REDUCTION_LOWERINGS = {
  'aten.mean.dim': {
    lower: (b, c) => {
      const x = c.tensor(0, 'self');
      if (c.arg(3) !== null) c.fail('a mean with its own dtype has no kernel');
      return T(reduce(b, c, x, reducedDims(c, x, c.arg(1)), c.arg(2) === true, true));
    },
  },
  'aten.amax.default': {
    lower: (b, c) => {
      const x = c.tensor(0, 'self');
      return T(reduce(b, c, x, reducedDims(c, x, c.arg(1)), c.arg(2) === true, false));
    },
  },
  'aten.max.default': {
    lower: (b, c) => T(reduce(b, c, c.tensor(0, 'self'), 'all', false, false)),
  },
  // (values, indices): the indices have no kernel; a node that reads them is reported.
  'aten.max.dim': {
    lower: (b, c) => {
      const x = c.tensor(0, 'self');
      const values = reduce(b, c, x, reducedDims(c, x, c.arg(1)), c.arg(2) === true, false);
      return { t: 'tuple', items: [T(values), NONE] };
    },
  },
} satisfies Partial<Record<LoweredOp, Lowering>>;
