// float8_e4m3fn (torch.float8_e4m3fn, vLLM's FP8 on CUDA): 1 sign, 4 exponent bits (bias 7),
// 3 mantissa bits; no infinities; S.1111.111 is NaN; the largest finite value is 448 (0x7E).
//
// Two quantizers, both x · (1 / scale) in f32, rounded to nearest even:
// - static_scaled_fp8_quant (vLLM csrc/quantization/fp8/common.cuh, scaled_fp8_conversion with an
//   inverted scale): clamps with fmax(−448, fmin(x, 448)) before the cast, so NaN becomes 448;
// - the fused all-reduce + norm's quant output (TensorRT-LLM / FlashInfer allReduceFusionKernels,
//   FP8 pattern: m_scale_factor = 1 / scale, then static_cast<__nv_fp8_e4m3>, a saturating
//   conversion): out-of-range values saturate to ±448, NaN stays NaN (0x7F).
// Both take the reciprocal once, correctly rounded to f32, as CUDA's `1.f / s` does.

export const F8E4M3FN_MAX = 448;
export const F8E4M3FN_NAN = 0x7f;

/** How a quantizer treats NaN: vLLM's clamp turns it into +448; FlashInfer's satfinite cast keeps it. */
export type Fp8NanRule = 'clamp' | 'satfinite';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The e4m3fn byte nearest to the f32 value `x` (ties to even), saturating to ±448; NaN → 0x7F.
 * Works on the f32 bits so it is the same integer algorithm as the WGSL `f8e4m3fn_bits`.
 */
export function f8e4m3fnBits(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  const sign = (u >>> 24) & 0x80;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return F8E4M3FN_NAN; // one canonical NaN, whatever its sign (CUDA's cvt)
  if (a >= 0x43e00000) return 0x7e | sign; // ≥ 448: 448 or past it, saturated
  if (a >= 0x3c800000) {
    // Normal in e4m3 (≥ 2⁻⁶): round the f32 exponent|mantissa to 3 mantissa bits; a carry bumps the exponent.
    const r = (a + 0x7ffff + ((a >>> 20) & 1)) >>> 20;
    return (r - ((127 - 7) << 3)) | sign;
  }
  // Subnormal in e4m3: a multiple of 2⁻⁹. The f32 significand shifted down by 141 − exponent.
  const e = a >>> 23;
  if (e < 117) return sign; // below 2⁻¹⁰ (or an f32 subnormal): rounds to zero
  const m = (a & 0x7fffff) | 0x800000;
  const s = 141 - e;
  let q = m >>> s;
  const rem = m & ((1 << s) - 1),
    half = 1 << (s - 1);
  if (rem > half || (rem === half && (q & 1) === 1)) q++;
  return q | sign;
}

/** The value of an e4m3fn byte. */
export function f8e4m3fnValue(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >>> 3) & 0xf,
    m = b & 7;
  if (e === 0xf && m === 7) return NaN;
  return sign * (e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7));
}

/** 1 / scale in f32, correctly rounded (the one division both quantizers make). */
export function inverseScale(scale: number): number {
  return Math.fround(1 / Math.fround(scale));
}

/** One element: f32(x · inv), then the quantizer's NaN / range rule, then the cast. */
export function quantizeFp8(x: number, inv: number, rule: Fp8NanRule): number {
  const v = Math.fround(Math.fround(x) * inv);
  if (rule === 'clamp') {
    // CUDA's fmin / fmax return the non-NaN operand.
    const lo = Number.isNaN(v) ? F8E4M3FN_MAX : Math.min(v, F8E4M3FN_MAX);
    return f8e4m3fnBits(Math.max(-F8E4M3FN_MAX, lo));
  }
  return f8e4m3fnBits(v);
}

/** static_scaled_fp8_quant over a tensor's values (bf16 or f32, as numbers): one byte each. */
export function staticScaledFp8Quant(input: ArrayLike<number>, scale: number): Uint8Array {
  const inv = inverseScale(scale);
  const out = new Uint8Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = quantizeFp8(input[i]!, inv, 'clamp');
  return out;
}

/** The fused op's quant_out from its (bf16-rounded) normed output: FlashInfer's saturating cast. */
export function fusedNormFp8Quant(normed: ArrayLike<number>, scale: number): Uint8Array {
  const inv = inverseScale(scale);
  const out = new Uint8Array(normed.length);
  for (let i = 0; i < normed.length; i++) out[i] = quantizeFp8(normed[i]!, inv, 'satfinite');
  return out;
}
