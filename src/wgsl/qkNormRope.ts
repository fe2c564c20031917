// vLLM's fused QK-norm + RoPE (`_C.fused_qk_norm_rope`, csrc/fused_qknorm_rope_kernel.cu) as ONE
// dispatch (KERNELS.qk_norm_rope): one (token, head) of qkv [T, (Hq + Hk + Hv) · D] per slot of
// `L` lanes, q heads normed with q_weight, k heads with k_weight, then rotated by the position's
// cos_sin_cache row (neox or GPT-J, the first `rot` dims); v heads copied, or, in place (`inPlace`:
// out is qkv itself), left where they are. vLLM's kernel gives one warp a (token, head) and keeps
// the normed value in f32; this one rounds where the unfused pair
// does (rms_norm, then rotary), so it is bitwise that pair on the same device:
//   - the sum of squares in the order of the norm kernel the pair runs on the head's rows
//     (`mirror`): bf16 whole words run rmsNormRows.ts's word-row kernel — per lane one word,
//     dot(lo, lo) + dot(hi, hi), then a subgroupAdd per subgroup (the head's words in lanes
//     0 … D/8 − 1 of its first subgroups) or, without subgroups, the lanes' sums in lane order;
//     everything else runs rmsNorm.ts's per-row kernel — per lane `vec` values in order, then the
//     lanes' sums 32 at a time;
//   - y = r(r(x · rsqrt(mean(x²) + eps)) · w) as the norm kernels store it;
//   - x' = r(r(x·cos) − r(y·sin)), y' = r(r(y·cos) + r(x·sin)) on those stored values, as rotary.ts.
// The normed head waits in workgroup memory for its rotation partner (neox pairs dims i and
// i + rot/2, across lanes).
//
// Bind layout:
//   @binding(0) prm: QkNormRopeParams  (QK_NORM_ROPE_PARAMS below)
//   @binding(1) out        qkv after the op, contiguous [T, heads · D]
//   @binding(2) x          qkv, rows strided, columns contiguous; absent in place (out is qkv)
//   @binding(3) qw, (4) kw the norm weights [D]
//   @binding(5) positions  [T], strided
//   @binding(6) cache      cos_sin_cache [P, rot], rows strided

import { DTYPE_WGSL, inputBinding, outputBinding, roundExpr, type WgslDType } from './dtype.ts';
import { paramStruct } from './params.ts';
import { normWorkgroup } from './rmsNorm.ts';
import { PACKED4_WGSL } from './rmsNormRows.ts';

export const QK_NORM_ROPE_PARAMS = paramStruct('QkNormRopeParams', {
  tokens: 'u32',
  /** Heads per row: q, k and v. */
  heads: 'u32',
  /** Heads a token's slots cover: every head, or q and k alone in place (v is already there). */
  slotHeads: 'u32',
  qHeads: 'u32',
  kHeads: 'u32',
  headSize: 'u32',
  rot: 'u32',
  neox: 'u32',
  xOffset: 'u32',
  xRowStride: 'u32',
  qwOffset: 'u32',
  kwOffset: 'u32',
  eps: 'f32',
  positionsOffset: 'u32',
  positionsStride: 'u32',
  cacheOffset: 'u32',
  cacheRowStride: 'u32',
});

/**
 * Which norm kernel's sum of squares the fused one reproduces: the bf16 word-row kernel (with the
 * device's subgroup size, 0 for none), or the per-row kernel loading `vec` values a lane.
 */
export type QkNormMirror = { kind: 'rows'; sg: number } | { kind: 'per-row'; vec: number };

export interface QkNormRopeShape {
  /** qkv and out. */
  d: WgslDType;
  weight: WgslDType;
  positions: WgslDType;
  cache: WgslDType;
  headSize: number;
  mirror: QkNormMirror;
  /** qkv read and out written as vec4<u32> words (bf16, x's offset and row stride whole words). */
  words: boolean;
  /** out is qkv itself (no binding 2): q and k heads read and written there, v left as it is. */
  inPlace: boolean;
}

/** Lanes per (token, head), values a lane loads, partial sums per slot, slots per workgroup. */
export function qkNormRopeLayout(s: Pick<QkNormRopeShape, 'headSize' | 'mirror'>): {
  lanes: number;
  vec: number;
  parts: number;
  slots: number;
} {
  const D = s.headSize;
  const m = s.mirror;
  let lanes: number, vec: number, parts: number;
  if (m.kind === 'rows') {
    vec = 8;
    // The head's words in whole subgroups, as lanes 0 … D/8 − 1 hold them in the row kernel.
    lanes = m.sg > 0 ? m.sg * Math.ceil(D / 8 / m.sg) : D / 8;
    parts = m.sg > 0 ? lanes / m.sg : lanes;
  } else {
    vec = m.vec;
    lanes = normWorkgroup(D, vec).wg;
    parts = lanes;
  }
  return { lanes, vec, parts, slots: Math.max(1, Math.floor(128 / lanes)) };
}

