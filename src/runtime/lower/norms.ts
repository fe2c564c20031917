// RMSNorms: vLLM's rms_norm, fused_add_rms_norm (residual add + norm), and FlashInfer's fused
// all-reduce + residual + RMSNorm (pattern 1; pattern 2 adds the static FP8 quant of the normed
// output). The two residual forms are one lowering over their kernel and argument positions.

import type { View } from '../../graph/opTable.ts';
import type { PlanBuilder } from './builder.ts';
import { TP_GROUP } from './collectives.ts';
import { tensorValue as T, type LoweredOp, type Lowering, type OpCall, type Value } from './lowering.ts';

/** The norm's weight γ (argument i), one per column of x. */
const normWeight = (c: OpCall, i: number, what: string, x: View): View =>
  c.tensor(i, what, { role: 'norm-weight', shape: [x.shape[x.shape.length - 1]] });

/** Where a residual norm's operands are, and the name of its normed output's storage. */
interface ResidualNormArgs {
  kernel: 'fused_add_rms_norm' | 'fused_allreduce_norm';
  residual: number;
  weight: [number, string];
  eps: number;
  out: string;
}

/** z = x + residual, then RMSNorm(z) · γ: the normed output and the new residual, each a new storage. */
function residualNorm(b: PlanBuilder, c: OpCall, x: View, a: ResidualNormArgs) {
  const n = c.node;
  const residual = b.rowsOrCopy(c.tensor(a.residual, 'residual', { role: 'activation', shape: x.shape }), n);
  const w = normWeight(c, a.weight[0], a.weight[1], x);
  if (residual.shape.join() !== x.shape.join())
    c.fail(`residual [${residual.shape}] and input [${x.shape}] differ`);
  const out = b.newStorage(`${n.name}.${a.out}`, x.dtype, x.shape);
  const res = b.newStorage(`${n.name}.residual`, x.dtype, x.shape);
  const step = { x, residual, w, eps: c.num(a.eps, 1e-6), out: out.storage, residualOut: res.storage };
  // FlashInfer's workspace is the TP group's: the fused op reduces over the TP ranks.
  if (a.kernel === 'fused_allreduce_norm') b.push(n, { kernel: a.kernel, ...step, group: TP_GROUP });
  else b.push(n, { kernel: a.kernel, ...step });
  return { residual, out, res };
}

/** A vLLM IR norm's weight (argument i), or ones where it is None; variance_size (argument v) must be None. */
function irWeight(b: PlanBuilder, c: OpCall, i: number, v: number, x: View): View {
  if (c.arg(v) !== null) c.fail('variance_size (a norm over the first columns only) has no kernel');
  if (c.arg(i) !== null) return normWeight(c, i, 'weight', x);
  const cols = [x.shape[x.shape.length - 1]];
  const zeros = b.seed(`${c.node.name}.zeros`, x.dtype, cols, { role: 'zeros' }, c.node);
  const ones = b.newStorage(`${c.node.name}.ones`, x.dtype, cols);
  b.push(c.node, { kernel: 'map', fn: 'adds', a: zeros, b: null, scalar: 1, out: ones.storage });
  return ones;
}

/** A fused add + RMSNorm called as (x, residual, weight, eps): _C.fused_add_rms_norm's and AITER's. */
function fusedAddRmsNorm(b: PlanBuilder, c: OpCall, input: string, out: string) {
  const x = b.rowsOrCopy(c.tensor(0, input), c.node);
  return residualNorm(b, c, x, {
    kernel: 'fused_add_rms_norm',
    residual: 1,
    weight: [2, 'weight'],
    eps: 3,
    out,
  });
}

/** rocm_aiter_triton_add_rmsnorm_pad(x, weight, variance_epsilon, residual, x_pad_to_multiple)'s norm operands. */
const AITER_ADD_RMSNORM_PAD_ARGS: ResidualNormArgs = {
  kernel: 'fused_add_rms_norm',
  residual: 3,
  weight: [1, 'weight'],
  eps: 2,
  out: 'normed',
};

