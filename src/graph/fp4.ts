// NVFP4 (vLLM's scaled_fp4_quant, csrc/quantization/fp4/nvfp4_quant_kernels.cu over nvfp4_utils.cuh
// cvt_warp_fp16_to_fp4): float4_e2m1fn values, two per byte (torch.float4_e2m1fn_x2, the even
// element in the low nibble), one e4m3 scale per 16 consecutive elements of a row, and one f32
// global scale S per tensor (vLLM sets S = 448 · 6 / amax). Per block of 16:
//   SF = S · (max|block| · (1/6))                     f32, each product rounded
//   sf8 = e4m3(SF)                                    __nv_fp8_e4m3's saturating cast: the stored scale
//   outputScale = SF ≠ 0 ? 1 / (sf8 · (1/S)) : 0      f32
//   each element: e2m1(x · outputScale)               cvt.rn.satfinite.e2m1x2.f32
// e2m1 is 1 sign, 2 exponent, 1 mantissa bit: magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6 (codes 0–7, the
// sign bit 8); the cast rounds to nearest, ties to the even code, saturating at ±6; a NaN becomes +6.
// The kernel's reciprocals are rcp.approx.ftz (within an ulp of 1/x on NVIDIA's hardware); here they
// are correctly rounded: an element whose product lands within that ulp of an e2m1 rounding
// boundary may differ from a B200's by one e2m1 step. CPU twin of src/wgsl/fp4Quant.ts.

import { f8e4m3fnBits, f8e4m3fnValue } from './fp8.ts';

/** Elements per NVFP4 block scale. */
export const NVFP4_BLOCK = 16;
/** The largest e2m1 magnitude. */
export const E2M1_MAX = 6;
/** The e2m1 magnitudes by code (0–7). */
export const E2M1_VALUES = [0, 0.5, 1, 1.5, 2, 3, 4, 6] as const;

/** The 4-bit e2m1 code nearest to x (ties to the even code, saturating, −0 keeps its sign, NaN → +6). */
export function e2m1Code(x: number): number {
  if (Number.isNaN(x)) return 7;
  const a = Math.abs(x);
  const m =
    a <= 0.25 ? 0 : a < 0.75 ? 1 : a <= 1.25 ? 2 : a < 1.75 ? 3 : a <= 2.5 ? 4 : a < 3.5 ? 5 : a <= 5 ? 6 : 7;
  return m | (x < 0 || Object.is(x, -0) ? 8 : 0);
}

/** The value of a 4-bit e2m1 code. */
export function e2m1Value(code: number): number {
  const v = E2M1_VALUES[code & 7]!;
  return code & 8 ? -v : v;
}

/** A byte of float4_e2m1fn_x2 as its two values: [low nibble (even element), high nibble]. */
export function unpackE2m1x2(byte: number): [number, number] {
  return [e2m1Value(byte & 15), e2m1Value(byte >>> 4)];
}

/** The block's e4m3 scale, as its value: e4m3(S · (max|block| · (1/6))), saturating at 448. */
export function nvfp4BlockScale(blockMax: number, globalScale: number): number {
  const sf = Math.fround(Math.fround(globalScale) * Math.fround(blockMax * Math.fround(1 / E2M1_MAX)));
  return f8e4m3fnValue(f8e4m3fnBits(sf));
}

/** 1 / (sf8 · (1/S)): the factor each element of the block is multiplied by (0 for a block of zeros). */
export function nvfp4OutputScale(blockMax: number, sf8: number, globalScale: number): number {
  if (blockMax === 0) return 0;
  return Math.fround(1 / Math.fround(sf8 * Math.fround(1 / Math.fround(globalScale))));
}

/**
 * scaled_fp4_quant of a tensor's values (rows of `cols` elements, cols a multiple of 16): the packed
 * bytes (cols / 2 a row) and the e4m3 block scales (cols / 16 a row, row-major) as values.
 */
export function scaledFp4Quant(
  x: ArrayLike<number>,
  globalScale: number,
): { packed: Float64Array; scales: Float64Array } {
  const blocks = x.length / NVFP4_BLOCK;
  const packed = new Float64Array(x.length / 2),
    scales = new Float64Array(blocks);
  for (let blk = 0; blk < blocks; blk++) {
    let max = 0;
    for (let i = 0; i < NVFP4_BLOCK; i++) max = Math.max(max, Math.abs(x[blk * NVFP4_BLOCK + i]!));
    const sf8 = nvfp4BlockScale(max, globalScale);
    scales[blk] = sf8;
    const os = nvfp4OutputScale(max, sf8, globalScale);
    for (let i = 0; i < NVFP4_BLOCK; i += 2) {
      const at = blk * NVFP4_BLOCK + i;
      const lo = e2m1Code(Math.fround(x[at]! * os)),
        hi = e2m1Code(Math.fround(x[at + 1]! * os));
      packed[at / 2] = lo | (hi << 4);
    }
  }
  return { packed, scales };
}

