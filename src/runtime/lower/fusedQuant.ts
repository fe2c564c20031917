// The fused norm + quant and activation + quant ops that vLLM's RMSNormQuantFusionPass and
// ActivationQuantFusionPass emit. vLLM's fused kernels round as the unfused pair does where it
// matters here: rms_norm_static_fp8_quant stores `(scalar_t)(x · rsqrt) · w` before its
// scaled_fp8_conversion (csrc/layernorm_quant_kernels.cu), and silu_and_mul_quant quantizes
// `ACT_FN(x) · y` in scalar_t (csrc/quantization/activation_kernels.cu) — each the value the
// unfused op stores, quantized by the same 1/scale with the same clamp. So the static norm + quant
// ops are one norm kernel with the quant in its store (KERNELS.rms_norm's `scale`), silu_and_mul_quant
// one silu_and_mul step with the quant in its store (KERNELS.silu_and_mul's), and before ≡ after is
// bitwise (opTable.ts KERNELS holds each kernel's rounding). The dynamic per-token and per-group
// ones are one norm + dynamic quant kernel each (KERNELS.rms_norm_dynamic_quant: the norm, then
// fp8_quant_rows' roundings); NVFP4 to
// silu_and_mul's step and scaled_fp4_quant's (its scales linear or swizzled as its buffer is shaped).

import { NVFP4_BLOCK, swizzledScaleDims } from '../../graph/fp4.ts';
import type { View } from '../../graph/opTable.ts';
import type { PlanBuilder } from './builder.ts';
import { asRows, numelOf } from './layout.ts';
import { tensorValue as T, type LoweredOp, type Lowering, type OpCall, type Value } from './lowering.ts';
import { NORM_BLOCK_SCALE, nvfp4Quant, perGroupFp8Quant, scaleLayout } from './quant.ts';
import { siluAndMul } from './elementwise.ts';

/** The norm's weight γ (argument i), one per column of x. */
const normWeight = (c: OpCall, i: number, x: View): View =>
  c.tensor(i, 'weight', { role: 'norm-weight', shape: [x.shape[x.shape.length - 1]] });

/** The residual at argument `at` (rows shaped as x) and a new storage for the new residual. */
function residualOperand(b: PlanBuilder, c: OpCall, at: number, x: View): { residual: View; res: View } {
  const residual = b.rowsOrCopy(c.tensor(at, 'residual', { role: 'activation', shape: x.shape }), c.node);
  if (residual.shape.join() !== x.shape.join())
    c.fail(`residual [${residual.shape}] and input [${x.shape}] differ`);
  return { residual, res: b.newStorage(`${c.node.name}.residual`, x.dtype, x.shape) };
}

/**
 * RMSNorm of `x` (+ `residual` at argument `residualAt`, when given) into new storages: the normed
 * output, and with a residual the new one (z = x + residual, rounded, as fused_add_rms_norm). With
 * a static scale at argument `scale` the normed output is quantized in the same kernel (KERNELS.rms_norm).
 */
function normSteps(
  b: PlanBuilder,
  c: OpCall,
  x: View,
  at: { residual: number | null; weight: number; eps: number; scale?: number },
): { normed: View; res: View | null } {
  const n = c.node;
  const w = normWeight(c, at.weight, x);
  const eps = c.num(at.eps, 1e-6);
  const scale =
    at.scale === undefined ? null : c.tensor(at.scale, 'scale', { role: 'norm-weight', shape: [1] });
  const normed = b.newStorage(`${n.name}.${scale ? 'quant' : 'normed'}`, x.dtype, x.shape);
  if (at.residual === null) {
    b.push(n, { kernel: 'rms_norm', x, w, eps, scale, out: normed.storage });
    return { normed, res: null };
  }
  const { residual, res } = residualOperand(b, c, at.residual, x);
  b.push(n, {
    kernel: 'fused_add_rms_norm',
    x,
    residual,
    w,
    eps,
    scale,
    out: normed.storage,
    residualOut: res.storage,
  });
  return { normed, res };
}

/**
 * RMSNorm of `x` (+ the residual at argument 6, when given) with the dynamic FP8 quant of its
 * output in one step (KERNELS.rms_norm_dynamic_quant): one scale per `group` columns of a token
 * (group = the row: per token), stored [tokens, groups] or, `transposed`, column-major as vLLM's
 * is_scale_transposed ([groups, tokens] storage read as [tokens, groups]). The scales'
 * rule is the fused kernel's (quant.ts 'norm-block').
 */
