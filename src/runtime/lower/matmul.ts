// GEMMs: mm, addmm (bias), and async TP's fused collective matmuls, which run as their matmul and
// their collective — the same values and the same order of every sum as mm → reduce_scatter and
// all_gather → mm; chunking and overlap are a schedule, not a different sum.

import type { Arg } from '../../graph/ir.ts';
import type { PlanBuilder } from './builder.ts';
import { collectiveGroup, groupArg, tokenDimCollective } from './collectives.ts';
import { broadcastShape } from './layout.ts';
import {
  tensorValue as T,
  type Lowered,
  type LoweredOp,
  type Lowering,
  type OpCall,
  type Value,
} from './lowering.ts';

/** mm(mat1, mat2), or addmm(self, mat1, mat2, beta, alpha) when `biased`. */
function gemm(b: PlanBuilder, c: OpCall, biased: boolean): Lowered {
  const off = biased ? 1 : 0;
  const a = c.tensor(off, 'mat1');
  const w = c.tensor(off + 1, 'mat2', { role: 'weight' });
  if (a.shape.length !== 2 || w.shape.length !== 2 || a.shape[1] !== w.shape[0])
    c.fail(`mm of [${a.shape}] and [${w.shape}]`);
  const bias = biased ? c.tensor(0, 'self', { role: 'bias', shape: [w.shape[1]] }) : null;
  if (bias && !broadcastShape([a.shape[0], w.shape[1]], bias.shape))
    c.fail(`bias [${bias.shape}] does not broadcast to [${a.shape[0]}, ${w.shape[1]}]`);
  const out = b.newStorage(c.node.name, a.dtype, [a.shape[0], w.shape[1]]);
  b.push(c.node, {
    kernel: 'gemm',
    a,
    b: w,
    bias,
    alpha: biased ? c.num(4, 1) : 1,
    beta: biased ? c.num(3, 1) : 0,
    out: out.storage,
  });
  return T(out);
}

export const MATMUL_LOWERINGS = {
  'aten.mm.default': { roles: { mat2: 'weight' }, lower: (b, c) => gemm(b, c, false) },
  'aten.addmm.default': {
    // The GEMM that computes an MoE's router logits holds the router's weight and bias (replicated).
    roles: (c) =>
      c.result === 'router-logits'
        ? { self: 'router-bias', mat2: 'router-weight' }
        : { self: 'bias', mat2: 'weight' },
    lower: (b, c) => gemm(b, c, true),
  },
  'symm_mem.fused_matmul_reduce_scatter.default': {
    roles: { B: 'weight' },
    lower: (b, c) => {
      const n = c.node;
      const a = c.tensor(0, 'A');
      const w = c.tensor(1, 'B', { role: 'weight' });
      if (a.shape.length !== 2 || w.shape.length !== 2 || a.shape[1] !== w.shape[0])
        c.fail(`mm of [${a.shape}] and [${w.shape}]`);
      const reduceOp = c.arg(2);
      if (reduceOp !== 'sum') c.fail(`reduce_op ${JSON.stringify(reduceOp)}: only 'sum' is supported`);
      const { group, size } = collectiveGroup(b, n, groupArg(c));
      tokenDimCollective(n, c.arg(3), size, a.shape[0], size);
      const mm = b.newStorage(`${n.name}.mm`, a.dtype, [a.shape[0], w.shape[1]]);
      b.push(n, { kernel: 'gemm', a, b: w, bias: null, alpha: 1, beta: 0, out: mm.storage });
      const out = b.newStorage(n.name, a.dtype, [a.shape[0] / size, w.shape[1]]);
      b.push(n, { kernel: 'reduce_scatter', x: mm, group, out: out.storage });
      return T(out);
    },
  },
  'symm_mem.fused_all_gather_matmul.default': {
    roles: { Bs: 'weight' },
    lower: (b, c) => {
      const n = c.node;
      const x = b.contiguous(c.tensor(0, 'A_shard'), n);
      const bs = c.arg(1);
      if (!Array.isArray(bs) || bs.length === 0) c.fail('Bs must be a list of weights');
      const { group, size } = collectiveGroup(b, n, groupArg(c));
      tokenDimCollective(n, c.arg(2), size, x.shape[0] * size, size);
      const ag = b.newStorage(`${n.name}.gathered`, x.dtype, [x.shape[0] * size, x.shape[1]]);
      b.push(n, { kernel: 'all_gather', x, group, out: ag.storage });
      const mms: Value[] = (bs as Arg[]).map((wa, i) => {
        const w = b.tensor(wa, n, `Bs[${i}]`, { role: 'weight' });
        if (w.shape.length !== 2 || w.shape[0] !== x.shape[1]) c.fail(`mm of [${ag.shape}] and [${w.shape}]`);
        const out = b.newStorage(`${n.name}.mm${i}`, x.dtype, [ag.shape[0], w.shape[1]]);
        b.push(n, { kernel: 'gemm', a: ag, b: w, bias: null, alpha: 1, beta: 0, out: out.storage });
        return T(out);
      });
      return { t: 'tuple', items: [T(ag), { t: 'tuple', items: mms }] };
    },
  },
} satisfies Partial<Record<LoweredOp, Lowering>>;
