// The RMSNorm family for bf16 rows whose width, offsets and strides are whole vec4<u32> words
// (8 bf16): same modes, bind layout, meta words and roundings as rmsNormWgsl (rmsNorm.ts), laid
// out for bandwidth:
//   - `tpr` threads per row, `rpw` rows per workgroup; each thread owns the same words of every
//     row it visits, so γ is loaded once per thread;
//   - rows in a grid-stride loop over at most `cap` workgroups; with `pipeline` the next row's
//     words are loaded before this row's reduction and stores, so memory stays busy through them;
//   - values stay packed (two bf16 per u32) in registers: x, the residual and z are bf16-exact;
//     lo/hi halves widen with one shift or mask per 4 values, rounding packs back the same way;
//   - the sum of squares is reduced with subgroup operations where the device has them (a
//     butterfly of shuffles when a row fits in one subgroup: no barrier; else one partial per
//     subgroup through workgroup memory, one barrier per row), else through workgroup memory.
// Every reduction is in a fixed order, so results are deterministic on a given device.

import { DTYPE_WGSL } from './dtype.ts';
import { NORM_PARAMS, type NormMode } from './rmsNorm.ts';
import type { FusedNormRounding } from '../graph/opTable.ts';
import type { WgslDType } from './dtype.ts';
import { normQuantWgsl } from './normQuant.ts';
import { f32Bits, rowQuantWgsl } from './fp8QuantRows.ts';

export interface NormRowsConfig {
  tpr: number;
  rpw: number;
  cap: number;
  pipeline: boolean;
}

/**
 * The layout the bf16 kernels use unless told otherwise: one row per workgroup, 192 threads × 2
 * words. On an H200 it was the fastest of the layouts timed at T = 4096 (44.9 µs against 48–51 µs
 * for the prefetching grid-stride layouts and 50.3 µs for the legacy kernel; bench/RESULTS.md, Run 4).
 */
export const NORM_ROWS_DEFAULT: NormRowsConfig = { tpr: 192, rpw: 1, cap: 0, pipeline: false };

/** Workgroups for `rows` rows: one per `rpw` rows, at most `cap` (0: no cap). */
export function normRowsGrid(rows: number, cfg: NormRowsConfig): number {
  const need = Math.max(1, Math.ceil(rows / cfg.rpw));
  return Math.min(need, cfg.cap > 0 ? cfg.cap : 65535, 65535);
}

/**
 * Partial sums per row in workgroup memory: 1 (the row is reduced inside one subgroup), tpr / sg
 * (one per subgroup), or tpr (no subgroups). `sg` is the device's fixed subgroup size, 0 if none.
 */
export function normRowsParts(tpr: number, sg: number, rpw = 1): number {
  if (sg > 0 && tpr <= sg && (tpr & (tpr - 1)) === 0) return 1;
  // One row per workgroup: a last, partly filled subgroup still covers only this row.
  if (sg > 0 && (tpr % sg === 0 || rpw === 1)) return Math.ceil(tpr / sg);
  return tpr;
}

/** Shared by the norm and MoE decode kernels: bf16 halves of packed words, rounding back to packed. */
export const PACKED4_WGSL = /* wgsl */ `
fn lo4(q: vec4<u32>) -> vec4<f32> { return bitcast<vec4<f32>>(q << vec4<u32>(16u)); }
fn hi4(q: vec4<u32>) -> vec4<f32> { return bitcast<vec4<f32>>(q & vec4<u32>(0xffff0000u)); }
// bf16 rounding (ties to even, NaN kept quiet) of 4 values; the bits land in the high halves.
fn rnd4(v: vec4<f32>) -> vec4<u32> {
  let u = bitcast<vec4<u32>>(v);
  let nan = (u & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
  let r = (u + vec4<u32>(0x7fffu) + ((u >> vec4<u32>(16u)) & vec4<u32>(1u))) & vec4<u32>(0xffff0000u);
  return select(r, (u | vec4<u32>(0x400000u)) & vec4<u32>(0xffff0000u), nan);
}
fn f4(b: vec4<u32>) -> vec4<f32> { return bitcast<vec4<f32>>(b); }
// Rounded lo and hi halves back into 4 words of 8 bf16.
fn pack4(l: vec4<u32>, h: vec4<u32>) -> vec4<u32> { return (l >> vec4<u32>(16u)) | h; }
`;