function normDynamicQuant(b: PlanBuilder, c: OpCall, group: number | null, transposed: boolean): Value {
  const n = c.node;
  const x = b.rowsOrCopy(c.tensor(1, 'input'), n);
  const H = x.shape[x.shape.length - 1]!;
  const g = group ?? H;
  if (!Number.isInteger(g) || g <= 0 || H % g !== 0)
    c.fail(`group size ${g} does not divide the last dim ${H}`);
  const lead = x.shape.slice(0, -1);
  const tokens = numelOf(lead);
  const w = normWeight(c, 2, x);
  const eps = c.num(4, 1e-6);
  const out = b.newStorage(`${n.name}.result`, x.dtype, x.shape);
  const scaleShape = transposed ? [H / g, tokens] : group === null ? [tokens, 1] : [...lead, H / g];
  const scale = b.newStorage(`${n.name}.scale`, 'f32', scaleShape);
  const quant = {
    group: g,
    ...NORM_BLOCK_SCALE,
    scaleTransposed: transposed,
    out: out.storage,
    scaleOut: scale.storage,
  };
  const scaleView: View = transposed ? { ...scale, shape: [tokens, H / g], strides: [1, tokens] } : scale;
  if (c.arg(6) === null) {
    b.push(n, { kernel: 'rms_norm_dynamic_quant', x, w, eps, ...quant });
    return { t: 'tuple', items: [{ t: 'none' }, T(out), T(scaleView), { t: 'none' }] };
  }
  const { residual, res } = residualOperand(b, c, 6, x);
  b.push(n, {
    kernel: 'fused_add_rms_norm_dynamic_quant',
    x,
    residual,
    w,
    eps,
    ...quant,
    residualOut: res.storage,
  });
  return { t: 'tuple', items: [{ t: 'none' }, T(out), T(scaleView), T(res)] };
}