export const NORM_LOWERINGS = {
  // vLLM IR's functional norms: the kernels of _C.rms_norm and _C.fused_add_rms_norm.
  'vllm_ir.rms_norm.default': {
    roles: { weight: 'norm-weight' },
    lower: (b, c) => {
      const x = b.rowsOrCopy(c.tensor(0, 'x'), c.node);
      const w = irWeight(b, c, 1, 3, x);
      const out = b.newStorage(c.node.name, x.dtype, x.shape);
      b.push(c.node, { kernel: 'rms_norm', x, w, eps: c.num(2, 1e-6), out: out.storage });
      return T(out);
    },
  },
  'vllm_ir.fused_add_rms_norm.default': {
    roles: { weight: 'norm-weight' },
    lower: (b, c) => {
      const n = c.node;
      const x = b.rowsOrCopy(c.tensor(0, 'x'), n);
      const residual = b.rowsOrCopy(c.tensor(1, 'x_residual', { role: 'activation', shape: x.shape }), n);
      if (residual.shape.join() !== x.shape.join())
        c.fail(`x_residual [${residual.shape}] and x [${x.shape}] differ`);
      const w = irWeight(b, c, 2, 4, x);
      const out = b.newStorage(`${n.name}.out`, x.dtype, x.shape);
      const res = b.newStorage(`${n.name}.residual`, x.dtype, x.shape);
      b.push(n, {
        kernel: 'fused_add_rms_norm',
        x,
        residual,
        w,
        eps: c.num(3, 1e-6),
        out: out.storage,
        residualOut: res.storage,
      });
      return { t: 'tuple', items: [T(out), T(res)] };
    },
  },
  // (x, weight, variance_epsilon, residual, x_pad_to_multiple) → (padded normed, residual): the
  // fused_add_rms_norm step, then the pad step zero-filling the columns past x's; AITER's kernel
  // stores the norm in the model dtype as the unfused pair does, so before ≡ after is bitwise.
  'vllm.rocm_aiter_triton_add_rmsnorm_pad.default': {
    roles: { weight: 'norm-weight' },
    lower: (b, c) => {
      const n = c.node;
      const x = b.rowsOrCopy(c.tensor(0, 'x'), n);
      const { out, res } = residualNorm(b, c, x, AITER_ADD_RMSNORM_PAD_ARGS);
      // The padded width at the run's sizes: the annotated [0] result's (the preset maps 3072 → 48).
      const t = b.itemTypes(n.name)?.[0];
      const width = t && t.kind === 'tensor' ? b.mapType(t, n.name).shape.at(-1) : undefined;
      const cols = x.shape[x.shape.length - 1]!;
      if (width === undefined || width < cols)
        return c.fail(
          `the padded result [0] needs an annotated width of at least the input's ${cols} columns`,
        );
      const lo = new Array<number>(x.shape.length).fill(0);
      const padded = b.newStorage(`${n.name}.padded`, x.dtype, [...x.shape.slice(0, -1), width]);
      b.push(n, { kernel: 'pad', x: out, lo, value: 0, out: padded.storage });
      return { t: 'tuple', items: [T(padded), T(res)] };
    },
  },
  // AITER's fused add + RMSNorm (vllm/_aiter_ops.py rmsnorm2d_fwd_with_add): the kernel of
  // _C.fused_add_rms_norm, its results returned (normed, residual) instead of written in place.
  'vllm.rocm_aiter_rmsnorm2d_fwd_with_add.default': {
    roles: { weight: 'norm-weight' },
    lower: (b, c) => {
      const { out, res } = fusedAddRmsNorm(b, c, 'x', 'normed');
      return { t: 'tuple', items: [T(out), T(res)] };
    },
  },
  '_C.rms_norm.default': {
    roles: { weight: 'norm-weight' },
    lower: (b, c) => {
      const x = b.rowsOrCopy(c.tensor(1, 'input'), c.node);
      const w = normWeight(c, 2, 'weight', x);
      const out = b.newStorage(`${c.node.name}.result`, x.dtype, x.shape);
      b.push(c.node, { kernel: 'rms_norm', x, w, eps: c.num(3, 1e-6), out: out.storage });
      return { t: 'tuple', items: [{ t: 'none' }, T(out)] };
    },
  },
  '_C.fused_add_rms_norm.default': {
    roles: { weight: 'norm-weight' },
    lower: (b, c) => {
      const { out, res } = fusedAddRmsNorm(b, c, 'input', 'input');
      return { t: 'tuple', items: [{ t: 'none' }, T(out), T(res)] };
    },
  },
  'vllm.flashinfer_trtllm_fused_allreduce_norm.default': {
    roles: { rms_gamma: 'norm-weight' },
    lower: (b, c) => {
      const code = c.num(7, 1);
      // 1: all-reduce + residual + RMSNorm; 2: the same + static FP8 quant of the normed output.
      if (code !== 1 && code !== 2)
        c.fail(
          `pattern_code ${code} is not supported (1: all-reduce + residual + RMSNorm, 2: + static FP8 quant)`,
        );
      const x = b.contiguous(c.tensor(0, 'allreduce_in'), c.node);
      const normOut = c.arg(2);
      const { residual, out, res } = residualNorm(b, c, x, {
        kernel: 'fused_allreduce_norm',
        residual: 1,
        weight: [5, 'rms_gamma'],
        eps: 6,
        out: 'norm',
      });
      // Pattern 2's quant_out ([4]): FlashInfer's saturating cast of the normed output (bf16) · 1/scale.
      let quant: Value = { t: 'none' };
      if (code === 2) {
        const scale = c.tensor(14, 'scale_factor', { role: 'norm-weight', shape: [1] });
        const q = b.newStorage(`${c.node.name}.quant`, x.dtype, x.shape);
        b.push(c.node, { kernel: 'fp8_quant', x: out, scale, satfinite: true, out: q.storage });
        quant = T(q);
      }
      // Pattern 1 with norm_out None: the normed output over allreduce_in, ar + residual over
      // residual. With norm_out given, vLLM passes allreduce_in as the residual output: ar +
      // residual lands in allreduce_in ([1]) and residual ([2]) is left as it was.
      const items: Value[] =
        normOut === null
          ? [{ t: 'none' }, T(out), T(res), { t: 'none' }, quant, { t: 'none' }]
          : [{ t: 'none' }, T(res), T(residual), T(out), quant, { t: 'none' }];
      return { t: 'tuple', items };
    },
  },
} satisfies Partial<Record<LoweredOp, Lowering>>;
