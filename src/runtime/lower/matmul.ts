// GEMMs: mm, addmm (bias), and async TP's fused collective matmuls, which run as their matmul and
// their collective — the same values and the same order of every sum as mm → reduce_scatter and
// all_gather → mm; chunking and overlap are a schedule, not a different sum.

import type { Arg } from '../../graph/ir.ts';
import type { View } from '../../graph/opTable.ts';
import type { PlanBuilder } from './builder.ts';
import { collectiveGroup, groupArg, tokenDimCollective } from './collectives.ts';
import { broadcastShape, numelOf } from './layout.ts';
import { scaledMm, scaledMmDtype } from './quant.ts';
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
  // ROCm's unquantized linear (vllm/model_executor/layers/utils.py): x · weightᵀ + bias, the GEMM
  // reading the row-major [N, K] weight transposed as it reads t(W).
  'vllm.rocm_unquantized_gemm.default': {
    roles: { weight: 'weight', bias: 'bias' },
    lower: (b, c) => {
      const a = c.tensor(0, 'x');
      const w = c.tensor(1, 'weight', { role: 'weight' });
      if (a.shape.length !== 2 || w.shape.length !== 2 || a.shape[1] !== w.shape[1])
        c.fail(`x [${a.shape}] · weight [${w.shape}]ᵀ`);
      const [N, K] = w.shape as [number, number];
      const wt: View = { ...w, shape: [K, N], strides: [w.strides[1]!, w.strides[0]!] };
      const bias = c.arg(2) === null ? null : c.tensor(2, 'bias', { role: 'bias', shape: [N] });
      const out = b.newStorage(c.node.name, a.dtype, [a.shape[0]!, N]);
      b.push(c.node, { kernel: 'gemm', a, b: wt, bias, alpha: 1, beta: bias ? 1 : 0, out: out.storage });
      return T(out);
    },
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
  // The FP8 forms: _scaled_mm's steps (quant.ts) in out_dtype, then the collective, as torch's
  // fallback computes them (the scaled product rounded per rank before the sum over ranks).
  'symm_mem.fused_scaled_matmul_reduce_scatter.default': {
    roles: { B: 'weight', A_scale: 'norm-weight', B_scale: 'norm-weight', bias: 'bias' },
    lower: (b, c) => {
      const n = c.node;
      const a = c.tensor(0, 'A');
      if (c.arg(4) !== 'sum') c.fail(`reduce_op ${JSON.stringify(c.arg(4))}: only 'sum' is supported`);
      if (c.arg(10) !== null) c.fail('result_scale (an FP8 output scale) has no kernel');
      const { group, size } = collectiveGroup(b, n, groupArg(c));
      tokenDimCollective(n, c.arg(6), size, a.shape[0], size);
      const bias = c.arg(9) === null ? null : c.tensor(9, 'bias', { role: 'bias' });
      const mm = scaledMm(
        b,
        c,
        a,
        c.tensor(1, 'B', { role: 'weight' }),
        c.tensor(2, 'A_scale'),
        c.tensor(3, 'B_scale'),
        bias,
        scaledMmDtype(b, c.arg(11)),
        'mm',
      );
      const out = b.newStorage(n.name, mm.dtype, [mm.shape[0] / size, mm.shape[1]]);
      b.push(n, { kernel: 'reduce_scatter', x: mm, group, out: out.storage });
      return T(out);
    },
  },
  'symm_mem.fused_all_gather_scaled_matmul.default': {
    roles: { Bs: 'weight', A_scale: 'norm-weight', B_scales: 'norm-weight', biases: 'bias' },
    lower: (b, c) => {
      const n = c.node;
      const x = b.contiguous(c.tensor(0, 'A'), n);
      const list = (i: number, what: string): Arg[] => {
        const v = c.arg(i);
        return Array.isArray(v) ? v : c.fail(`${what} must be a list`);
      };
      const bs = list(1, 'Bs'),
        scales = list(3, 'B_scales'),
        biases = list(6, 'biases'),
        resultScales = list(7, 'result_scales'),
        dtypes = list(8, 'out_dtypes');
      if (bs.length === 0 || scales.length !== bs.length)
        c.fail('Bs and B_scales must be lists of one scale per weight');
      if (resultScales.some((r) => r !== null)) c.fail('result_scales (FP8 output scales) have no kernel');
      const { group, size } = collectiveGroup(b, n, groupArg(c));
      tokenDimCollective(n, c.arg(4), size, x.shape[0] * size, size);
      const gather = (v: View, name: string) => {
        const out = b.newStorage(`${n.name}.${name}`, v.dtype, [v.shape[0]! * size, ...v.shape.slice(1)]);
        b.push(n, { kernel: 'all_gather', x: v, group, out: out.storage });
        return out;
      };
      const ag = gather(x, 'gathered');
      // A per-row scale belongs to its rows: gathered with them.
      const aScale = c.tensor(2, 'A_scale');
      const sa = numelOf(aScale.shape) === 1 ? aScale : gather(b.contiguous(aScale, n), 'A_scale');
      const mms: Value[] = bs.map((wa, i) => {
        const w = b.tensor(wa, n, `Bs[${i}]`, { role: 'weight' });
        const sb = b.tensor(scales[i]!, n, `B_scales[${i}]`);
        const bias =
          (biases[i] ?? null) === null ? null : b.tensor(biases[i]!, n, `biases[${i}]`, { role: 'bias' });
        return T(scaledMm(b, c, ag, w, sa, sb, bias, scaledMmDtype(b, dtypes[i] ?? null), `mm${i}`));
      });
      return { t: 'tuple', items: [T(ag), { t: 'tuple', items: mms }] };
    },
  },
} satisfies Partial<Record<LoweredOp, Lowering>>;
