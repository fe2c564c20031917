// vLLM's silu_and_mul, and silu_and_mul_quant (the static FP8 quant in its store), as one dispatch
// (KERNELS.silu_and_mul): each output silu(gate) · up of one row of x ([rows, 2·cols], gate | up
// halves), rounded as the unfused map step of its dtype rounds it (the same MAP_FNS bodies: f16 is
// silu rounded to f16, then mul), then with a scale quantized as fp8_quant does (fp8Quant.ts: by
// recip_rn(scale), vLLM's clamp, the e4m3 value held in the run dtype). So it is bitwise the
// silu_and_mul → static quant pair on the same device.
//
// Two layouts of one kernel:
//   - packed: bf16 rows whose width, offset and row stride are whole vec4<u32> words (8 bf16), one
//     thread a word: gate and up read as one 16-byte load each, 8 outputs stored as one (as
//     rmsNormRows.ts reads its rows);
//   - scalar: any float dtype or width, one thread a pair of outputs (one whole packed word).
//
// Bind layout:
//   @binding(0) prm: SiluMulParams   @binding(1) out (contiguous [rows, cols])   @binding(2) x
//   @binding(3) scale (element 0), with the quant only

import { DTYPE_WGSL, inputBinding, outputBinding, roundExpr, type WgslDType } from './dtype.ts';
import { FP8_DECODE_WGSL, FP8_QUANT_CLAMP_WGSL, FP8_WGSL, RECIP_WGSL } from './fp8Quant.ts';
import { E2M1_WGSL, NVFP4_SCALE_WGSL } from './fp4Quant.ts';
import { NVFP4_BLOCK } from '../graph/fp4.ts';
import { grid1d } from './elementwise.ts';
import { paramStruct } from './params.ts';
import { MAP_FNS, SILU_MUL_BY_DTYPE, mapHelpersWgsl, type MapFn } from '../graph/opTable.ts';

export const SILU_MUL_WG = 256;

/** n: outputs (rows · cols); cols: the half width I; x's first element and row stride, in elements. */
export const SILU_MUL_PARAMS = paramStruct('SiluMulParams', {
  n: 'u32',
  cols: 'u32',
  xOffset: 'u32',
  xRowStride: 'u32',
});

export interface SiluMulLayout {
  rows: number;
  cols: number;
  xOffset: number;
  xRowStride: number;
}

/** Whether the packed layout takes these rows: bf16, every row start and the half width whole words. */
export function siluMulPacked(dtype: WgslDType, l: SiluMulLayout): boolean {
  return dtype === 'bf16' && l.cols % 8 === 0 && l.xOffset % 8 === 0 && l.xRowStride % 8 === 0;
}

/** Workgroups: one thread per word of 8 outputs (packed) or per pair. */
export function siluMulGrid(l: SiluMulLayout, packed: boolean): [number, number] {
  return grid1d(Math.ceil((l.rows * l.cols) / (packed ? 8 : 2)), SILU_MUL_WG);
}

/** `fn product(g, u) -> f32`: the unfused step's value rounded to the dtype, quantized when `quant`. */
function productWgsl(dtype: WgslDType, quant: boolean): string {
  const fn = (f: MapFn) => `${mapHelpersWgsl(MAP_FNS[f])}
fn ${f}_value(a: f32, b: f32, s: f32) -> f32 { return ${MAP_FNS[f].wgsl}; }`;
  let body: string;
  let fns: string;
  if (dtype === 'bf16' || dtype === 'f32') {
    const f = SILU_MUL_BY_DTYPE[dtype];
    fns = fn(f);
    body = roundExpr(dtype, `${f}_value(g, u, 0.0)`);
  } else {
    // f16: silu into an f16 storage, then the product (lower/elementwise.ts, SILU_MUL_BY_DTYPE).
    fns = `${fn('silu')}\n${fn('mul')}`;
    body = roundExpr(dtype, `mul_value(${roundExpr(dtype, 'silu_value(g, 0.0, 0.0)')}, u, 0.0)`);
  }
  const quantFns = quant ? `${FP8_WGSL}\n${FP8_DECODE_WGSL}\n${RECIP_WGSL}\n${FP8_QUANT_CLAMP_WGSL}` : '';
  const value = quant ? `f8e4m3fn_value(quant(${body} * qinv))` : body;
  return `${fns}
${quantFns}
var<private> qinv: f32;
fn product(g: f32, u: f32) -> f32 { return ${value}; }`;
}