/**
 * The dynamic FP8 quant of the normed rows in the norm kernel (KERNELS.rms_norm_dynamic_quant):
 * one f32 scale per `group` columns of a row (group = cols: per token), the rule's FP8 range and
 * scale floor, the scales stored [rows, groups] or, `transposed`, [groups, rows].
 */
export interface NormRowsDynamicQuant {
  group: number;
  max: number;
  minScale: number;
  transposed: boolean;
}

/**
 * Whether the rows kernel takes this dynamic quant: groups of whole words that the lanes of one
 * item cover (a power of two of words dividing the threads per row), or the whole row; one row per
 * workgroup.
 */
export function normRowsQuantFits(cols: number, group: number, cfg: NormRowsConfig): boolean {
  if (cols % 8 !== 0 || cfg.rpw !== 1 || cols % group !== 0) return false;
  if (group === cols) return true;
  const gw = group / 8;
  return group % 8 === 0 && (gw & (gw - 1)) === 0 && cfg.tpr % gw === 0;
}

const pow2 = (n: number) => (n & (n - 1)) === 0;

/**
 * The max of each of `ms` (u32 bits) over aligned runs of S lanes, into it, every one at once: a
 * butterfly of subgroup shuffles where a run fits in a subgroup, else partials per subgroup through
 * workgroup memory (double-buffered by the row's parity: one barrier a row), else (no subgroups) a
 * tree in workgroup memory. A max is order-free, so any tree gives the unfused steps' bits.
 */
function segmentMaxWgsl(ms: string[], S: number, TPR: number, sg: number): string {
  const shuffles = sg > 0 && TPR % sg === 0;
  const halves = (n: number) => {
    const out: number[] = [];
    for (let h = 2 ** Math.ceil(Math.log2(n)) / 2; h >= 1; h /= 2) out.push(h);
    return out;
  };
  const butterfly = (v: string, n: number) =>
    halves(n)
      .map((h) => `${v} = max(${v}, subgroupShuffleXor(${v}, ${h}u));`)
      .join(' ');
  const tree = (v: string) => `qred[lane] = ${v};
    workgroupBarrier();
    ${halves(S)
      .map(
        (h) =>
          `if (lane % ${S}u < ${h}u && lane % ${S}u + ${h}u < ${S}u) { qred[lane] = max(qred[lane], qred[lane + ${h}u]); }
    workgroupBarrier();`,
      )
      .join('\n    ')}
    ${v} = qred[lane - lane % ${S}u];
    workgroupBarrier();`;
  if (shuffles && S <= sg && pow2(S)) return ms.map((m) => butterfly(m, S)).join('\n    ');
  const parts = TPR / sg;
  const at = (k: number, j: string) => `qred[parity * ${ms.length * parts}u + ${k * parts}u + ${j}]`;
  if (shuffles && S % sg === 0)
    return `${ms.map((m) => butterfly(m, sg)).join('\n    ')}
    if (sgid == 0u) { ${ms.map((m, k) => `${at(k, `lane / ${sg}u`)} = ${m};`).join(' ')} }
    workgroupBarrier();
    for (var j = (lane - lane % ${S}u) / ${sg}u; j < (lane - lane % ${S}u + ${S}u) / ${sg}u; j++) {
      ${ms.map((m, k) => `${m} = max(${m}, ${at(k, 'j')});`).join(' ')}
    }`;
  return ms.map((m) => tree(m)).join('\n    ');
}