/** Workgroups for T tokens of `heads` heads: [x, y] within the per-dimension limit. */
export function qkNormRopeGrid(tokens: number, heads: number, slots: number): [number, number] {
  const n = Math.max(1, Math.ceil((tokens * heads) / slots));
  const gx = Math.min(n, 65535);
  return [gx, Math.ceil(n / gx)];
}

/** `ld_x` over the output binding itself (in place, element loads): whole words, atomics for packed dtypes. */
function inPlaceLoader(d: WgslDType): string {
  if (d === 'f32' || d === 'i32') return `fn ld_x(i: u32) -> f32 { return f32(out[i]); }`;
  const w = 'atomicLoad(&out[i >> 1u])';
  return d === 'bf16'
    ? `fn ld_x(i: u32) -> f32 { let w = ${w}; return select(bf16_lo(w), bf16_hi(w), (i & 1u) == 1u); }`
    : `fn ld_x(i: u32) -> f32 { let v = unpack2x16float(${w}); return select(v.x, v.y, (i & 1u) == 1u); }`;
}

type Layout = ReturnType<typeof qkNormRopeLayout>;

/**
 * The sum of squares as the mirrored norm kernel forms it: a lane's part (`square`, of its values
 * v), the parts into workgroup memory (`combine`), and the slot's `total` read back in order.
 */
function sumOfSquaresWgsl(m: QkNormMirror, { vec: V, parts: P }: Layout) {
  const sg = m.kind === 'rows' ? m.sg : 0;
  return {
    square:
      m.kind === 'rows'
        ? `let zl = vec4<f32>(v[0], v[2], v[4], v[6]); let zh = vec4<f32>(v[1], v[3], v[5], v[7]);
    ss += dot(zl, zl) + dot(zh, zh);`
        : `for (var k = 0u; k < ${V}u; k++) { ss += v[k] * v[k]; }`,
    combine:
      sg > 0
        ? `let part = subgroupAdd(ss);
  if (sgid == 0u) { red[slot * ${P}u + lane / ${sg}u] = part; }`
        : `red[slot * ${P}u + lane] = ss;`,
    total:
      m.kind === 'rows'
        ? `for (var j = 0u; j < ${P}u; j++) { total += red[slot * ${P}u + j]; }`
        : `for (var g32 = 0u; g32 < ${P / 32}u; g32++) {
    var s32 = 0.0;
    for (var i = 0u; i < 32u; i++) { s32 += red[slot * ${P}u + g32 * 32u + i]; }
    total += s32;
  }`,
  };
}

/** The head's loads into v (`load`), the rotated head's stores (`store`) and v's copy (`copy`). */
function headAccessWgsl(s: QkNormRopeShape, { lanes: L, vec: V }: Layout) {
  const D = s.headSize;
  const src = s.inPlace ? 'out' : 'x';
  return {
    bindings: `${s.words ? '@group(0) @binding(1) var<storage, read_write> out: array<vec4<u32>>;' : outputBinding('out', 1, s.d)}
${s.inPlace ? (s.words ? '' : inPlaceLoader(s.d)) : s.words ? '@group(0) @binding(2) var<storage, read> x: array<vec4<u32>>;' : inputBinding('x', 2, s.d)}`,
    load: s.words
      ? `let q = ${src}[(row + c) / 8u];
    let lo = lo4(q); let hi = hi4(q);
    for (var k = 0u; k < 4u; k++) { v[2u * k] = lo[k]; v[2u * k + 1u] = hi[k]; }`
      : `for (var k = 0u; k < ${V}u; k++) { v[k] = ld_x(row + c + k); }`,
    store: s.words
      ? `if (lane < ${D / 8}u) {
        var o: array<u32, 4>;
        for (var k = 0u; k < 4u; k++) {
          let j = lane * 8u + 2u * k;
          o[k] = bf16_bits(head_value(slot, j, crow)) | (bf16_bits(head_value(slot, j + 1u, crow)) << 16u);
        }
        out[(orow) / 8u + lane] = vec4<u32>(o[0], o[1], o[2], o[3]);
      }`
      : `for (var p = lane; p < ${D / 2}u; p += ${L}u) {
        st2_out(orow + 2u * p, head_value(slot, 2u * p, crow), head_value(slot, 2u * p + 1u, crow));
      }`,
    // In place v is already where it belongs.
    copy: s.inPlace
      ? ''
      : s.words
        ? ` else if (lane < ${D / 8}u) { out[orow / 8u + lane] = x[row / 8u + lane]; }`
        : ` else {
      for (var p = lane; p < ${D / 2}u; p += ${L}u) {
        st2_out(orow + 2u * p, ld_x(row + 2u * p), ld_x(row + 2u * p + 1u));
      }
    }`,
  };
}