/** The kernel for x of `dtype` (out the same), with the quant where `scale` has a dtype. */
export function siluMulWgsl(dtype: WgslDType, scale: WgslDType | null, packed: boolean): string {
  if (packed && dtype !== 'bf16') throw new Error(`siluMulWgsl: the packed layout is bf16's, not ${dtype}'s`);
  const head = `${DTYPE_WGSL}
${SILU_MUL_PARAMS.wgsl}
${productWgsl(dtype, scale !== null)}
${scale ? inputBinding('scale', 3, scale) : ''}`;
  // 1 / scale (recip_rn's 26-step division) once a workgroup, not once a thread.
  const start = `let t = gid.x + gid.y * nwg.x * ${SILU_MUL_WG}u;
  let n = prm.n;
  let cols = prm.cols;
  ${scale ? 'if (li == 0u) { wqinv = recip_rn(ld_scale(0u)); }\n  workgroupBarrier();\n  qinv = wqinv;' : ''}`;
  const main = `${scale ? 'var<workgroup> wqinv: f32;' : ''}
@compute @workgroup_size(${SILU_MUL_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {`;
  if (packed)
    return `${head}
@group(0) @binding(1) var<storage, read_write> out: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> x: array<vec4<u32>>;
// One word of gate and one of up: the two bf16 of each, low half first.
fn word(g: u32, u: u32) -> u32 {
  return bf16_bits(product(bf16_lo(g), bf16_lo(u))) | (bf16_bits(product(bf16_hi(g), bf16_hi(u))) << 16u);
}
${main}
  ${start}
  let cw = cols / 8u;
  if (t >= n / 8u) { return; }
  let row = t / cw;
  let at = (prm.xOffset + row * prm.xRowStride) / 8u + t % cw;
  let g = x[at];
  let u = x[at + cw];
  out[t] = vec4<u32>(word(g.x, u.x), word(g.y, u.y), word(g.z, u.z), word(g.w, u.w));
}
`;
  return `${head}
${outputBinding('out', 1, dtype)}
${inputBinding('x', 2, dtype)}
fn value(i: u32) -> f32 {
  let at = prm.xOffset + (i / prm.cols) * prm.xRowStride + i % prm.cols;
  return product(ld_x(at), ld_x(at + prm.cols));
}
${main}
  ${start}
  let i = 2u * t;
  if (i + 1u < n) { st2_out(i, value(i), value(i + 1u)); }
  else if (i < n) { st_out(i, value(i)); }
}
`;
}

/**
 * silu_and_mul_nvfp4 (KERNELS.silu_and_mul_nvfp4): blocks of 16 outputs, the block max and scale
 * in between. n: blocks (rows · cols / 16); cols: I; scaleCols: blocks a row (the swizzled layout's
 * column count).
 */
export const SILU_MUL_NVFP4_PARAMS = paramStruct('SiluMulNvfp4Params', {
  n: 'u32',
  cols: 'u32',
  xOffset: 'u32',
  xRowStride: 'u32',
  scaleCols: 'u32',
});

/** Workgroups: one thread per block of 16 outputs. */
export function siluMulNvfp4Grid(l: SiluMulLayout): [number, number] {
  return grid1d((l.rows * l.cols) / NVFP4_BLOCK, SILU_MUL_WG);
}