/**
 * The dynamic quant's store: the normed words (the values the unfused norm stores) kept in
 * registers, each word's max |·| (as bits: a magnitude's bits order as its value, a NaN's above
 * every number), the max over its group (lanes of one item) or the row (segmentMaxWgsl), the scale,
 * then every value quantized as fp8_quant_rows does (rowQuantWgsl: quant4_fast, then quant's
 * division for the rare values it leaves, in one loop after the row's stores) and the scale stored
 * by the group's first lane.
 */
function dynamicQuantStore(
  q: NormRowsDynamicQuant,
  cols: number,
  TPR: number,
  sg: number,
  its: number[],
  normed: (i: number) => string,
): string {
  const perToken = q.group === cols;
  // Words per scale: the lanes of one item that share a scale (per token: the whole row).
  const S = perToken ? TPR : q.group / 8;
  const segMax = (ms: string[]) => segmentMaxWgsl(ms, S, TPR, sg);
  const ms = its.map((i) => `m${i}`);
  const scaleAt = (g: string) => (q.transposed ? `${g} * rows + row` : `row * ${cols / q.group}u + ${g}`);
  const load = `${its.map((i) => `var y${i} = vec4<u32>(0u); var m${i} = 0u;`).join(' ')}
    if (live) {
      ${its.map((i) => `if (ok${i}) { y${i} = ${normed(i)}; m${i} = wmax(y${i}); }`).join('\n      ')}
    }`;
  // Per token: the row's max. Per group where a group's lanes share a subgroup and outnumber the
  // items: lane k of a group takes item k's scale (its division and reciprocal) and the others read
  // them by shuffles: one division a lane, not one an item.
  const shared =
    !perToken && sg > 0 && TPR % sg === 0 && S <= sg && pow2(S) && S >= its.length && its.length > 1;
  const scales = perToken
    ? `${its
        .slice(1)
        .map((i) => `m0 = max(m0, m${i});`)
        .join(' ')}
    ${segMax(['m0'])}
    let s = row_scale(bitcast<f32>(m0));
    let r = row_recip(s);`
    : shared
      ? `${segMax(ms)}
    let k = lane % ${S}u;
    var mine = m0;
    ${its
      .slice(1)
      .map((i) => `if (k == ${i}u) { mine = m${i}; }`)
      .join(' ')}
    let sm = row_scale(bitcast<f32>(mine));
    let rm = row_recip(sm);
    ${its.map((i) => `let s${i} = subgroupShuffle(sm, lane % ${sg}u - k + ${i}u); let r${i} = subgroupShuffle(rm, lane % ${sg}u - k + ${i}u);`).join('\n    ')}`
      : `${segMax(ms)}
    ${its.map((i) => `let s${i} = row_scale(bitcast<f32>(m${i})); let r${i} = row_recip(s${i});`).join('\n    ')}`;
  const pick = (name: string, v: string) =>
    `var ${name} = ${v}0;${its
      .slice(1)
      .map((i) => ` if (i == ${i}u) { ${name} = ${v}${i}; }`)
      .join('')}`;
  return `${load}
    ${scales}
    if (live) {
      let ob = (prm.rowStart + row) * cw;
      qslow = false;
      ${its
        .map((i) =>
          perToken
            ? `if (ok${i}) { out[ob + c${i}] = dynWords(y${i}, s, r); }`
            : `if (ok${i}) {
        out[ob + c${i}] = dynWords(y${i}, s${i}, r${i});
        if (lane % ${S}u == 0u) { qscale[${scaleAt(`c${i} / ${S}u`)}] = s${i}; }
      }`,
        )
        .join('\n      ')}
      ${perToken ? `if (lane == 0u) { qscale[${scaleAt('0u')}] = s; }` : ''}
      // The values quant4_fast left (a quotient under 2^-6, a subnormal, infinite or NaN value): rare,
      // so quant's division has one call site, after the stores.
      if (qslow) {
        for (var i = 0u; i < ${its.length}u; i++) {
          let c = i * ${TPR}u + lane;
          if (c < cw) {
            ${pick('fy', 'y')}
            ${perToken ? '' : pick('fs', 's')}
            out[ob + c] = slowWords(out[ob + c], fy, ${perToken ? 's' : 'fs'});
          }
        }
      }
    }`;
}

