// The fused norm + quant and activation + quant ops that vLLM's RMSNormQuantFusionPass and
// ActivationQuantFusionPass emit. vLLM's fused kernels round as the unfused pair does where it
// matters here: rms_norm_static_fp8_quant stores `(scalar_t)(x · rsqrt) · w` before its
// scaled_fp8_conversion (csrc/layernorm_quant_kernels.cu), and silu_and_mul_quant quantizes
// `ACT_FN(x) · y` in scalar_t (csrc/quantization/activation_kernels.cu) — each the value the
// unfused op stores, quantized by the same 1/scale with the same clamp. So each lowers to the
// unfused pair's kernels (the norm or silu·mul step, then fp8_quant with the clamp rule), and
// before ≡ after is bitwise (opTable.ts KERNELS holds each kernel's rounding). The dynamic
// per-token and per-group quants and NVFP4 have no kernel yet (as their unfused quants).

import type { View } from '../../graph/opTable.ts';
import type { PlanBuilder } from './builder.ts';
import { noKernel, tensorValue as T, type LoweredOp, type Lowering, type OpCall } from './lowering.ts';

/** The norm's weight γ (argument i), one per column of x. */
const normWeight = (c: OpCall, i: number, x: View): View =>
  c.tensor(i, 'weight', { role: 'norm-weight', shape: [x.shape[x.shape.length - 1]] });

/** static_scaled_fp8_quant's step on `x`: clamp(x · (1 / scale), ±448) into a new storage. */
function staticFp8Quant(b: PlanBuilder, c: OpCall, x: View, scaleAt: number): View {
  const scale = c.tensor(scaleAt, 'scale', { role: 'norm-weight', shape: [1] });
  const q = b.newStorage(`${c.node.name}.result`, x.dtype, x.shape);
  b.push(c.node, { kernel: 'fp8_quant', x, scale, satfinite: false, out: q.storage });
  return q;
}

const noDynamicQuant = noKernel(
  'the dynamic FP8 quants (per token, per group) have no kernel yet: the fused op is fed, as its unfused quant would be',
);

export const FUSED_QUANT_LOWERINGS = {
  // (result!, input, weight, scale, epsilon) → [1] result
  '_C.rms_norm_static_fp8_quant.default': {
    roles: { weight: 'norm-weight' },
    lower: (b, c) => {
      const x = b.rowsOrCopy(c.tensor(1, 'input'), c.node);
      const normed = b.newStorage(`${c.node.name}.normed`, x.dtype, x.shape);
      const w = normWeight(c, 2, x);
      b.push(c.node, { kernel: 'rms_norm', x, w, eps: c.num(4, 1e-6), out: normed.storage });
      return { t: 'tuple', items: [{ t: 'none' }, T(staticFp8Quant(b, c, normed, 3))] };
    },
  },
  // (result!, input, residual!, weight, scale, epsilon) → [1] result, [2] residual
  '_C.fused_add_rms_norm_static_fp8_quant.default': {
    roles: { weight: 'norm-weight' },
    lower: (b, c) => {
      const n = c.node;
      const x = b.rowsOrCopy(c.tensor(1, 'input'), n);
      const residual = b.rowsOrCopy(c.tensor(2, 'residual', { role: 'activation', shape: x.shape }), n);
      if (residual.shape.join() !== x.shape.join())
        c.fail(`residual [${residual.shape}] and input [${x.shape}] differ`);
      const w = normWeight(c, 3, x);
      const normed = b.newStorage(`${n.name}.normed`, x.dtype, x.shape);
      const res = b.newStorage(`${n.name}.residual`, x.dtype, x.shape);
      b.push(n, {
        kernel: 'fused_add_rms_norm',
        x,
        residual,
        w,
        eps: c.num(5, 1e-6),
        out: normed.storage,
        residualOut: res.storage,
      });
      return { t: 'tuple', items: [{ t: 'none' }, T(staticFp8Quant(b, c, normed, 4)), T(res)] };
    },
  },
  '_C.rms_norm_dynamic_per_token_quant.default': noDynamicQuant,
  '_C.rms_norm_per_block_quant.default': noDynamicQuant,
  // (result!, input, scale) → [1] result
  '_C.silu_and_mul_quant.default': {
    lower: (b, c) => {
      const x = c.tensor(1, 'input');
      const last = x.shape.length - 1;
      const d = x.shape[last] / 2;
      if (!Number.isInteger(d))
        c.fail(`input's last dim ${x.shape[last]} is odd: it must hold the gate and up halves`);
      const gate: View = { ...x, shape: [...x.shape.slice(0, last), d] };
      const up: View = { ...gate, offset: x.offset + d * x.strides[last] };
      const act = b.newStorage(`${c.node.name}.act`, x.dtype, gate.shape);
      b.push(c.node, { kernel: 'map', fn: 'silu_mul', a: gate, b: up, scalar: 0, out: act.storage });
      return { t: 'tuple', items: [{ t: 'none' }, T(staticFp8Quant(b, c, act, 2))] };
    },
  },
  '_C.silu_and_mul_nvfp4_quant.default': noKernel(
    'NVFP4 packing (two e2m1 per byte, swizzled block scales) has no kernel',
  ),
} satisfies Partial<Record<LoweredOp, Lowering>>;
