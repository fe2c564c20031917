// The static FP8 quant fused into a norm kernel's store (rmsNorm.ts, rmsNormRows.ts).

import { inputBinding, type WgslDType } from './dtype.ts';
import { FP8_QUANT_CLAMP_WGSL, FP8_DECODE_WGSL, FP8_WGSL, RECIP_WGSL } from './fp8Quant.ts';

/**
 * clamp(v · inv, ±448) (NaN → 448) as its e4m3fn value, four at a time: the value
 * f8e4m3fn_value(quant(·)) gives, without the byte. From 2^-6 up the f32 rounds to 3 mantissa bits
 * (ties to even; the byte's own rounding, and its exponent and mantissa bits are the value's), below
 * to a multiple of 2^-9 (the subnormals; `round` is ties to even, halves of the smallest one go to
 * 0). About a dozen vector operations for four values, where the byte's encode and decode branch
 * per value: the static norm + quant kernel spent most of its time there (bench/RESULTS.md, fusions).
 */
export const FP8_VALUE4_WGSL = /* wgsl */ `
fn q4(v: vec4<f32>, inv: f32) -> vec4<f32> {
  let p = v * inv;
  let c = select(max(vec4<f32>(-448.0), min(p, vec4<f32>(448.0))), vec4<f32>(448.0), p != p);
  let u = bitcast<vec4<u32>>(c);
  let a = u & vec4<u32>(0x7fffffffu);
  let nrm = (a + vec4<u32>(0x7ffffu) + ((a >> vec4<u32>(20u)) & vec4<u32>(1u))) & vec4<u32>(0xfff00000u);
  let sub = bitcast<vec4<u32>>(round(bitcast<vec4<f32>>(a) * 512.0) * 0.001953125);
  return bitcast<vec4<f32>>((u & vec4<u32>(0x80000000u)) | select(sub, nrm, a >= vec4<u32>(0x3c800000u)));
}`;

/**
 * The static FP8 quant of a norm's output, fused into its store (rms_norm_static_fp8_quant and
 * fused_add_rms_norm_static_fp8_quant, csrc/layernorm_quant_kernels.cu: the normed value rounded
 * to the run dtype, then scaled_fp8_conversion by 1/scale): the fp8_quant kernel's own functions
 * (fp8Quant.ts) and their four-wide form `q4`, the scale at @binding(6), its reciprocal `qinv`
 * correctly rounded.
 */
export function normQuantWgsl(scale: WgslDType): string {
  return `${FP8_WGSL}
${FP8_DECODE_WGSL}
${RECIP_WGSL}
${FP8_QUANT_CLAMP_WGSL}
${inputBinding('qscale', 6, scale)}
${FP8_VALUE4_WGSL}`;
}