/** The dynamic quant's functions and its scale output (@binding(6)). */
function dynamicQuantWgsl(q: NormRowsDynamicQuant, TPR: number, its: number, sg: number): string {
  const shuffles = sg > 0 && TPR % sg === 0;
  return `${rowQuantWgsl({ eps: '0.0', max: f32Bits(q.max), minScale: f32Bits(q.minScale) })}
@group(0) @binding(6) var<storage, read_write> qscale: array<f32>;
var<workgroup> qred: array<u32, ${shuffles ? 2 * its * (TPR / sg) : TPR}>;
// Whether this row's words hold a value quant4_fast left.
var<private> qslow: bool;
// max |·| of a word's 8 values (bf16-exact), as bits.
fn wmax(y: vec4<u32>) -> u32 {
  let m = max((y << vec4<u32>(16u)) & vec4<u32>(0x7fff0000u), y & vec4<u32>(0x7fff0000u));
  return max(max(m.x, m.y), max(m.z, m.w));
}
// The quantized words (an e4m3fn value is exact in bf16: its high half is the bf16).
fn dynWords(y: vec4<u32>, s: f32, r: f32) -> vec4<u32> {
  let l = quant4_fast(lo4(y), s, r);
  let h = quant4_fast(hi4(y), s, r);
  qslow = qslow || any(max(l, h) == vec4<u32>(QUANT_SLOW));
  return (l >> vec4<u32>(16u)) | (h & vec4<u32>(0xffff0000u));
}
// quant's value (rounded as bf16 keeps a NaN) for each half of o that quant4_fast left; components
// by pick4 and selects, so nothing is indexed at runtime.
fn slowWords(o: vec4<u32>, y: vec4<u32>, s: f32) -> vec4<u32> {
  var w = o;
  for (var k = 0u; k < 8u; k++) {
    let at = vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(k / 2u);
    let sh = (k % 2u) * 16u;
    let wj = pick4(w, k / 2u);
    if (((wj >> sh) & 0xffffu) == 0xffffu) {
      let v = bitcast<f32>((pick4(y, k / 2u) << (16u - sh)) & 0xffff0000u);
      let b = bitcast<vec4<u32>>(rnd4(vec4<f32>(quant(v, s)))).x >> 16u;
      w = select(w, vec4<u32>((wj & ~(0xffffu << sh)) | (b << sh)), at);
    }
  }
  return w;
}`;
}