/** Dim j of the slot's head after the rotation (rotary.ts's rotary_value on the normed head). */
const headValueWgsl = (D: number) => `
fn head_value(slot: u32, j: u32, crow: u32) -> f32 {
  let xj = nrm[slot * ${D}u + j];
  let rot = prm.rot;
  if (j >= rot) { return xj; }
  let half = rot / 2u;
  var pair: u32; var k: u32; var first: bool;
  if (prm.neox == 1u) { first = j < half; k = select(j - half, j, first); pair = select(j - half, j + half, first); }
  else { first = j % 2u == 0u; k = j / 2u; pair = select(j - 1u, j + 1u, first); }
  let xp = nrm[slot * ${D}u + pair];
  let cs = ld_cache(crow + k); let sn = ld_cache(crow + half + k);
  if (first) { return rnd(rnd(xj * cs) - rnd(xp * sn)); }
  return rnd(rnd(xj * cs) + rnd(xp * sn));
}`;

export function qkNormRopeWgsl(s: QkNormRopeShape): string {
  const D = s.headSize;
  const layout = qkNormRopeLayout(s);
  const { lanes: L, vec: V, parts: P, slots: S } = layout;
  const subgroups = s.mirror.kind === 'rows' && s.mirror.sg > 0;
  if (D % 2 || D % V || (s.words && (s.d !== 'bf16' || V !== 8)))
    throw new Error(`qkNormRopeWgsl: head size ${D} in ${V}-value loads (${s.d}, words ${s.words})`);
  const { square, combine, total } = sumOfSquaresWgsl(s.mirror, layout);
  const { bindings, load, store, copy } = headAccessWgsl(s, layout);
  return `${subgroups ? 'enable subgroups;\n' : ''}${DTYPE_WGSL}${s.words ? PACKED4_WGSL : ''}
${QK_NORM_ROPE_PARAMS.wgsl}
${bindings}
${inputBinding('qw', 3, s.weight)}
${inputBinding('kw', 4, s.weight)}
${inputBinding('positions', 5, s.positions)}
${inputBinding('cache', 6, s.cache)}
var<workgroup> red: array<f32, ${S * P}>;
var<workgroup> nrm: array<f32, ${S * D}>;

fn rnd(v: f32) -> f32 { return ${roundExpr(s.d, 'v')}; }

${headValueWgsl(D)}

@compute @workgroup_size(${S * L})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32${subgroups ? ', @builtin(subgroup_invocation_id) sgid: u32' : ''}) {
  let slot = li / ${L}u;
  let lane = li % ${L}u;
  let H = prm.heads;
  let HS = prm.slotHeads;
  let g = (wid.x + wid.y * nwg.x) * ${S}u + slot;
  let live = g < prm.tokens * HS;
  let t = g / HS;
  let h = g % HS;
  let isQ = h < prm.qHeads;
  let normed = live && h < prm.qHeads + prm.kHeads;
  let row = prm.xOffset + t * prm.xRowStride + h * ${D}u;
  let orow = (t * H + h) * ${D}u;
  let c = lane * ${V}u;
  var v: array<f32, ${V}>;
  var ss = 0.0;
  if (normed && c < ${D}u) {
    ${load}
    ${square}
  }
  ${combine}
  workgroupBarrier();
  var total = 0.0;
  ${total}
  let inv = 1.0 / sqrt(total / f32(prm.headSize) + prm.eps);
  if (normed && c < ${D}u) {
    for (var k = 0u; k < ${V}u; k++) {
      let w = select(ld_kw(prm.kwOffset + c + k), ld_qw(prm.qwOffset + c + k), isQ);
      nrm[slot * ${D}u + c + k] = rnd(rnd(v[k] * inv) * w);
    }
  }
  workgroupBarrier();
  if (live) {
    if (normed) {
      let pos = u32(max(ld_positions(prm.positionsOffset + t * prm.positionsStride), 0.0));
      let crow = prm.cacheOffset + pos * prm.cacheRowStride;
      ${store}
    }${copy}
  }
}
`;
}
