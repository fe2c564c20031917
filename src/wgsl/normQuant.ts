// The static FP8 quant fused into a norm kernel's store (rmsNorm.ts, rmsNormRows.ts).

import { inputBinding, type WgslDType } from './dtype.ts';
import { FP8_QUANT_CLAMP_WGSL, FP8_DECODE_WGSL, FP8_WGSL, RECIP_WGSL } from './fp8Quant.ts';

/**
 * The static FP8 quant of a norm's output, fused into its store (rms_norm_static_fp8_quant and
 * fused_add_rms_norm_static_fp8_quant, csrc/layernorm_quant_kernels.cu: the normed value rounded
 * to the run dtype, then scaled_fp8_conversion by 1/scale): the fp8_quant kernel's own functions
 * (fp8Quant.ts), the scale at @binding(6), its reciprocal `qinv` correctly rounded.
 */
export function normQuantWgsl(scale: WgslDType): string {
  return `${FP8_WGSL}
${FP8_DECODE_WGSL}
${RECIP_WGSL}
${FP8_QUANT_CLAMP_WGSL}
${inputBinding('qscale', 6, scale)}
fn q4(v: vec4<f32>, inv: f32) -> vec4<f32> {
  return vec4<f32>(f8e4m3fn_value(quant(v.x * inv)), f8e4m3fn_value(quant(v.y * inv)),
                   f8e4m3fn_value(quant(v.z * inv)), f8e4m3fn_value(quant(v.w * inv)));
}`;
}
