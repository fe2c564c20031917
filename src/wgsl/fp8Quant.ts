// FP8 (e4m3fn) quantization, four values per u32 word (element i in byte i % 4): vLLM's
// static_scaled_fp8_quant and the fused all-reduce + norm's quant output. The CPU twin, and why
// the two differ only on NaN, is src/graph/fp8.ts.
//
// Bind layout:
//   @binding(0) prm: Fp8QuantParams  (FP8_QUANT_PARAMS below)
//   @binding(1) out: array<u32>      the packed bytes
//   @binding(2) inp                   the contiguous input (bf16 pairs or f32)

import { DTYPE_WGSL, inputBinding, outputBinding, type WgslDType } from './dtype.ts';
import { paramStruct } from './params.ts';
import type { Fp8NanRule } from '../graph/fp8.ts';

export const FP8_WG = 256;

export const FP8_QUANT_PARAMS = paramStruct('Fp8QuantParams', {
  n: 'u32',
  /**
   * 1/scale, correctly rounded as CUDA's `1.f / s` (WGSL's own division may be 2.5 ulp off, so a
   * kernel that reads the scale from a buffer uses `recip_rn`).
   */
  invScale: 'f32',
});

/** e4m3fn byte of an f32 (ties to even, saturating, NaN → 0x7F): integer steps on the bits. */
export const FP8_WGSL = /* wgsl */ `
fn f8e4m3fn_bits(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  let sign = (u >> 24u) & 0x80u;
  let a = u & 0x7fffffffu;
  if (a > 0x7f800000u) { return 0x7fu; }
  if (a >= 0x43e00000u) { return 0x7eu | sign; }
  if (a >= 0x3c800000u) {
    let r = (a + 0x7ffffu + ((a >> 20u) & 1u)) >> 20u;
    return (r - 960u) | sign;
  }
  let e = a >> 23u;
  if (e < 117u) { return sign; }
  let m = (a & 0x7fffffu) | 0x800000u;
  let s = 141u - e;
  var q = m >> s;
  let rem = m & ((1u << s) - 1u);
  let half = 1u << (s - 1u);
  if (rem > half || (rem == half && (q & 1u) == 1u)) { q += 1u; }
  return q | sign;
}
`;

/**
 * 1 / s correctly rounded to nearest even, for a positive normal f32 s whose reciprocal is normal
 * (scales are): restoring division of the significands, 26 quotient bits plus a sticky bit.
 */
export const RECIP_WGSL = /* wgsl */ `
fn recip_rn(s: f32) -> f32 {
  let u = bitcast<u32>(s);
  let e = (u >> 23u) & 0xffu;
  let m = (u & 0x7fffffu) | 0x800000u;
  if (e == 0u || e >= 253u || (u >> 31u) == 1u) { return 1.0 / s; }
  if (m == 0x800000u) { return bitcast<f32>((254u - e) << 23u); }
  // 2^23 / m lies in (1/2, 1): 26 quotient bits of it, leading bit 0.
  var rem = 0x800000u;
  var q = 0u;
  for (var i = 0u; i < 26u; i++) {
    q <<= 1u;
    if (rem >= m) { q |= 1u; rem -= m; }
    rem <<= 1u;
  }
  // q = ⌊2^25 · 2^23/m⌋ < 2^25 with bit 24 set: 24 significant bits and 1 guard bit, rem the sticky.
  let guard = q & 1u;
  var mant = q >> 1u;
  if (guard == 1u && (rem != 0u || (mant & 1u) == 1u)) { mant += 1u; }
  // 1/s = 2^(127-e) · 2^23/m = 2^(126-e) · (mant / 2^23); a carry to 2^24 bumps the exponent.
  var exp = 253u - e;
  if (mant == 0x1000000u) { mant = 0x800000u; exp += 1u; }
  return bitcast<f32>((exp << 23u) | (mant & 0x7fffffu));
}
`;

/** static_scaled_fp8_quant's clamp: fmax(-448, fmin(v, 448)) with CUDA's NaN rule (the non-NaN operand wins). */
export const FP8_QUANT_CLAMP_WGSL = `fn quant(v: f32) -> u32 {
  if (v != v) { return f8e4m3fn_bits(448.0); }
  return f8e4m3fn_bits(max(-448.0, min(v, 448.0)));
}`;

