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
//   @binding(2) scale                    one f32 scale per row (or transposed: scaleGroups)
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
  /**
   * Rows per token where the scales are stored transposed ([groups, tokens], vLLM's column-major
   * group scales: row i's at (i % groups) · tokens + i / groups); 1 stores them as the rows.
   */
  scaleGroups: 'u32',
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

/** WGSL expressions of a row quant's rule (the absmax floor, the FP8 range, the scale floor). */
export interface RowQuantRule {
  eps: string;
  max: string;
  minScale: string;
}

/** An f32 as a WGSL expression of exactly its bits. */
export const f32Bits = (x: number): string =>
  `bitcast<f32>(0x${new Uint32Array(Float32Array.of(x).buffer)[0]!.toString(16)}u)`;

/**
 * The row quant's functions, shared with the norm + dynamic quant kernel (rmsNormRows.ts): `amax`
 * (reduce_rows' max: NaN wins), `row_scale` (the unfused steps' scale of an absmax), `row_recip`
 * (1 / scale where the fast path may use it, else 0), `quant` (the unfused steps' value) and
 * `quant4`, four at a time, mostly without a division (`quant4_fast` leaves the rest to its caller).
 * v · r is within 64 ulps of v / s (r = 1 / s, WGSL's division within 2.5 ulps, then a correctly
 * rounded product), so where it lies in [2^-6, 448) and farther than that from an e4m3 midpoint
 * (low 20 bits 0x80000), v / s rounds to the same e4m3 value: v · r rounded to 3 mantissa bits
 * (to_f8e4m3fn's normal branch). Nearer a midpoint M (about 1 value in 250 of a norm's bf16 output,
 * whose quotients are ratios of short integers, exact midpoints among them) `near4` compares v with
 * M · s exactly in integers: the f32 quotient is M, whose ties to_f8e4m3fn sends to even, unless
 * v / s is more than half an ulp from M. With the FP8 range 448 a quotient past it clamps to 448,
 * and ±0 is its own value (for a scale r covers); the correctly rounded division runs only for the
 * rest (an e4m3 subnormal quotient, a subnormal, infinite or NaN v, another range).
 */