/**
 * An NVFP4 GEMM operand as values: rows of packed bytes (cols / 2 a row, as scaledFp4Quant writes
 * them) and their block scales (cols / 16 a row, row-major), each element e2m1(nibble) ·
 * e4m3(scale) (exact in f32: 2 by 4 significant bits). A scale is read as its e4m3 value.
 */
export function nvfp4Dequant(packed: ArrayLike<number>, scales: ArrayLike<number>): Float64Array {
  const out = new Float64Array(packed.length * 2);
  for (let i = 0; i < out.length; i++) {
    const byte = packed[i >> 1]!;
    const sf = f8e4m3fnValue(f8e4m3fnBits(scales[Math.floor(i / NVFP4_BLOCK)]!));
    out[i] = e2m1Value(i & 1 ? byte >>> 4 : byte & 15) * sf;
  }
  return out;
}

/**
 * vLLM's cutlass_scaled_fp4_mm as the nvfp4_gemm kernel computes it (CPU twin of
 * src/wgsl/fp4Gemm.ts): A [M, K] and B [N, K] decoded (nvfp4Dequant), out[m, n] = f32(alpha ·
 * Σ_k A[m, k] · B[n, k]) with the sum in f32 in k order (each product is exact), before the cast
 * to the output dtype.
 */
export function nvfp4Gemm(
  A: ArrayLike<number>,
  B: ArrayLike<number>,
  K: number,
  alpha: number,
): Float64Array {
  const M = A.length / K,
    N = B.length / K;
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc = Math.fround(acc + A[m * K + k]! * B[n * K + k]!);
      out[m * N + n] = Math.fround(acc * Math.fround(alpha));
    }
  return out;
}

// --- vLLM's swizzled block-scale layout ---------------------------------------------------------
// scaled_fp4_quant writes its block scales, and CUTLASS's block-scaled GEMM reads them, in 128 × 4
// tiles: the [rows, cols] scales (cols = K / 16) padded with zeros to [roundUp(rows, 128),
// roundUp(cols, 4)], each tile of 128 rows × 4 columns stored as [32, 4, 4] (row % 32, row / 32 % 4,
// col % 4), the tiles in row-major order (vLLM csrc/quantization/fp4/nvfp4_utils.cuh
// cvt_quant_to_fp4_get_sf_out_offset: "SF layout [numMTiles, numKTiles, 32 (mTile), 4 (mTile),
// 4 (kTile)]"; the same permutation as swizzle_blockscale in vLLM's Python, which reshapes the
// padded scales to [rows/128, 4, 32, cols/4, 4] and permutes them (0, 3, 2, 1, 4)).

/** Rows and columns of a tile of the swizzled layout. */
export const SWIZZLE_TILE_ROWS = 128;
export const SWIZZLE_TILE_COLS = 4;

/** The padded [rows, cols] the swizzled layout stores for `rows` × `cols` scales. */
export function swizzledScaleDims(rows: number, cols: number): [number, number] {
  const up = (x: number, m: number) => Math.ceil(x / m) * m;
  return [up(rows, SWIZZLE_TILE_ROWS), up(cols, SWIZZLE_TILE_COLS)];
}

/**
 * Where the scale of (row, col) lies in the swizzled layout of `cols`-column scales: vLLM's
 * cvt_quant_to_fp4_get_sf_out_offset, mTile · (numKTiles · 512) + kTile · 512 + (row % 32) · 16 +
 * (row / 32 % 4) · 4 + col % 4, numKTiles = ⌈cols / 4⌉.
 */
export function swizzledScaleOffset(row: number, col: number, cols: number): number {
  const kTiles = Math.ceil(cols / SWIZZLE_TILE_COLS);
  const mTile = row >> 7,
    outerM = row & 31,
    innerM = (row >> 5) & 3,
    kTile = col >> 2,
    innerK = col & 3;
  return (mTile * kTiles + kTile) * 512 + outerM * 16 + innerM * 4 + innerK;
}