export const FUSED_QUANT_LOWERINGS = {
  // (result!, input, weight, scale, epsilon) → [1] result
  '_C.rms_norm_static_fp8_quant.default': {
    roles: { weight: 'norm-weight' },
    lower: (b, c) => {
      const x = b.rowsOrCopy(c.tensor(1, 'input'), c.node);
      const { normed } = normSteps(b, c, x, { residual: null, weight: 2, eps: 4, scale: 3 });
      return { t: 'tuple', items: [{ t: 'none' }, T(normed)] };
    },
  },
  // (result!, input, residual!, weight, scale, epsilon) → [1] result, [2] residual
  '_C.fused_add_rms_norm_static_fp8_quant.default': {
    roles: { weight: 'norm-weight' },
    lower: (b, c) => {
      const x = b.rowsOrCopy(c.tensor(1, 'input'), c.node);
      const { normed, res } = normSteps(b, c, x, { residual: 2, weight: 3, eps: 5, scale: 4 });
      return { t: 'tuple', items: [{ t: 'none' }, T(normed), T(res!)] };
    },
  },
  // (result!, input, weight, scale!, epsilon, scale_ub, residual!?) → [1] result, [2] scale, [3] residual.
  // Without a residual vLLM's kernel quantizes `(scalar_t)(x · rms) · w` by max|·| / 448 per token
  // (csrc/quantization/fused_kernels/layernorm_utils.cuh), as the pair does. With one it normalizes
  // the f32 sum x + residual where fused_add_rms_norm rounds it first: here the fused op rounds as
  // the pair (before ≡ after bitwise); vLLM's own kernel may differ from the pair by that rounding.
  '_C.rms_norm_dynamic_per_token_quant.default': {
    roles: { weight: 'norm-weight' },
    lower: (b, c) => {
      if (c.arg(5) !== null) c.fail('scale_ub (an upper bound on the per-token absmax) has no kernel');
      return normDynamicQuant(b, c, null, false);
    },
  },
  // (result!, input, weight, scale!, epsilon, scale_ub, residual!?, group_size, is_scale_transposed) → [1] result,
  // [2] scale, [3] residual: the norm + quant kernel, the group scales as vLLM's fused kernel computes
  // them (quant.ts 'norm-block': max(max|group| / 448, 1/(448·512))) where the unfused
  // per_token_group_fp8_quant takes max(eps, max|group|) / 448; both divide by the scale (FP8 is not
  // inverted: rms_norm_per_block_quant_kernel, fused_layernorm_dynamic_per_token_quant.cu). So the
  // pair and the fused op agree bitwise except for a group whose max|·| is under 1/512 (its scale
  // floors at 1/(448·512) here, at eps / 448 there). The residual rounds as the pair (above).
  '_C.rms_norm_per_block_quant.default': {
    roles: { weight: 'norm-weight' },
    lower: (b, c) => {
      if (c.arg(5) !== null) c.fail('scale_ub (an upper bound on the per-group absmax) has no kernel');
      return normDynamicQuant(b, c, c.num(7, 128), c.arg(8) === true);
    },
  },
  // (out!, input, scales!, group_size, scale_ub, is_scale_transposed) → [1] out, [2] scales (vLLM's
  // SiluMulBlockQuantPattern, act_quant_fusion.py). vLLM's kernel (csrc/quantization/fused_kernels/
  // fused_silu_mul_block_quant.cu silu_and_mul_per_block_quant_kernel) keeps silu(gate) · up in f32
  // and takes scale = max(max|group| / 448, 1/(448·512)), then quantizes result / scale; the pair
  // rounds the product to the model dtype first and takes max(eps, max|group|) / 448. Here the
  // product rounds as the pair's (silu_and_mul's step, as the residual of rms_norm_per_block_quant
  // does) and the scale is the fused kernel's (quant.ts 'norm-block'): before ≡ after is bitwise but
  // for a group whose max is under 1/512; against vLLM's kernel an element may differ by the e4m3
  // step that rounding the product to bf16 can cross.
  '_C.silu_and_mul_per_block_quant.default': {
    lower: (b, c) => {
      if (c.arg(4) !== null) c.fail('scale_ub (an upper bound on the per-group absmax) has no kernel');
      const act = siluAndMul(b, c, c.tensor(1, 'input'));
      const { out, scale } = perGroupFp8Quant(b, c, act, c.num(3, 128), { kind: 'norm-block' });
      return { t: 'tuple', items: [{ t: 'none' }, T(out), T(scale)] };
    },
  },
  // (result!, input, scale) → [1] result: one silu_and_mul step with the quant in its store
  // (KERNELS.silu_and_mul's `scale`), as vLLM's silu_and_mul_quant is one kernel.
  '_C.silu_and_mul_quant.default': {
    lower: (b, c) => {
      const scale = c.tensor(2, 'scale', { role: 'norm-weight', shape: [1] });
      return { t: 'tuple', items: [{ t: 'none' }, T(siluAndMul(b, c, c.tensor(1, 'input'), scale))] };
    },
  },
  // (result!, result_block_scale!, input, input_global_scale) → [1] result, [2] result_block_scale: vLLM's
  // silu_and_mul_nvfp4_quant (csrc/quantization/fp4/activation_nvfp4_quant_fusion_kernels.cu) rounds
  // silu(x) · y to scalar_t once (compute_silu_mul: silu and the product in f32) before
  // cvt_warp_fp16_to_fp4, where the unfused silu_and_mul rounds silu first (SILU_MUL_BY_DTYPE). Here it
  // is one silu_and_mul_nvfp4 step (silu_and_mul's products, then the quant's blocks, its scales
  // linear or swizzled as its buffer is shaped): bitwise the pair, and one bf16 step before the quant
  // from a B200 where the two roundings part (DESIGN.md, NVFP4). Rows whose columns are not
  // unit-stride run as silu_and_mul's step and the quant's.
  '_C.silu_and_mul_nvfp4_quant.default': {
    roles: { input_global_scale: 'norm-weight' },
    lower: (b, c) => {
      const x = c.tensor(2, 'input');
      const K = x.shape[x.shape.length - 1]! / 2;
      const rows = numelOf(x.shape) / (2 * K);
      if (K % NVFP4_BLOCK !== 0) c.fail(`the product's last dim ${K} is not a multiple of ${NVFP4_BLOCK}`);
      const layout = scaleLayout(b, c, 1, rows, K / NVFP4_BLOCK);
      if (!layout) return 'unsupported';
      const S = c.tensor(3, 'input_global_scale', { role: 'norm-weight', shape: [1] });
      if (!asRows(x)) {
        const { out, scale } = nvfp4Quant(b, c, siluAndMul(b, c, x), S, layout);
        return { t: 'tuple', items: [{ t: 'none' }, T(out), T(scale)] };
      }
      const n = c.node.name;
      const lead = x.shape.slice(0, -1);
      const out = b.newStorage(`${n}.packed`, x.dtype, [...lead, K / 2]);
      const [Rp, Cp] = swizzledScaleDims(rows, K / NVFP4_BLOCK);
      const swizzled = layout === 'swizzled';
      const scale = b.newStorage(
        `${n}.block_scale`,
        x.dtype,
        swizzled ? [Rp, Cp] : [...lead, K / NVFP4_BLOCK],
      );
      const globalScale: View = { ...S, shape: [1], strides: [1] };
      b.push(c.node, {
        kernel: 'silu_and_mul_nvfp4',
        x,
        globalScale,
        swizzled,
        out: out.storage,
        scaleOut: scale.storage,
      });
      return { t: 'tuple', items: [{ t: 'none' }, T(out), T(scale)] };
    },
  },
} satisfies Partial<Record<LoweredOp, Lowering>>;