/**
 * One thread a block of 16 outputs of a row: its products (as the silu_and_mul kernel stores them),
 * max|·| in index order, the e4m3 scale and the element factor (fp4Quant.ts's functions, so the
 * same arithmetic as nvfp4_scale and nvfp4_quant), the scale stored at its row-major or swizzled
 * place, the 8 packed bytes as 4 pairs. `packed`: bf16 rows of whole words, read 4 words a block.
 *   @binding(0) prm: SiluMulNvfp4Params   @binding(1) out (bytes)   @binding(2) sf (block scales)
 *   @binding(3) x   @binding(4) gscale (element 0)
 */
export function siluMulNvfp4Wgsl(
  dtype: WgslDType,
  gscale: WgslDType,
  swizzled: boolean,
  packed: boolean,
): string {
  if (packed && dtype !== 'bf16')
    throw new Error(`siluMulNvfp4Wgsl: the packed layout is bf16's, not ${dtype}'s`);
  const load = packed
    ? `let w = at / 8u;
  let cw = cols / 8u;
  for (var q = 0u; q < 2u; q++) {
    let g = x[w + q];
    let u = x[w + cw + q];
    for (var k = 0u; k < 4u; k++) {
      p[8u * q + 2u * k] = product(bf16_lo(g[k]), bf16_lo(u[k]));
      p[8u * q + 2u * k + 1u] = product(bf16_hi(g[k]), bf16_hi(u[k]));
    }
  }`
    : `for (var k = 0u; k < 16u; k++) { p[k] = product(ld_x(at + k), ld_x(at + cols + k)); }`;
  // vLLM's cvt_quant_to_fp4_get_sf_out_offset (src/graph/fp4.ts swizzledScaleOffset).
  const scaleAt = swizzled
    ? `((row >> 7u) * ((prm.scaleCols + 3u) / 4u) + (cb >> 2u)) * 512u + (row & 31u) * 16u + ((row >> 5u) & 3u) * 4u + (cb & 3u)`
    : 't';
  return `${DTYPE_WGSL}
${FP8_WGSL}
${FP8_DECODE_WGSL}
${RECIP_WGSL}
${E2M1_WGSL}
${SILU_MUL_NVFP4_PARAMS.wgsl}
${outputBinding('out', 1, dtype)}
${outputBinding('sf', 2, dtype)}
${packed ? '@group(0) @binding(3) var<storage, read> x: array<vec4<u32>>;' : inputBinding('x', 3, dtype)}
${inputBinding('gscale', 4, gscale)}
${NVFP4_SCALE_WGSL}
${productWgsl(dtype, false)}
fn byte_of(a: f32, b: f32, os: f32) -> f32 { return f32(e2m1_code(a * os) | (e2m1_code(b * os) << 4u)); }
var<workgroup> wqinv: f32;
@compute @workgroup_size(${SILU_MUL_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let t = gid.x + gid.y * nwg.x * ${SILU_MUL_WG}u;
  // 1 / S once a workgroup.
  if (li == 0u) { wqinv = recip_rn(ld_gscale(0u)); }
  workgroupBarrier();
  if (t >= prm.n) { return; }
  let cols = prm.cols;
  let row = t / prm.scaleCols;
  let cb = t % prm.scaleCols;
  let at = prm.xOffset + row * prm.xRowStride + cb * 16u;
  var p: array<f32, 16>;
  ${load}
  var m = 0.0;
  for (var k = 0u; k < 16u; k++) { m = max(m, abs(p[k])); }
  let s = scale_of_max(m);
  let os = output_scale(m, s, wqinv);
  st_sf(${scaleAt}, s);
  for (var j = 0u; j < 4u; j++) {
    st2_out(8u * t + 2u * j, byte_of(p[4u * j], p[4u * j + 1u], os), byte_of(p[4u * j + 2u], p[4u * j + 3u], os));
  }
}
`;
}
