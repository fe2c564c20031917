// The dynamic FP8 quant of rows in one dispatch (KERNELS.fp8_quant_rows): one workgroup per row
// (a token, or a group of a token's columns), the row's max|x| by a workgroup tree reduction, its
// scale, then every element divided by it, clamped and cast to e4m3fn — vLLM's per-token and
// per-token-group quant kernels (csrc/quantization/w8a8/fp8/common.cu
// dynamic_per_token_scaled_fp8_quant_kernel, per_token_group_quant.cu) do the same in one launch.
// A max is order-free (NaN wins either way), so the tree is bitwise the index-order reduce_rows;
// every other step is the MAP_FNS body the unfused steps run (abs, maxs, divs, div, mins,
// to_f8e4m3fn), so the kernel rounds at exactly the points the pair of steps does.
//
// Bind layout:
//   @binding(0) prm: Fp8QuantRowsParams  (FP8_QUANT_ROWS_PARAMS below)
//   @binding(1) out                      the quantized values, held in the output dtype
//   @binding(2) scale                    one f32 scale per row
//   @binding(3) x                        the contiguous rows

import { DTYPE_WGSL, inputBinding, outputBinding, type WgslDType } from './dtype.ts';
import { paramStruct } from './params.ts';
import { MAP_FNS, MAP_HELPERS } from '../graph/opTable.ts';

export const FP8_QUANT_ROWS_PARAMS = paramStruct('Fp8QuantRowsParams', {
  rows: 'u32',
  cols: 'u32',
  /** The absmax's floor (per_token_group_fp8_quant's eps; 0: none). */
  eps: 'f32',
  /** The FP8 range: the scale is absmax / max, the values are clamped to ±max. */
  max: 'f32',
  /** The scale's floor (vLLM's min_scaling_factor; 0: none). */
  minScale: 'f32',
});

/** Threads per row: a power of two from 32 to 256, two elements a thread where the row allows. */
export function fp8QuantRowsThreads(cols: number): number {
  let t = 32;
  while (t < 256 && 2 * t < cols) t *= 2;
  return t;
}

/** Workgroups for `rows` rows, split over y past the 65535 limit. */
export function fp8QuantRowsGrid(rows: number): [number, number] {
  return rows <= 65535 ? [Math.max(1, rows), 1] : [65535, Math.ceil(rows / 65535)];
}

/** A map function's WGSL body as a function of (a, b, s). */
const mapFn = (name: string, fn: keyof typeof MAP_FNS) =>
  `fn ${name}(a: f32, b: f32, s: f32) -> f32 { return ${MAP_FNS[fn].wgsl}; }`;

export function fp8QuantRowsWgsl(x: WgslDType, out: WgslDType, tpr: number): string {
  return `${DTYPE_WGSL}
${MAP_HELPERS.div_rn.wgsl}
${MAP_HELPERS.f8e4m3fn.wgsl}
${mapFn('m_abs', 'abs')}
${mapFn('m_maxs', 'maxs')}
${mapFn('m_mins', 'mins')}
${mapFn('m_divs', 'divs')}
${mapFn('m_div', 'div')}
${mapFn('m_fp8', 'to_f8e4m3fn')}
${FP8_QUANT_ROWS_PARAMS.wgsl}
${outputBinding('out', 1, out)}
${outputBinding('scale', 2, 'f32')}
${inputBinding('x', 3, x)}
var<workgroup> red: array<f32, ${tpr}>;
// reduce_rows' max: NaN wins, else the larger.
fn amax(m: f32, v: f32) -> f32 { return select(m, v, m == m && (v > m || v != v)); }
fn quant(v: f32, s: f32) -> f32 {
  return m_fp8(m_mins(m_maxs(m_div(v, s, 0.0), 0.0, -prm.max), 0.0, prm.max), 0.0, 0.0);
}

@compute @workgroup_size(${tpr})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let row = wid.x + wid.y * nwg.x;
  let rows = prm.rows;
  let cols = prm.cols;
  let base = row * cols;
  var m = 0.0;
  if (row < rows) {
    for (var j = li; j < cols; j += ${tpr}u) { m = amax(m, m_abs(ld_x(base + j), 0.0, 0.0)); }
  }
  red[li] = m;
  workgroupBarrier();
${Array.from({ length: Math.log2(tpr) }, (_, k) => tpr >> (k + 1))
  .map((h) => `  if (li < ${h}u) { red[li] = amax(red[li], red[li + ${h}u]); }\n  workgroupBarrier();`)
  .join('\n')}
  if (row >= rows) { return; }
  // The unfused steps' scale: maxs(divs(maxs(absmax, eps), max), minScale), f32.
  let s = m_maxs(m_divs(m_maxs(red[0], 0.0, prm.eps), 0.0, prm.max), 0.0, prm.minScale);
  if (li == 0u) { st_scale(row, s); }
  // Two elements a thread; a pair that is one whole word of the output is stored as one.
  for (var j = 2u * li; j < cols; j += ${2 * tpr}u) {
    let i = base + j;
    let a = quant(ld_x(i), s);
    if (j + 1u < cols) {
      let b = quant(ld_x(i + 1u), s);
      if ((i & 1u) == 0u) { st2_out(i, a, b); } else { st_out(i, a); st_out(i + 1u, b); }
    } else { st_out(i, a); }
  }
}
`;
}