const QUANT: Record<Fp8NanRule, string> = {
  clamp: FP8_QUANT_CLAMP_WGSL,
  satfinite: 'fn quant(v: f32) -> u32 { return f8e4m3fn_bits(v); }',
};

export function fp8QuantWgsl(input: WgslDType, rule: Fp8NanRule): string {
  return `${DTYPE_WGSL}
${FP8_WGSL}
${QUANT[rule]}
${FP8_QUANT_PARAMS.wgsl}
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
${inputBinding('inp', 2, input)}
@compute @workgroup_size(${FP8_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = gid.x + gid.y * nwg.x * ${FP8_WG}u;
  let n = prm.n;
  let inv = prm.invScale;
  if (w * 4u >= n) { return; }
  var word = 0u;
  for (var k = 0u; k < 4u; k++) {
    let i = w * 4u + k;
    if (i < n) { word |= quant(ld_inp(i) * inv) << (8u * k); }
  }
  out[w] = word;
}
`;
}

/** Workgroups for n elements (4 per thread), split over y past the 65535 limit. */
export function fp8QuantDispatch(n: number): [number, number] {
  const groups = Math.max(1, Math.ceil(Math.ceil(n / 4) / FP8_WG));
  return groups <= 65535 ? [groups, 1] : [65535, Math.ceil(groups / 65535)];
}

/** The value of an e4m3fn byte (every one is exact in bf16 and f32). */
export const FP8_DECODE_WGSL = /* wgsl */ `
fn f8e4m3fn_value(b: u32) -> f32 {
  let e = (b >> 3u) & 15u;
  let m = b & 7u;
  var v: f32;
  // A NaN built from the runtime m: a constant NaN is a shader-creation error in WGSL.
  if (e == 15u && m == 7u) { v = bitcast<f32>(0x7f800000u | (m << 20u)); }
  else if (e == 0u) { v = f32(m) * 0.001953125; }
  else { v = bitcast<f32>(((e + 120u) << 23u) | (m << 20u)); }
  return select(v, -v, (b & 0x80u) != 0u);
}
`;

/** The plan kernel's parameters: the element count (the scale is read from its buffer). */
export const FP8_QUANT_VALUES_PARAMS = paramStruct('Fp8QuantValuesParams', { n: 'u32' });

/**
 * The quantizer as a plan kernel: quantized values held in the run's dtype (an fp8 value is exact
 * in bf16), the scale read from a buffer (element 0) and inverted with `recip_rn`. Each thread
 * writes two elements (one packed word).
 *   @binding(0) prm: Fp8QuantValuesParams   @binding(1) out   @binding(2) inp (contiguous)   @binding(3) scale
 */
export function fp8QuantValuesWgsl(
  input: WgslDType,
  output: WgslDType,
  scale: WgslDType,
  rule: Fp8NanRule,
): string {
  return `${DTYPE_WGSL}
${FP8_WGSL}
${FP8_DECODE_WGSL}
${RECIP_WGSL}
${QUANT[rule]}
${FP8_QUANT_VALUES_PARAMS.wgsl}
${outputBinding('out', 1, output)}
${inputBinding('inp', 2, input)}
${inputBinding('scale', 3, scale)}
@compute @workgroup_size(${FP8_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = (gid.x + gid.y * nwg.x * ${FP8_WG}u) * 2u;
  let n = prm.n;
  if (i >= n) { return; }
  let inv = recip_rn(ld_scale(0u));
  let a = f8e4m3fn_value(quant(ld_inp(i) * inv));
  if (i + 1u < n) { st2_out(i, a, f8e4m3fn_value(quant(ld_inp(i + 1u) * inv))); } else { st_out(i, a); }
}
`;
}

/** Workgroups for n elements (2 per thread), split over y past the 65535 limit. */
export function fp8QuantValuesDispatch(n: number): [number, number] {
  const groups = Math.max(1, Math.ceil(Math.ceil(n / 2) / FP8_WG));
  return groups <= 65535 ? [groups, 1] : [65535, Math.ceil(groups / 65535)];
}
