// RMSNorm family, one workgroup per row: `rms_norm`, `_C.fused_add_rms_norm` and
// `flashinfer_trtllm_fused_allreduce_norm` (pattern 1) as ONE kernel over the gathered peer
// buffers. The row stays in registers between the sum of squares and the scaling.
// bf16 rows in whole words of 8 (the layer sizes) run the packed word-row kernels of
// rmsNormRows.ts instead; this kernel serves f32, f16 and unaligned rows.
//
// Bind layout:
//   @binding(0) prm: NormParams   (NORM_PARAMS below: rows, cols, offsets and row strides, eps, ranks, rowStart, rankSlotStride)
//   @binding(1) out               normed output, contiguous [rows, cols]
//   @binding(2) resOut            new residual (add / allreduce modes), contiguous
//   @binding(3) x                 input rows (allreduce mode: the ranks' rows back to back, rank q's at q · rankSlotStride)
//   @binding(4) res               residual rows (add / allreduce modes)
//   @binding(5) w                 the norm weight
//
// Semantics (DESIGN "Op semantics"), f32 accumulation:
//   rms:       y = r(r(x · rsqrt(mean(x²) + eps)) · w)
//   add:       z = r(x + res) → resOut;   y = r(r(z · rsqrt(mean(z²) + eps)) · w)
//   allreduce: ar = r(Σ_rank x_rank) in rank order; z = r(ar + res) → resOut; y = r(z · rsqrt(…) · w)  (one rounding)
//              normRounding 'as-unfused': y = r(r(z · rsqrt(…)) · w), bit for bit the add mode after an all-reduce

import { DTYPE_WGSL, inputBinding, outputBinding, roundExpr, type WgslDType } from './dtype.ts';
import { paramStruct, type ParamStruct, type ParamValues } from './params.ts';
import type { FusedNormRounding } from '../graph/opTable.ts';
import { normQuantWgsl } from './normQuant.ts';

export type NormMode = 'rms' | 'add' | 'allreduce';

/** The norm kernels' parameters (both layouts, rmsNorm.ts and rmsNormRows.ts), by name. */
export const NORM_PARAMS = paramStruct('NormParams', {
  rows: 'u32',
  cols: 'u32',
  xOffset: 'u32',
  xRowStride: 'u32',
  resOffset: 'u32',
  resRowStride: 'u32',
  wOffset: 'u32',
  eps: 'f32',
  /** The all-reduce form: how many ranks' inputs are gathered, which output row this dispatch starts at, and the stride between ranks' slots. */
  ranks: 'u32',
  rowStart: 'u32',
  rankSlotStride: 'u32',
});
export type NormParams = ParamValues<typeof NORM_PARAMS extends ParamStruct<infer F> ? F : never>;

/** Threads per row: enough that each holds at most a few vec4s of the row (2880 bf16: 192 × 2). */
export function normWorkgroup(cols: number, vec: number): { wg: number; items: number } {
  const chunks = Math.ceil(cols / vec);
  const items = Math.max(1, Math.ceil(chunks / 256));
  return { wg: Math.min(256, Math.ceil(Math.ceil(chunks / items) / 32) * 32), items };
}

/** Elements per load: 8 bf16 or 4 f32 as one vec4 when rows, offsets and strides allow, else 1. */
export function normVector(d: WgslDType, cols: number, offsets: number[], strides: number[]): number {
  const v = d === 'bf16' || d === 'f16' ? 8 : 4;
  return [cols, ...offsets, ...strides].every((x) => x % v === 0) ? v : 1;
}

