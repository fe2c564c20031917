// vLLM's NVFP4 GEMM (cutlass_scaled_fp4_mm), emulated: out[m, n] = alpha · Σ_k A[m, k] · B[n, k], A
// and B rows of packed e2m1 pairs (bytes 0–255 held as values, the even element in the low nibble)
// times their e4m3 block scales (one per 16 elements, linear), all read from element 0. Each
// product is exact in f32 and the sum runs in k order (WGSL's f32 + is correctly rounded), so the
// result is the CPU twin's bit for bit: nvfp4Gemm in src/graph/fp4.ts. Two outputs a thread.
//
// Bind layout: @binding(0) prm: Nvfp4GemmParams   @binding(1) out   @binding(2) a   @binding(3) sa
//              @binding(4) b   @binding(5) sb   @binding(6) alpha

import { DTYPE_WGSL, inputBinding, outputBinding, roundExpr, type WgslDType } from './dtype.ts';
import { FP8_DECODE_WGSL, FP8_WGSL } from './fp8Quant.ts';
import { paramStruct } from './params.ts';

export const FP4_GEMM_WG = 64;

/** M rows of a, N rows of b, K / 2 bytes a row. */
export const NVFP4_GEMM_PARAMS = paramStruct('Nvfp4GemmParams', { M: 'u32', N: 'u32', halfK: 'u32' });

export interface Nvfp4GemmDtypes {
  out: WgslDType;
  a: WgslDType;
  sa: WgslDType;
  b: WgslDType;
  sb: WgslDType;
  alpha: WgslDType;
}

export function nvfp4GemmWgsl(d: Nvfp4GemmDtypes): string {
  return `${DTYPE_WGSL}
${FP8_WGSL}
${FP8_DECODE_WGSL}
${NVFP4_GEMM_PARAMS.wgsl}
${outputBinding('out', 1, d.out)}
${inputBinding('a', 2, d.a)}
${inputBinding('sa', 3, d.sa)}
${inputBinding('b', 4, d.b)}
${inputBinding('sb', 5, d.sb)}
${inputBinding('alpha', 6, d.alpha)}
fn e2m1_value(code: u32) -> f32 {
  let m = code & 7u;
  var v = f32(m) * 0.5;
  if (m == 5u) { v = 3.0; } else if (m == 6u) { v = 4.0; } else if (m == 7u) { v = 6.0; }
  return select(v, -v, (code & 8u) != 0u);
}
fn e4m3(x: f32) -> f32 { return f8e4m3fn_value(f8e4m3fn_bits(x)); }
fn dot(o: u32) -> f32 {
  let m = o / prm.N;
  let n = o % prm.N;
  var acc = 0.0;
  for (var j = 0u; j < prm.halfK; j++) {
    let ab = u32(ld_a(m * prm.halfK + j));
    let bb = u32(ld_b(n * prm.halfK + j));
    let fa = e4m3(ld_sa((m * prm.halfK + j) / 8u));
    let fb = e4m3(ld_sb((n * prm.halfK + j) / 8u));
    // (e2m1 · scale) of a times that of b: each factor and the product exact, as the CPU twin's.
    acc = acc + (e2m1_value(ab & 15u) * fa) * (e2m1_value(bb & 15u) * fb);
    acc = acc + (e2m1_value(ab >> 4u) * fa) * (e2m1_value(bb >> 4u) * fb);
  }
  return ${roundExpr(d.out, 'acc * ld_alpha(0u)')};
}
@compute @workgroup_size(${FP4_GEMM_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let o = (gid.x + gid.y * nwg.x * ${FP4_GEMM_WG}u) * 2u;
  let total = prm.M * prm.N;
  if (o >= total) { return; }
  if (o + 1u < total) { st2_out(o, dot(o), dot(o + 1u)); } else { st_out(o, dot(o)); }
}
`;
}

/** Workgroups for M·N outputs (two a thread), split over y past the 65535 limit. */
export function nvfp4GemmDispatch(outputs: number): [number, number] {
  const groups = Math.max(1, Math.ceil(Math.ceil(outputs / 2) / FP4_GEMM_WG));
  return groups <= 65535 ? [groups, 1] : [65535, Math.ceil(groups / 65535)];
}