export function rowQuantWgsl(rule: RowQuantRule): string {
  return `${MAP_HELPERS.div_rn.wgsl}
${MAP_HELPERS.f8e4m3fn.wgsl}
${mapFn('m_abs', 'abs')}
${mapFn('m_maxs', 'maxs')}
${mapFn('m_mins', 'mins')}
${mapFn('m_divs', 'divs')}
${mapFn('m_div', 'div')}
${mapFn('m_fp8', 'to_f8e4m3fn')}
// reduce_rows' max: NaN wins, else the larger.
fn amax(m: f32, v: f32) -> f32 { return select(m, v, m == m && (v > m || v != v)); }
const QUANT_SLOW = 0xffffffffu;
// The unfused steps' scale: maxs(divs(maxs(absmax, eps), max), minScale), f32.
fn row_scale(m: f32) -> f32 {
  return m_maxs(m_divs(m_maxs(m, 0.0, ${rule.eps}), 0.0, ${rule.max}), 0.0, ${rule.minScale});
}
// 1 / s for a scale in [2^-125, 2^123] with an FP8 range of at least 448; else 0 (no fast path).
fn row_recip(s: f32) -> f32 {
  let e = bitcast<u32>(s) >> 23u;
  if (e < 2u || e > 250u || !(${rule.max} >= 448.0)) { return 0.0; }
  return 1.0 / s;
}
fn quant(v: f32, s: f32) -> f32 {
  return m_fp8(m_mins(m_maxs(m_div(v, s, 0.0), 0.0, -${rule.max}), 0.0, ${rule.max}), 0.0, 0.0);
}
// The e4m3 bits (sign aside) of v / s for |v · r| = a within 64 ulps of the midpoint M between its
// two e4m3 neighbours: V = |v| and P = M · s in units of 2^(e(M) - 131 + e(s) - 150), both exact
// integers under 2^30 (M = m5 · 2^(e(M) - 131) with m5 odd of 5 bits, v / s ≈ M puts |v|'s
// significand 4 or 5 bits left of P's); the f32 quotient is M unless |V - P| passes half an ulp of M
// times s, which is ms / 2^20 in those units.
fn near4(v: vec4<f32>, s: f32, a: vec4<u32>) -> vec4<u32> {
  let vb = bitcast<vec4<u32>>(v);
  let sb = bitcast<u32>(s);
  let ms = (sb & 0x7fffffu) | 0x800000u;
  let k = ((vb >> vec4<u32>(23u)) & vec4<u32>(0xffu)) + vec4<u32>(131u - (sb >> 23u)) - (a >> vec4<u32>(23u));
  let V = bitcast<vec4<i32>>(((vb & vec4<u32>(0x7fffffu)) | vec4<u32>(0x800000u)) << k);
  let P = bitcast<vec4<i32>>((((a >> vec4<u32>(19u)) & vec4<u32>(0xeu)) | vec4<u32>(0x11u)) * ms);
  let d = bitcast<vec4<u32>>(min(abs(V - P), vec4<i32>(16)));
  let lo = a & vec4<u32>(0xfff00000u);
  let hi = lo + vec4<u32>(0x100000u);
  let tie = select(lo, hi, (lo & vec4<u32>(0x100000u)) != vec4<u32>(0u));
  return select(tie, select(lo, hi, V > P), (d << vec4<u32>(20u)) > vec4<u32>(ms));
}
// quant of four values where v · r (near4 near a midpoint) gives it; QUANT_SLOW (no value of
// quant's: a NaN's bits) where it takes the division.
fn quant4_fast(v: vec4<f32>, s: f32, r: f32) -> vec4<u32> {
  let u = bitcast<vec4<u32>>(v * r);
  let a = u & vec4<u32>(0x7fffffffu);
  let vb = bitcast<vec4<u32>>(v);
  let ev = (vb >> vec4<u32>(23u)) & vec4<u32>(0xffu);
  let top = select(0x43e00000u, 0x7f800000u, ${rule.max} == 448.0);
  let zero = ((vb & vec4<u32>(0x7fffffffu)) == vec4<u32>(0u)) & vec4<bool>(r > 0.0);
  let ok = zero | ((ev != vec4<u32>(0u)) & (ev != vec4<u32>(0xffu)) & (a >= vec4<u32>(0x3c800000u)) & (a < vec4<u32>(top)));
  let near = ok & (((a & vec4<u32>(0xfffffu)) - vec4<u32>(0x7ffc0u)) <= vec4<u32>(128u));
  var nrm = (a + vec4<u32>(0x7ffffu) + ((a >> vec4<u32>(20u)) & vec4<u32>(1u))) & vec4<u32>(0xfff00000u);
  if (any(near)) { nrm = select(nrm, near4(v, s, a), near); }
  return select(vec4<u32>(QUANT_SLOW), (u & vec4<u32>(0x80000000u)) | min(nrm, vec4<u32>(0x43e00000u)), ok);
}
// Component k of v, by selects: indexing a vector by a runtime index can move it to local memory.
fn pick4(v: vec4<u32>, k: u32) -> u32 { return select(select(select(v.x, v.y, k == 1u), v.z, k == 2u), v.w, k == 3u); }
// quant of four values: quant4_fast, the division where it left QUANT_SLOW (one call site).
fn quant4(v: vec4<f32>, s: f32, r: f32) -> vec4<f32> {
  var q = quant4_fast(v, s, r);
  let slow = q == vec4<u32>(QUANT_SLOW);
  if (any(slow)) {
    for (var k = 0u; k < 4u; k++) {
      let at = vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(k);
      if (any(slow & at)) { q = select(q, vec4<u32>(bitcast<u32>(quant(bitcast<f32>(pick4(bitcast<vec4<u32>>(v), k)), s))), at); }
    }
  }
  return bitcast<vec4<f32>>(q);
}`;
}

export function fp8QuantRowsWgsl(x: WgslDType, out: WgslDType, tpr: number): string {
  return `${DTYPE_WGSL}
${rowQuantWgsl({ eps: 'prm.eps', max: 'prm.max', minScale: 'prm.minScale' })}
${FP8_QUANT_ROWS_PARAMS.wgsl}
${outputBinding('out', 1, out)}
${outputBinding('scale', 2, 'f32')}
${inputBinding('x', 3, x)}
var<workgroup> red: array<f32, ${tpr}>;

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
  let s = row_scale(red[0]);
  let r = row_recip(s);
  let g = prm.scaleGroups;
  if (li == 0u) { st_scale((row % g) * (rows / g) + row / g, s); }
  // Two elements a thread; a pair that is one whole word of the output is stored as one.
  for (var j = 2u * li; j < cols; j += ${2 * tpr}u) {
    let i = base + j;
    let two = j + 1u < cols;
    let q = quant4(vec4<f32>(ld_x(i), select(0.0, ld_x(i + 1u), two), 0.0, 0.0), s, r);
    if (two) {
      if ((i & 1u) == 0u) { st2_out(i, q.x, q.y); } else { st_out(i, q.x); st_out(i + 1u, q.y); }
    } else { st_out(i, q.x); }
  }
}
`;
}
