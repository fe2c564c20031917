// NVFP4 quantization (vLLM's scaled_fp4_quant), emulated in two plan kernels over contiguous x
// (blocks of 16 consecutive elements) and the global scale S (element 0): the block scales, then
// the packed e2m1 pairs. Values are held in the run's dtype (an e4m3 scale and a byte 0–255 are exact
// in bf16). The arithmetic, and why it may differ from a B200 by an rcp.approx ulp, is the CPU
// twin's: src/graph/fp4.ts. The e4m3 cast is f8e4m3fn_bits (saturating), the reciprocals recip_rn.
//
// Bind layout (both):
//   @binding(0) prm: Nvfp4Params   @binding(1) out   @binding(2) inp   @binding(3) gscale
//   nvfp4_quant also @binding(4) sf: the block scales nvfp4_scale wrote

import { DTYPE_WGSL, inputBinding, outputBinding, type WgslDType } from './dtype.ts';
import { FP8_DECODE_WGSL, FP8_WGSL, RECIP_WGSL } from './fp8Quant.ts';
import { paramStruct } from './params.ts';

export const FP4_WG = 128;

/** n: the outputs (block scales, or packed bytes); both even-paired per thread. */
export const NVFP4_PARAMS = paramStruct('Nvfp4Params', { n: 'u32' });

/**
 * From a block's max|x| `m` and the global scale S (`ld_gscale(0u)`): its e4m3 scale's value
 * e4m3(S · (m · (1/6))), and the factor its elements are multiplied by, 1 / (sf · (1/S)) (0 for a
 * block of zeros), `inv_s` being recip_rn(S). Shared with the fused SiLU-mul + NVFP4 kernel (siluMul.ts).
 */
export const NVFP4_SCALE_WGSL = /* wgsl */ `
fn scale_of_max(m: f32) -> f32 { return f8e4m3fn_value(f8e4m3fn_bits(ld_gscale(0u) * (m * 0.16666667))); }
fn output_scale(m: f32, sf: f32, inv_s: f32) -> f32 {
  if (m == 0.0) { return 0.0; }
  return recip_rn(sf * inv_s);
}
`;

/** max|x| of block `blk` (16 elements from 16·blk), and its e4m3 scale's value. */
const BLOCK_WGSL = /* wgsl */ `${NVFP4_SCALE_WGSL}
fn block_max(blk: u32) -> f32 {
  var m = 0.0;
  for (var k = 0u; k < 16u; k++) { m = max(m, abs(ld_inp(blk * 16u + k))); }
  return m;
}
fn block_scale(blk: u32) -> f32 { return scale_of_max(block_max(blk)); }
`;

/** cvt.rn.satfinite.e2m1x2.f32 on one value: the 4-bit code (ties to even, ±6 past 5, NaN → 7). */
export const E2M1_WGSL = /* wgsl */ `
fn e2m1_code(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return 7u; }
  let a = bitcast<f32>(u & 0x7fffffffu);
  var m = 7u;
  if (a <= 0.25) { m = 0u; } else if (a < 0.75) { m = 1u; } else if (a <= 1.25) { m = 2u; }
  else if (a < 1.75) { m = 3u; } else if (a <= 2.5) { m = 4u; } else if (a < 3.5) { m = 5u; }
  else if (a <= 5.0) { m = 6u; }
  return m | ((u >> 28u) & 8u);
}
`;

const head = (input: WgslDType, output: WgslDType, scale: WgslDType) => `${DTYPE_WGSL}
${FP8_WGSL}
${FP8_DECODE_WGSL}
${RECIP_WGSL}
${E2M1_WGSL}
${NVFP4_PARAMS.wgsl}
${outputBinding('out', 1, output)}
${inputBinding('inp', 2, input)}
${inputBinding('gscale', 3, scale)}
${BLOCK_WGSL}`;

const MAIN = `@compute @workgroup_size(${FP4_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = (gid.x + gid.y * nwg.x * ${FP4_WG}u) * 2u;
  if (i >= prm.n) { return; }`;

/** The block scales: out[blk] = e4m3(S · (max|block| · (1/6))) as its value; two blocks a thread. */
export function nvfp4ScaleWgsl(input: WgslDType, output: WgslDType, scale: WgslDType): string {
  return `${head(input, output, scale)}
${MAIN}
  if (i + 1u < prm.n) { st2_out(i, block_scale(i), block_scale(i + 1u)); } else { st_out(i, block_scale(i)); }
}
`;
}

/**
 * The packed values: byte j = code(x[2j] · os) + 16 · code(x[2j+1] · os), os = 1 / (sf · (1/S)) of
 * the block (0 for a block of zeros); two bytes (four elements of one block) a thread.
 */
export function nvfp4PackWgsl(input: WgslDType, output: WgslDType, scale: WgslDType, sf: WgslDType): string {
  return `${head(input, output, scale)}
${inputBinding('sf', 4, sf)}
fn byte_at(j: u32, os: f32) -> f32 {
  return f32(e2m1_code(ld_inp(2u * j) * os) | (e2m1_code(ld_inp(2u * j + 1u) * os) << 4u));
}
${MAIN}
  let blk = i / 8u;
  let os = output_scale(block_max(blk), ld_sf(blk), recip_rn(ld_gscale(0u)));
  if (i + 1u < prm.n) { st2_out(i, byte_at(i, os), byte_at(i + 1u, os)); } else { st_out(i, byte_at(i, os)); }
}
`;
}

/** Workgroups for n outputs (2 per thread), split over y past the 65535 limit. */
export function nvfp4Dispatch(n: number): [number, number] {
  const groups = Math.max(1, Math.ceil(Math.ceil(n / 2) / FP4_WG));
  return groups <= 65535 ? [groups, 1] : [65535, Math.ceil(groups / 65535)];
}