export function rmsNormRowsWgsl(
  mode: NormMode,
  cols: number,
  cfg: NormRowsConfig,
  sg: number,
  normRounding: FusedNormRounding = 'once',
  /** The static quant's scale dtype, or the dynamic quant. */
  quant?: WgslDType | NormRowsDynamicQuant,
): string {
  const { tpr: TPR, rpw: RPW } = cfg;
  if (cols % 8 !== 0) throw new Error(`rmsNormRowsWgsl: ${cols} columns are not whole words of 8 bf16`);
  const quantScale = typeof quant === 'string' ? quant : undefined;
  const dynamic = typeof quant === 'object' ? quant : undefined;
  if (dynamic && !normRowsQuantFits(cols, dynamic.group, cfg))
    throw new Error(`rmsNormRowsWgsl: groups of ${dynamic.group} of ${cols} columns do not fit the layout`);
  const items = Math.ceil(cols / 8 / TPR);
  const P = normRowsParts(TPR, sg, RPW);
  // Threads per partial sum: a subgroup, or one thread without subgroups.
  const SGW = P === TPR ? 1 : sg;
  const WG = TPR * RPW;
  const its = Array.from({ length: items }, (_, i) => i);
  const hasRes = mode !== 'rms';
  // Load row `row` into the named registers: cx (x, or the rank-ordered all-reduce sum rounded
  // once), cr (the residual's raw words).
  const loadRow = (row: string, cx: string, cr: string) => {
    const xPart =
      mode === 'allreduce'
        ? `${its.map((i) => `var al${i} = vec4<f32>(0.0); var ah${i} = vec4<f32>(0.0);`).join(' ')}
      for (var q = 0u; q < ranks; q++) {
        let xb = (prm.xOffset + q * prm.rankSlotStride + ${row} * prm.xRowStride) / 8u;
        ${its.map((i) => `if (ok${i}) { let v = x[xb + c${i}]; al${i} += lo4(v); ah${i} += hi4(v); }`).join('\n        ')}
      }
      ${its.map((i) => `${cx}${i} = pack4(rnd4(al${i}), rnd4(ah${i}));`).join(' ')}`
        : `let xb = (prm.xOffset + ${row} * prm.xRowStride) / 8u;
      ${its.map((i) => `if (ok${i}) { ${cx}${i} = x[xb + c${i}]; }`).join(' ')}`;
    const rPart = hasRes
      ? `
      let rb = (prm.resOffset + (prm.rowStart + ${row}) * prm.resRowStride) / 8u;
      ${its.map((i) => `if (ok${i}) { ${cr}${i} = res[rb + c${i}]; }`).join(' ')}`
      : '';
    return `{
      ${xPart}${rPart}
    }`;
  };
  const decl = (p: string) => its.map((i) => `var ${p}${i} = vec4<u32>(0u);`).join(' ');
  const body = (cx: string, cr: string) => `
    var ss = 0.0;
    if (live) {
      let ob = (prm.rowStart + row) * cw;
${its
  .map(
    (i) => `      if (ok${i}) {
${
  hasRes
    ? `        let zl = rnd4(lo4(${cx}${i}) + lo4(${cr}${i}));
        let zh = rnd4(hi4(${cx}${i}) + hi4(${cr}${i}));
        z${i} = pack4(zl, zh);
        resOut[ob + c${i}] = z${i};
        ss += dot(f4(zl), f4(zl)) + dot(f4(zh), f4(zh));`
    : `        z${i} = ${cx}${i};
        let zl = lo4(z${i}); let zh = hi4(z${i});
        ss += dot(zl, zl) + dot(zh, zh);`
}
      }`,
  )
  .join('\n')}
    }`;
  // The normed word's rounded lo and hi halves (rnd4's bits: each in a high half).
  const normedHalves = (i: number): [string, string] =>
    mode === 'allreduce' && normRounding === 'once'
      ? [`rnd4(lo4(z${i}) * inv * lo4(w${i}))`, `rnd4(hi4(z${i}) * inv * hi4(w${i}))`]
      : [`rnd4(f4(rnd4(lo4(z${i}) * inv)) * lo4(w${i}))`, `rnd4(f4(rnd4(hi4(z${i}) * inv)) * hi4(w${i}))`];
  const normed = (i: number) => `pack4(${normedHalves(i).join(', ')})`;
  // With a quant: the rounded normed values, each quantized (an e4m3fn value is exact in bf16).
  const scaleOut = (i: number) =>
    quantScale ? `quantWords(${normedHalves(i).join(', ')}, qinv)` : normed(i);
  const reduce =
    P === 1
      ? `var total = ss;
${Array.from({ length: Math.log2(TPR) }, (_, k) => `    total += subgroupShuffleXor(total, ${TPR >> (k + 1)}u);`).join('\n')}`
      : `${SGW > 1 ? 'let part = subgroupAdd(ss);\n    if (sgid == 0u) {' : 'let part = ss;\n    {'} red[parity * ${RPW * P}u + rloc * ${P}u + lane / ${SGW}u] = part; }
    workgroupBarrier();
    var total = 0.0;
    for (var j = 0u; j < ${P}u; j++) { total += red[parity * ${RPW * P}u + rloc * ${P}u + j]; }
    parity ^= 1u;`;
  const sgBuiltin = SGW > 1 ? ', @builtin(subgroup_invocation_id) sgid: u32' : '';
  return `${P < TPR ? 'enable subgroups;\n' : ''}${DTYPE_WGSL}${PACKED4_WGSL}
${NORM_PARAMS.wgsl}${
    quantScale
      ? `
${normQuantWgsl(quantScale)}
var<workgroup> qinv_wg: f32;
// The values are e4m3fn values, exact in bf16: their high halves are the bf16 bits.
fn quantWords(l: vec4<u32>, h: vec4<u32>, inv: f32) -> vec4<u32> { return pack4(bitcast<vec4<u32>>(q4(f4(l), inv)), bitcast<vec4<u32>>(q4(f4(h), inv))); }`
      : ''
  }${dynamic ? `\n${dynamicQuantWgsl(dynamic, TPR, items, sg)}` : ''}
@group(0) @binding(1) var<storage, read_write> out: array<vec4<u32>>;
${hasRes ? '@group(0) @binding(2) var<storage, read_write> resOut: array<vec4<u32>>;' : ''}
@group(0) @binding(3) var<storage, read> x: array<vec4<u32>>;
${hasRes ? '@group(0) @binding(4) var<storage, read> res: array<vec4<u32>>;' : ''}
@group(0) @binding(5) var<storage, read> w: array<vec4<u32>>;
${P > 1 ? `var<workgroup> red: array<f32, ${2 * RPW * P}>;` : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32${sgBuiltin}) {
  let rows = prm.rows;
  let cols = prm.cols;
  let ranks = prm.ranks;
  let cw = cols / 8u;
  let rloc = li / ${TPR}u;
  let lane = li % ${TPR}u;
  let eps = prm.eps;
  ${
    // 1/scale once a workgroup (a loop of 26 steps), shared; where the row's reduction has a barrier,
    // by the first thread while its first row's loads are out, and read after that barrier.
    quantScale && P === 1
      ? 'if (li == 0u) { qinv_wg = recip_rn(ld_qscale(0u)); }\n  let qinv = workgroupUniformLoad(&qinv_wg);'
      : ''
  }
  ${its.map((i) => `let c${i} = ${i * TPR}u + lane; let ok${i} = c${i} < cw;`).join('\n  ')}
  // γ: the same words for every row this thread visits.
  ${its.map((i) => `var w${i} = vec4<u32>(0u); if (ok${i}) { w${i} = w[prm.wOffset / 8u + c${i}]; }`).join('\n  ')}
  ${decl('z')}
  ${decl('cx')} ${hasRes ? decl('cr') : ''}
  var parity = 0u;
  let stride = nwg.x * ${RPW}u;
  ${
    cfg.pipeline
      ? `if (wid.x * ${RPW}u + rloc < rows) ${loadRow(`(wid.x * ${RPW}u + rloc)`, 'cx', 'cr')}
  ${decl('nx')} ${hasRes ? decl('nr') : ''}`
      : ''
  }
  for (var base = wid.x * ${RPW}u; base < rows; base += stride) {
    let row = base + rloc;
    let live = row < rows;
    ${
      cfg.pipeline
        ? `// The next row's loads go out before this row's reduction.
    if (row + stride < rows) ${loadRow('(row + stride)', 'nx', 'nr')}`
        : `if (live) ${loadRow('row', 'cx', 'cr')}`
    }
    ${quantScale && P > 1 ? `if (li == 0u && base == wid.x * ${RPW}u) { qinv_wg = recip_rn(ld_qscale(0u)); }` : ''}
    ${body('cx', 'cr')}
    ${reduce}
    ${quantScale && P > 1 ? 'let qinv = qinv_wg;' : ''}
    let inv = 1.0 / sqrt(total / f32(cols) + eps);
    ${
      dynamic
        ? dynamicQuantStore(dynamic, cols, TPR, sg, its, normed)
        : `if (live) {
      let ob = (prm.rowStart + row) * cw;
      ${its.map((i) => `if (ok${i}) { out[ob + c${i}] = ${scaleOut(i)}; }`).join('\n      ')}
    }`
    }
    ${cfg.pipeline ? `${its.map((i) => `cx${i} = nx${i};${hasRes ? ` cr${i} = nr${i};` : ''}`).join(' ')}` : ''}
  }
}
`;
}
