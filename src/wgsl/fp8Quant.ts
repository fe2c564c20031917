// FP8 (e4m3fn) quantization, four values per u32 word (element i in byte i % 4): vLLM's
// static_scaled_fp8_quant and the fused all-reduce + norm's quant output. The CPU twin, and why
// the two differ only on NaN, is src/runtime/fp8.ts.
//
// Bind layout:
//   @binding(0) prm: array<u32>   [0] element count, [1] bits of 1/scale (f32, computed on the host:
//                                  WGSL's division may be 2.5 ulp off, CUDA's `1.f / s` is exact)
//   @binding(1) out: array<u32>   the packed bytes
//   @binding(2) inp                the contiguous input (bf16 pairs or f32)

import { DTYPE_WGSL, inputBinding, type WgslDType } from './dtype.ts';
import type { Fp8NanRule } from '../runtime/fp8.ts';

export const FP8_WG = 256;

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

const QUANT: Record<Fp8NanRule, string> = {
  // fmax(-448, fmin(v, 448)) with CUDA's NaN rule: the non-NaN operand wins.
  clamp: `fn quant(v: f32) -> u32 {
  if (v != v) { return f8e4m3fn_bits(448.0); }
  return f8e4m3fn_bits(max(-448.0, min(v, 448.0)));
}`,
  satfinite: 'fn quant(v: f32) -> u32 { return f8e4m3fn_bits(v); }',
};

export function fp8QuantWgsl(input: WgslDType, rule: Fp8NanRule): string {
  return `${DTYPE_WGSL}
${FP8_WGSL}
${QUANT[rule]}
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
${inputBinding('inp', 2, input)}
@compute @workgroup_size(${FP8_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let w = gid.x + gid.y * nwg.x * ${FP8_WG}u;
  let n = prm[0];
  let inv = bitcast<f32>(prm[1]);
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
