// Dense GEMM for aten.mm / aten.addmm (and aten.t, which is only a view: B's strides swap).
// C[M,N] = alpha · A[M,K] · B[K,N] + beta · bias, f32 accumulation, one rounding at the store.
// Tiled: a 64×64 output tile per workgroup of 16×16 threads, each thread a 4×4 block held as four
// vec4 accumulators; K is walked in slices of 16 staged through workgroup memory. A, B and bias
// are strided views, so a transposed weight (t(W)) needs no copy.
//
// Bind layout:
//   @binding(0) prm: GemmParams  (the struct below, generated from GEMM_PARAMS)
//   @binding(1) c                 output, contiguous [M, N]
//   @binding(2) a, @binding(3) b, @binding(4) bias

import { DTYPE_WGSL, inputBinding, outputBinding, roundExpr, type WgslDType } from './dtype.ts';
import { paramStruct } from './params.ts';

export const GEMM_TILE = 64;
export const GEMM_TK = 16;

/** The kernel's parameters, by name (the WGSL struct and the words written for it come from this list). */
export const GEMM_PARAMS = paramStruct('GemmParams', {
  M: 'u32',
  N: 'u32',
  K: 'u32',
  aOffset: 'u32',
  aRowStride: 'u32',
  aColStride: 'u32',
  bOffset: 'u32',
  bRowStride: 'u32',
  bColStride: 'u32',
  biasOffset: 'u32',
  biasRowStride: 'u32',
  biasColStride: 'u32',
  hasBias: 'u32',
  alpha: 'f32',
  beta: 'f32',
});

export function gemmWgsl(d: WgslDType, biasD: WgslDType, evenN: boolean): string {
  const packed = d === 'bf16' || d === 'f16';
  const store =
    packed && evenN
      ? `if (n + 1u < N) { st2_c(m * N + n, ${roundExpr(d, 'vals[0]')}, ${roundExpr(d, 'vals[1]')}); } else if (n < N) { st_c(m * N + n, ${roundExpr(d, 'vals[0]')}); }
       if (n + 3u < N) { st2_c(m * N + n + 2u, ${roundExpr(d, 'vals[2]')}, ${roundExpr(d, 'vals[3]')}); } else if (n + 2u < N) { st_c(m * N + n + 2u, ${roundExpr(d, 'vals[2]')}); }`
      : `for (var j = 0u; j < 4u; j++) { if (n + j < N) { st_c(m * N + n + j, ${roundExpr(d, 'vals[j]')}); } }`;
  return `${DTYPE_WGSL}
${GEMM_PARAMS.wgsl}
${outputBinding('c', 1, d)}
${inputBinding('a', 2, d)}
${inputBinding('b', 3, d)}
${inputBinding('bias', 4, biasD)}
var<workgroup> As: array<vec4<f32>, ${(GEMM_TILE * GEMM_TK) / 4}>;  // [k][m/4]
var<workgroup> Bs: array<vec4<f32>, ${(GEMM_TILE * GEMM_TK) / 4}>;  // [k][n/4]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let M = prm.M; let N = prm.N; let K = prm.K;
  let m0 = wid.y * ${GEMM_TILE}u; let n0 = wid.x * ${GEMM_TILE}u;
  var acc: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < K; k0 += ${GEMM_TK}u) {
    // 256 threads stage a 64×16 slice of A and a 16×64 slice of B, 4 values each.
    for (var q = 0u; q < 4u; q++) {
      let idx = li * 4u + q;            // 0..1023
      let kk = idx / ${GEMM_TILE}u; let mm = idx % ${GEMM_TILE}u;
      let gm = m0 + mm; let gk = k0 + kk; let gn = n0 + mm;
      var av = 0.0; var bv = 0.0;
      if (gm < M && gk < K) { av = ld_a(prm.aOffset + gm * prm.aRowStride + gk * prm.aColStride); }
      if (gn < N && gk < K) { bv = ld_b(prm.bOffset + gk * prm.bRowStride + gn * prm.bColStride); }
      As[kk * ${GEMM_TILE / 4}u + mm / 4u][mm % 4u] = av;
      Bs[kk * ${GEMM_TILE / 4}u + mm / 4u][mm % 4u] = bv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${GEMM_TK}u; kk++) {
      let av = As[kk * ${GEMM_TILE / 4}u + lid.y];
      let bv = Bs[kk * ${GEMM_TILE / 4}u + lid.x];
      acc[0] += av.x * bv; acc[1] += av.y * bv; acc[2] += av.z * bv; acc[3] += av.w * bv;
    }
    workgroupBarrier();
  }
  let alpha = prm.alpha; let beta = prm.beta;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y * 4u + i;
    let n = n0 + lid.x * 4u;
    if (m < M) {
      var vals: array<f32, 4>;
      for (var j = 0u; j < 4u; j++) {
        var v = alpha * acc[i][j];
        if (prm.hasBias == 1u && n + j < N) { v += beta * ld_bias(prm.biasOffset + m * prm.biasRowStride + (n + j) * prm.biasColStride); }
        vals[j] = v;
      }
      ${store}
    }
  }
}
`;
}