export function rmsNormWgsl(
  mode: NormMode,
  d: WgslDType,
  cols: number,
  vec: number,
  normRounding: FusedNormRounding = 'once',
  quantScale?: WgslDType,
): string {
  const packed = d === 'bf16' || d === 'f16';
  const vectorized = vec > 1;
  const { wg: WG, items } = normWorkgroup(cols, vec);
  const r = (e: string) => roundExpr(d, e);
  const vin = (name: string, b: number) =>
    vectorized
      ? `@group(0) @binding(${b}) var<storage, read> ${name}: array<${packed ? 'vec4<u32>' : 'vec4<f32>'}>;`
      : inputBinding(name, b, d);
  const vout = (name: string, b: number) =>
    vectorized
      ? `@group(0) @binding(${b}) var<storage, read_write> ${name}: array<${packed ? 'vec4<u32>' : 'vec4<f32>'}>;`
      : outputBinding(name, b, d);
  const unpack =
    d === 'bf16'
      ? (w: string) => [`bf16_lo(${w})`, `bf16_hi(${w})`]
      : (w: string) => [`unpack2x16float(${w}).x`, `unpack2x16float(${w}).y`];
  // load(name, e) fills v[0..vec) from element e; store(name, e) writes v[0..vec) at element e.
  const load = (name: string, e: string) => {
    if (!vectorized) return `v[0] = ld_${name}(${e});`;
    if (!packed) return `{ let q = ${name}[(${e}) / 4u]; v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w; }`;
    const parts = ['x', 'y', 'z', 'w'].flatMap((c) => unpack(`q.${c}`));
    return `{ let q = ${name}[(${e}) / 8u]; ${parts.map((p, i) => `v[${i}] = ${p};`).join(' ')} }`;
  };
  const pack2 = (a: string, b: string) =>
    d === 'bf16' ? `(bf16_bits(${a}) | (bf16_bits(${b}) << 16u))` : `pack2x16float(vec2<f32>(${a}, ${b}))`;
  const store = (name: string, e: string, src: string) => {
    if (!vectorized) return `st_${name}(${e}, ${src}[0]);`;
    if (!packed) return `${name}[(${e}) / 4u] = vec4<f32>(${src}[0], ${src}[1], ${src}[2], ${src}[3]);`;
    return `${name}[(${e}) / 8u] = vec4<u32>(${[0, 2, 4, 6].map((i) => pack2(`${src}[${i}]`, `${src}[${i + 1}]`)).join(', ')});`;
  };
  const V = vec;
  const accumulate =
    mode === 'allreduce'
      ? `
      // Sum the ranks' rows in rank order, round once: the all-reduce result.
      var acc: array<f32, ${V}>;
      for (var k = 0u; k < ${V}u; k++) { acc[k] = 0.0; }
      for (var q = 0u; q < ranks; q++) {
        ${load('x', `prm.xOffset + q * prm.rankSlotStride + row * prm.xRowStride + c`)}
        for (var k = 0u; k < ${V}u; k++) { acc[k] += v[k]; }
      }
      for (var k = 0u; k < ${V}u; k++) { v[k] = ${r('acc[k]')}; }`
      : load('x', 'prm.xOffset + row * prm.xRowStride + c');
  const addResidual =
    mode === 'rms'
      ? ''
      : `
      var z: array<f32, ${V}> = v;
      ${load('res', 'prm.resOffset + (prm.rowStart + row) * prm.resRowStride + c').replaceAll('v[', 'rv[')}
      for (var k = 0u; k < ${V}u; k++) { z[k] = ${r('z[k] + rv[k]')}; }
      v = z;
      ${store('resOut', '(prm.rowStart + row) * cols + c', 'v')}`;
  const scale =
    mode === 'allreduce' && normRounding === 'once'
      ? r('v[k] * inv * wv[k]')
      : r(`${r('v[k] * inv')} * wv[k]`);
  return `${DTYPE_WGSL}
${NORM_PARAMS.wgsl}
${quantScale ? normQuantWgsl(quantScale) : ''}
${vout('out', 1)}
${mode === 'rms' ? '' : vout('resOut', 2)}
${vin('x', 3)}
${mode === 'rms' ? '' : vin('res', 4)}
${vin('w', 5)}
var<workgroup> partial: array<f32, ${WG}>;
var<workgroup> partial32: array<f32, ${WG / 32}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  let rows = prm.rows;
  if (row >= rows) { return; }
  let cols = prm.cols;
  let ranks = prm.ranks;
  ${quantScale ? 'let qinv = recip_rn(ld_qscale(0u));' : ''}
  var ss = 0.0;
  // The row's slice for this thread, unrolled so it stays in registers until it is scaled.
${Array.from(
  { length: items },
  (_, it) => `  var keep${it}: array<f32, ${V}>;
  let c${it} = (${it}u * ${WG}u + lid.x) * ${V}u;
  if (c${it} < cols) {
    let c = c${it};
    var v: array<f32, ${V}>;
    var rv: array<f32, ${V}>;
    ${accumulate}
    ${addResidual}
    for (var k = 0u; k < ${V}u; k++) { ss += v[k] * v[k]; }
    keep${it} = v;
  }`,
).join('\n')}
  // Sum of squares in a fixed order: 32 at a time, then the ${WG / 32} partial sums.
  partial[lid.x] = ss;
  workgroupBarrier();
  if (lid.x < ${WG / 32}u) {
    var s = 0.0;
    for (var i = 0u; i < 32u; i++) { s += partial[lid.x * 32u + i]; }
    partial32[lid.x] = s;
  }
  workgroupBarrier();
  var total = 0.0;
  for (var i = 0u; i < ${WG / 32}u; i++) { total += partial32[i]; }
  let inv = 1.0 / sqrt(total / f32(cols) + prm.eps);
${Array.from(
  { length: items },
  (_, it) => `  if (c${it} < cols) {
    let c = c${it};
    var v = keep${it};
    var wv: array<f32, ${V}>;
    ${load('w', 'prm.wOffset + c').replaceAll('v[', 'wv[')}
    var y: array<f32, ${V}>;
    for (var k = 0u; k < ${V}u; k++) { y[k] = ${scale}; }${
      quantScale
        ? `
    // The static FP8 quant of the rounded normed value (an e4m3fn value is exact in every dtype).
    for (var k = 0u; k < ${V}u; k++) { y[k] = f8e4m3fn_value(quant(y[k] * qinv)); }`
        : ''
    }
    ${store('out', '(prm.rowStart + row) * cols + c', 'y')}
  }`,
).join('\n')}
}
`;
}
