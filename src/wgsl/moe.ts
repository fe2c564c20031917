// vllm.moe_forward for GPT-OSS, on one rank, in six dispatches with no read-back to the host:
//   route    one thread per token: top-k of the router logits (ties to the lower expert id),
//            softmax over the k selected logits, atomic count per expert
//   scan     one thread: per-expert offsets and tile starts (exclusive prefix sums)
//   scatter  one thread per (token, k): its slot in its expert's group (atomic cursor)
//   gemm1    per (expert tile, 64 W13 rows): h = x·W13ᵀ + b13 with gate/up interleaved
//            (h[0::2] gate, h[1::2] up); a = r((up+1)·gate·σ(1.702·gate)), gate = min(r(h_g), 7),
//            up = clamp(r(h_u), −7, 7)
//   gemm2    per (expert tile, 64 W2 rows): y = a·W2ᵀ + b2 (rank 0 only); y_k = r(w_k · y)
//   combine  one thread per output pair: out = r(Σ_k y_k), k in order
// The grid of gemm1/gemm2 has a fixed capacity (min(E, T·k) + ⌈T·k / 32⌉ tiles); tiles past the
// real count exit. The order of rows inside a group depends on atomics, but every row is computed
// alone and combined in k order, so results are deterministic.
// Decode sizes (an expert sees few tokens; bf16, rows in whole words of 8) run four dispatches:
// route + scan + scatter in one workgroup (moeRoute1Wgsl), the batched GEMV for gemm1 and gemm2
// (moeGemvWgsl), combine. The 8-token × 16-row tile kernels (moeDecodeGemmWgsl) stay for the
// benchmark's comparison.
//
// Bind layout (all six):
//   @binding(0) prm: MoeParams   (MOE_PARAMS below)
//   @binding(1) route: array<u32> counts[E] | cursor[E] | offsets[E+1] | tileStart[E+1] | ids[T·K] | sorted[T·K]
//   @binding(2) wts: array<f32>   routing weights [T·K]
//   @binding(3..) per kernel: x, logits, w13, b13, act, w2, b2, yk, out (see each entry point)

import { DTYPE_WGSL, inputBinding, outputBinding, roundExpr, type WgslDType } from './dtype.ts';
import { PACKED4_WGSL } from './rmsNormRows.ts';
import { paramStruct } from './params.ts';

export const MOE_TM = 32;
export const MOE_TN = 64;
export const MOE_TK = 32;
export const MOE_MAX_K = 8;
export const SWIGLU = { alpha: 1.702, limit: 7 } as const;

/** Words of the route buffer. */
export function routeWords(T: number, E: number, K: number): number {
  return 4 * E + 2 + 2 * T * K;
}
/** Rows of a decode tile: few tokens per expert, so W is streamed once per 8 tokens. */
export const MOE_DECODE_TM = 8;
export const MOE_DECODE_ROWS = 16;
export const MOE_DECODE_KC = 1024;

export function moeTileCapacity(T: number, E: number, K: number, tm = MOE_TM): number {
  return Math.min(E, T * K) + Math.ceil((T * K) / tm);
}

/** The decode kernels pay off while an expert sees few tokens; they need bf16 and K in whole vec4 words. */
export function useDecodeKernels(
  T: number,
  K: number,
  E: number,
  d: WgslDType,
  H: number,
  Is: number,
): boolean {
  return d === 'bf16' && (T * K) / E <= 8 && H % 8 === 0 && Is % 8 === 0;
}

/** One parameter struct for all six dispatches. */
export const MOE_PARAMS = paramStruct('MoeParams', {
  /** Tokens, hidden size, experts, experts per token, this rank's intermediate rows. */
  T: 'u32',
  H: 'u32',
  E: 'u32',
  K: 'u32',
  Is: 'u32',
  xOffset: 'u32',
  xRowStride: 'u32',
  logitsOffset: 'u32',
  logitsRowStride: 'u32',
  /** 1 on the rank that adds b2 (rank 0). */
  hasB2: 'u32',
  /** Token rows per expert tile of the GEMM kernels (what the tile numbering counts in). */
  tileRows: 'u32',
});

const META = /* wgsl */ `
${MOE_PARAMS.wgsl}
// Route buffer regions.
fn rCounts() -> u32 { return 0u; }
fn rCursor() -> u32 { return prm.E; }
fn rOffsets() -> u32 { return 2u * prm.E; }
fn rTiles() -> u32 { return 3u * prm.E + 1u; }
fn rIds() -> u32 { return 4u * prm.E + 2u; }
fn rSorted() -> u32 { return 4u * prm.E + 2u + prm.T * prm.K; }
`;

/**
 * Which expert the workgroup's tile (wid.x) belongs to, and the tile's first row in the expert-
 * sorted token order: tiles are numbered across experts by the routing pass (rTiles). Exits
 * workgroups past the last tile. `experts`: E written into the WGSL, so the scan of the E tile
 * starts unrolls and its loads are in flight together (a loop to a runtime E waits for each).
 */
function tileExpertWgsl(tm: number, experts?: number): string {
  return `  let tile = wid.x;
  if (tile >= route[rTiles() + E]) { return; }
  var e = 0u;
  for (var q = 1u; q < ${experts === undefined ? 'E' : `${experts}u`}; q++) { if (route[rTiles() + q] <= tile) { e = q; } }
  let rowBase = route[rOffsets() + e] + (tile - route[rTiles() + e]) * ${tm}u;`;
}

/**
 * The start both tiled expert GEMM kernels share: the tile's expert, the routed token slots of its
 * `tm` rows (rowSlot; 0xffffffff past the expert's last token), the stage's output width Nw and
 * depth Kd, and the first output column n0 (wid.y · `tn`).
 */
function expertTileWgsl(stage: 1 | 2, tm: number, tn: number): string {
  return `${tileExpertWgsl(tm)}
  let rowEnd = route[rOffsets() + e + 1u];
  let Nw = ${stage === 1 ? '2u * Is' : 'H'};
  let Kd = ${stage === 1 ? 'H' : 'Is'};
  let n0 = wid.y * ${tn}u;
  if (li < ${tm}u) { rowSlot[li] = select(0xffffffffu, route[rSorted() + rowBase + li], rowBase + li < rowEnd); }`;
}

export function moeRouteWgsl(d: WgslDType): string {
  return `${DTYPE_WGSL}${META}
@group(0) @binding(1) var<storage, read_write> route: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read_write> wts: array<f32>;
${inputBinding('logits', 3, d)}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= prm.T) { return; }
  let E = prm.E; let K = prm.K;
  var sel: array<u32, ${MOE_MAX_K}>;
  var val: array<f32, ${MOE_MAX_K}>;
  for (var k = 0u; k < K; k++) {
    var best = 0u; var bestV = 0.0; var found = false;
    for (var e = 0u; e < E; e++) {
      var taken = false;
      for (var j = 0u; j < k; j++) { if (sel[j] == e) { taken = true; } }
      let l = ld_logits(prm.logitsOffset + t * prm.logitsRowStride + e);
      if (!taken && (!found || l > bestV)) { best = e; bestV = l; found = true; }
    }
    sel[k] = best; val[k] = bestV;
  }
  var s = 0.0;
  for (var k = 0u; k < K; k++) { s += exp(val[k] - val[0]); }
  for (var k = 0u; k < K; k++) {
    atomicStore(&route[rIds() + t * K + k], sel[k]);
    wts[t * K + k] = exp(val[k] - val[0]) / s;
    atomicAdd(&route[rCounts() + sel[k]], 1u);
  }
}
`;
}

export const MOE_SCAN_WGSL = `${META}
@group(0) @binding(1) var<storage, read_write> route: array<u32>;
@compute @workgroup_size(1)
fn main() {
  var off = 0u; var tiles = 0u;
  for (var e = 0u; e < prm.E; e++) {
    route[rOffsets() + e] = off;
    route[rTiles() + e] = tiles;
    route[rCursor() + e] = 0u;
    let c = route[rCounts() + e];
    off += c;
    tiles += (c + prm.tileRows - 1u) / prm.tileRows;
  }
  route[rOffsets() + prm.E] = off;
  route[rTiles() + prm.E] = tiles;
}
`;

export const MOE_SCATTER_WGSL = `${META}
@group(0) @binding(1) var<storage, read_write> route: array<atomic<u32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let p = gid.x;
  if (p >= prm.T * prm.K) { return; }
  let e = atomicLoad(&route[rIds() + p]);
  let pos = atomicLoad(&route[rOffsets() + e]) + atomicAdd(&route[rCursor() + e], 1u);
  atomicStore(&route[rSorted() + pos], p);
}
`;

/**
 * gemm1 (stage 1) and gemm2 (stage 2): a 32-row × 64-column tile of one expert's group.
 * Stage 1: A = x rows of the group's tokens (storage dtype), W = W13[e] [2·Is, H], K = H.
 * Stage 2: A = act rows (f32) [T·K, Is], W = W2[e] [H, Is], K = Is.
 * W loads are one vec4<u32> (8 bf16) per thread when `vecW` (K a multiple of 8, bf16).
 */
export function moeGemmWgsl(stage: 1 | 2, d: WgslDType, vecW: boolean): string {
  const aDecl = stage === 1 ? inputBinding('a', 3, d) : inputBinding('a', 3, 'f32');
  const wDecl = vecW
    ? `@group(0) @binding(4) var<storage, read> w: array<vec4<u32>>;`
    : inputBinding('w', 4, d);
  const bDecl = inputBinding('bias', 5, d);
  const outDecl =
    stage === 1
      ? `@group(0) @binding(6) var<storage, read_write> act: array<f32>;`
      : `@group(0) @binding(6) var<storage, read_write> yk: array<f32>;`;
  const r = (e: string) => roundExpr(d, e);
  const loadW = vecW
    ? `{
      let q = w[(wBase + gk) / 8u];
      let vals = array<f32, 8>(bf16_lo(q.x), bf16_hi(q.x), bf16_lo(q.y), bf16_hi(q.y), bf16_lo(q.z), bf16_hi(q.z), bf16_lo(q.w), bf16_hi(q.w));
      for (var j = 0u; j < 8u; j++) { Ws[(kc + j) * ${MOE_TN}u + wn] = select(0.0, vals[j], okW && gk + j < Kd); }
    }`
    : `for (var j = 0u; j < 8u; j++) { var v = 0.0; if (okW && gk + j < Kd) { v = ld_w(wBase + gk + j); } Ws[(kc + j) * ${MOE_TN}u + wn] = v; }`;
  const aRow = stage === 1 ? `prm.xOffset + (p / K) * prm.xRowStride` : `p * Is`;
  const epilogue =
    stage === 1
      ? `
      // Columns (n, n+1) are one (gate, up) pair: intermediate j = n / 2.
      if (n + 1u < Nw) {
        var g = ${r('acc[i][0] + ld_bias(e * Nw + n)')};
        var u = ${r('acc[i][1] + ld_bias(e * Nw + n + 1u)')};
        g = min(g, ${SWIGLU.limit}.0);
        u = clamp(u, -${SWIGLU.limit}.0, ${SWIGLU.limit}.0);
        act[p * Is + n / 2u] = ${r(`(u + 1.0) * g / (1.0 + exp(-${SWIGLU.alpha} * g))`)};
      }`
      : `
      for (var j = 0u; j < 2u; j++) {
        if (n + j < Nw) {
          var y = acc[i][j];
          if (prm.hasB2 == 1u) { y += ld_bias(e * Nw + n + j); }
          yk[p * H + n + j] = ${r('wts[p] * y')};
        }
      }`;
  return `${DTYPE_WGSL}${META}
@group(0) @binding(1) var<storage, read> route: array<u32>;
@group(0) @binding(2) var<storage, read> wts: array<f32>;
${aDecl}
${wDecl}
${bDecl}
${outDecl}
var<workgroup> As: array<f32, ${MOE_TM * MOE_TK}>;   // [k][m]
var<workgroup> Ws: array<f32, ${MOE_TN * MOE_TK}>;   // [k][n]
var<workgroup> rowSlot: array<u32, ${MOE_TM}>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let E = prm.E; let K = prm.K; let H = prm.H; let Is = prm.Is;
  _ = wts[0];  // bound in both stages (one layout), read by stage 2
${expertTileWgsl(stage, MOE_TM, MOE_TN)}
  workgroupBarrier();
  let tx = li % 32u; let ty = li / 32u;      // 32 × 8 threads: 2 columns × 4 rows each
  var acc: array<vec2<f32>, 4>;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec2<f32>(0.0); }
  // This thread's share of the W tile: row wn, 8 consecutive k from kc.
  let wn = li / 4u; let kc = (li % 4u) * 8u;
  let okW = n0 + wn < Nw;
  let wBase = (e * Nw + n0 + wn) * Kd;
  // Its share of the A tile: row am, 4 consecutive k from akc.
  let am = li / 8u; let akc = (li % 8u) * 4u;
  for (var k0 = 0u; k0 < Kd; k0 += ${MOE_TK}u) {
    let gk = k0 + kc;
    ${loadW}
    let p = rowSlot[am];
    for (var j = 0u; j < 4u; j++) {
      var v = 0.0;
      if (p != 0xffffffffu && k0 + akc + j < Kd) { v = ld_a(${aRow} + k0 + akc + j); }
      As[(akc + j) * ${MOE_TM}u + am] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${MOE_TK}u; kk++) {
      let wv = vec2<f32>(Ws[kk * ${MOE_TN}u + tx * 2u], Ws[kk * ${MOE_TN}u + tx * 2u + 1u]);
      for (var i = 0u; i < 4u; i++) { acc[i] += As[kk * ${MOE_TM}u + ty * 4u + i] * wv; }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let p = rowSlot[ty * 4u + i];
    let n = n0 + tx * 2u;
    if (p != 0xffffffffu) {${epilogue}
    }
  }
}
`;
}

export function moeCombineWgsl(d: WgslDType): string {
  return `${DTYPE_WGSL}${META}
@group(0) @binding(1) var<storage, read> yk: array<f32>;
${outputBinding('out', 2, d)}
fn value(i: u32) -> f32 {
  let H = prm.H; let K = prm.K;
  let t = i / H; let n = i % H;
  var s = 0.0;
  for (var k = 0u; k < K; k++) { s += yk[(t * K + k) * H + n]; }
  return ${roundExpr(d, 's')};
}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = 2u * (gid.x + gid.y * nwg.x * 256u);
  let n = prm.T * prm.H;
  if (i + 1u < n) { st2_out(i, value(i), value(i + 1u)); } else if (i < n) { st_out(i, value(i)); }
}
`;
}

/**
 * Decode-time gemm1 / gemm2: up to 8 tokens of one expert against 16 W rows per workgroup. Eight
 * groups of 32 threads each own 2 W rows; a thread reads 8 bf16 of a row per load (one vec4),
 * the tokens' activations sit packed in workgroup memory, 1024 columns at a time, so W — the
 * bytes that matter at decode — streams once, in wide coalesced loads, with 2 barriers per 1024
 * columns. Partial dot products are summed over the 32 threads in a fixed order at the end.
 * Same bind layout and epilogues as moeGemmWgsl.
 */
export function moeDecodeGemmWgsl(stage: 1 | 2): string {
  const TM = MOE_DECODE_TM,
    ROWS = MOE_DECODE_ROWS,
    KC = MOE_DECODE_KC;
  const aDecl =
    stage === 1
      ? `@group(0) @binding(3) var<storage, read> a: array<u32>;`
      : `@group(0) @binding(3) var<storage, read> a: array<f32>;`;
  const outDecl =
    stage === 1
      ? `@group(0) @binding(6) var<storage, read_write> act: array<f32>;`
      : `@group(0) @binding(6) var<storage, read_write> yk: array<f32>;`;
  // Stage 1 reads x as packed words (row offset and stride even); stage 2 packs act's f32 values, already bf16-exact.
  const loadA =
    stage === 1
      ? `v = a[(prm.xOffset + (p / K) * prm.xRowStride + k0) / 2u + w];`
      : `let base = p * Is + k0 + 2u * w; v = (bf16_bits(a[base]) | (bf16_bits(a[base + 1u]) << 16u));`;
  const epilogue =
    stage === 1
      ? `
  if (li < ${(ROWS / 2) * TM}u) {
    let pr = li / ${TM}u; let t = li % ${TM}u;
    let p = rowSlot[t];
    let n = n0 + 2u * pr;
    if (p != 0xffffffffu && n + 1u < Nw) {
      var sg = 0.0; var su = 0.0;
      for (var l = 0u; l < 32u; l++) { sg += bitcast<f32>(sh[((2u * pr) * ${TM}u + t) * 32u + l]); su += bitcast<f32>(sh[((2u * pr + 1u) * ${TM}u + t) * 32u + l]); }
      var g = round_bf16(sg + bias_v(e * Nw + n));
      var u = round_bf16(su + bias_v(e * Nw + n + 1u));
      g = min(g, ${SWIGLU.limit}.0);
      u = clamp(u, -${SWIGLU.limit}.0, ${SWIGLU.limit}.0);
      act[p * Is + n / 2u] = round_bf16((u + 1.0) * g / (1.0 + exp(-${SWIGLU.alpha} * g)));
    }
  }`
      : `
  if (li < ${ROWS * TM}u) {
    let r = li / ${TM}u; let t = li % ${TM}u;
    let p = rowSlot[t];
    let n = n0 + r;
    if (p != 0xffffffffu && n < Nw) {
      var y = 0.0;
      for (var l = 0u; l < 32u; l++) { y += bitcast<f32>(sh[(r * ${TM}u + t) * 32u + l]); }
      if (prm.hasB2 == 1u) { y += bias_v(e * Nw + n); }
      yk[p * H + n] = round_bf16(wts[p] * y);
    }
  }`;
  return `${DTYPE_WGSL}${META}
@group(0) @binding(1) var<storage, read> route: array<u32>;
@group(0) @binding(2) var<storage, read> wts: array<f32>;
${aDecl}
@group(0) @binding(4) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> bias: array<u32>;
${outDecl}
fn bias_v(i: u32) -> f32 { let x = bias[i >> 1u]; return select(bf16_lo(x), bf16_hi(x), (i & 1u) == 1u); }
// The tokens' activations, packed two per word: [token][${KC / 2} words]; reused for the partial sums.
var<workgroup> sh: array<u32, ${(TM * KC) / 2}>;
var<workgroup> rowSlot: array<u32, ${TM}>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let E = prm.E; let K = prm.K; let H = prm.H; let Is = prm.Is;
  _ = wts[0];
${expertTileWgsl(stage, TM, ROWS)}
  let g = li / 32u; let lane = li % 32u;
  let r0 = n0 + 2u * g;
  var acc: array<array<f32, ${TM}>, 2>;
  for (var i = 0u; i < 2u; i++) { for (var t = 0u; t < ${TM}u; t++) { acc[i][t] = 0.0; } }
  for (var k0 = 0u; k0 < Kd; k0 += ${KC}u) {
    workgroupBarrier();
    // Stage the tile's tokens, columns [k0, k0 + ${KC}), as packed words.
    for (var q = li; q < ${(TM * KC) / 2}u; q += 256u) {
      let t = q / ${KC / 2}u; let w = q % ${KC / 2}u;
      let p = rowSlot[t];
      var v = 0u;
      if (p != 0xffffffffu && k0 + 2u * w < Kd) { ${loadA} }
      sh[q] = v;
    }
    workgroupBarrier();
    for (var j = 0u; j < ${KC / 256}u; j++) {
      let kk = j * 256u + lane * 8u;
      if (k0 + kk < Kd) {
        for (var i = 0u; i < 2u; i++) {
          let row = r0 + i;
          if (row < Nw) {
            let q = w[((e * Nw + row) * Kd + k0 + kk) / 8u];
            let wv0 = vec4<f32>(bf16_lo(q.x), bf16_hi(q.x), bf16_lo(q.y), bf16_hi(q.y));
            let wv1 = vec4<f32>(bf16_lo(q.z), bf16_hi(q.z), bf16_lo(q.w), bf16_hi(q.w));
            for (var t = 0u; t < ${TM}u; t++) {
              let xb = t * ${KC / 2}u + kk / 2u;
              let x0 = vec4<f32>(bf16_lo(sh[xb]), bf16_hi(sh[xb]), bf16_lo(sh[xb + 1u]), bf16_hi(sh[xb + 1u]));
              let x1 = vec4<f32>(bf16_lo(sh[xb + 2u]), bf16_hi(sh[xb + 2u]), bf16_lo(sh[xb + 3u]), bf16_hi(sh[xb + 3u]));
              acc[i][t] += dot(wv0, x0) + dot(wv1, x1);
            }
          }
        }
      }
    }
  }
  workgroupBarrier();
  for (var i = 0u; i < 2u; i++) { for (var t = 0u; t < ${TM}u; t++) { sh[((2u * g + i) * ${TM}u + t) * 32u + lane] = bitcast<u32>(acc[i][t]); } }
  workgroupBarrier();${epilogue}
}
`;
}

/**
 * Layout of the decode GEMV: `groups` groups of 32 threads per workgroup, each on `rows1` W13 rows
 * (stage 1, a multiple of 4) or `rows2` W2 rows (stage 2); token slots per tile up to `maxTm`
 * (`tm` > 0 fixes them); `route1`: routing, counts and grouping in one single-workgroup dispatch;
 * `unroll`: words per row each thread loads per loop step (more loads in flight); `foldRoute`: at
 * T = 1 no routing pass, every stage-1 workgroup ranks the token's logits itself (moeGemvWgsl);
 * `prefetch`: the next step's W words load before this step's arithmetic; `fullTiles`: a tile whose
 * tm slots are all taken runs the loop without per-slot branches; `fma`: products accumulated by
 * fused multiply-adds in k order instead of two dot products per word; `stageX`: the tokens'
 * activations staged in workgroup memory as f32 (at most 8 slots).
 */
export interface MoeGemvConfig {
  groups: number;
  rows1: number;
  rows2: number;
  maxTm: number;
  tm: number;
  route1: boolean;
  unroll: number;
  foldRoute: boolean;
  prefetch: boolean;
  fullTiles: boolean;
  fma: boolean;
  stageX: boolean;
}
/**
 * The default layout, from two H100 sweeps at steady clocks (2026-12-06 19:2x–19:3x UTC,
 * bench/RESULTS.md): fused multiply-adds, the branch-free loop for full tiles and at most 4 token
 * slots took T = 64 from 1154 to 969 µs and T = 16 from 570 to 528 µs (T = 1 and 4 unchanged), and
 * 128-thread workgroups T = 64 to 947 µs: at T ≥ 16 the GEMV is bound by arithmetic, and an expert
 * split over more, smaller tiles (its weights re-read from L2) does better than fewer, larger ones.
 * The sweep after the tile scan to a constant E (2026-12-07 01:10 UTC) picked it again: T = 64 853 µs.
 */
export const MOE_GEMV_DEFAULT: MoeGemvConfig = {
  groups: 4,
  rows1: 4,
  rows2: 4,
  maxTm: 4,
  tm: 0,
  route1: true,
  unroll: 1,
  foldRoute: true,
  prefetch: false,
  fullTiles: true,
  fma: true,
  stageX: false,
};

/** Words (8 bf16) of each token slot staged per chunk by `stageX`. */
const XS_WORDS = 64;

/**
 * Token slots of a decode tile: the power of two ≥ the tokens the busiest expert is likely to get
 * (the mean T·K/E plus two standard deviations of a Poisson count; at most T), up to maxTm. An
 * expert with more tokens than its tile holds takes two tiles and streams its weights twice: at
 * T = 64 (8 ± 3 tokens an expert) 8 slots did that for many experts. At T = 4 (0.5 tokens an
 * expert) two slots beat four, 285–289 µs against 300 (H100 sweep, 2026-12-06 19:31 UTC): the rule
 * had a + 1. With the rule as it is, T = 4 took 280.6 µs in the main suite (2026-12-07 01:10 UTC).
 */
export function moeGemvTokens(T: number, K: number, E: number, cfg: MoeGemvConfig): number {
  if (cfg.tm > 0) return cfg.tm;
  const mean = (T * K) / E;
  const want = Math.min(T, mean + 2 * Math.sqrt(mean));
  let tm = 1;
  while (tm < want && tm < cfg.maxTm) tm *= 2;
  return tm;
}

/** Whether the GEMV's first stage routes itself (no routing pass): one token, tiles of one slot. */
export function moeFoldsRoute(T: number, E: number, K: number, cfg: MoeGemvConfig, tm: number): boolean {
  return cfg.foldRoute && cfg.route1 && T === 1 && tm === 1 && E <= MOE_ROUTE1_MAX_E && K <= MOE_MAX_K;
}

/** Limits of the one-workgroup routing: expert counts and (token, k) ids held in workgroup memory. */
export const MOE_ROUTE1_MAX_E = 64;
export const MOE_ROUTE1_MAX_PAIRS = 2048;
const MOE_ROUTE1_LOGITS = 2048;

/**
 * route + scan + scatter in one workgroup (decode sizes): one dispatch instead of three. Same route
 * buffer contents and routing weights as the three kernels (top-k ties to the lower id, softmax
 * over the selected logits); counts and cursors are workgroup atomics. E and K are the model's,
 * written into the WGSL (one pipeline per MoE shape) so the per-expert loops are unrolled: the
 * ranking's E workgroup loads per pair issue together instead of one dependent load per trip.
 */
export function moeRoute1Wgsl(d: WgslDType, E: number, K: number): string {
  if (E > MOE_ROUTE1_MAX_E || K > MOE_MAX_K)
    throw new Error(`moeRoute1Wgsl: ${E} experts, top ${K} exceed ${MOE_ROUTE1_MAX_E} / ${MOE_MAX_K}`);
  const chunk = Math.floor(MOE_ROUTE1_LOGITS / E);
  return `${DTYPE_WGSL}${META}
@group(0) @binding(1) var<storage, read_write> route: array<u32>;
@group(0) @binding(2) var<storage, read_write> wts: array<f32>;
${inputBinding('logits', 3, d)}
const RE = ${E}u;
const RK = ${K}u;
var<workgroup> cnt: array<atomic<u32>, ${E}>;
var<workgroup> cur: array<atomic<u32>, ${E}>;
var<workgroup> off: array<u32, ${E}>;
var<workgroup> tls: array<u32, ${E}>;
var<workgroup> ids: array<u32, ${MOE_ROUTE1_MAX_PAIRS}>;
// The logits of up to ${chunk} tokens at a time, loaded by all threads at once: the ranking below
// then reads workgroup memory instead of issuing E dependent global loads per pair.
var<workgroup> lg: array<f32, ${chunk * E}>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  let T = prm.T;
  for (var t0 = 0u; t0 < T; t0 += ${chunk}u) {
    let nt = min(${chunk}u, T - t0);
    for (var i = li; i < nt * RE; i += 256u) { lg[i] = ld_logits(prm.logitsOffset + (t0 + i / RE) * prm.logitsRowStride + i % RE); }
    for (var i = li; i < nt * RK; i += 256u) { ids[t0 * RK + i] = 0u; }
    workgroupBarrier();
    // Every (token, expert) pair finds its expert's place in the token's order (value descending,
    // ties to the lower index, as routeToken sorts) from E comparisons, all pairs at once: one
    // thread per token walking K·E·K steps left T = 1 serial. Places below K are the pick; slots are
    // zeroed first so a NaN logit (no total order) can only repeat an expert, never leave garbage.
    for (var i = li; i < nt * RE; i += 256u) {
      let tl = i / RE; let e = i % RE; let l = lg[i];
      var place = 0u;
      for (var q = 0u; q < RE; q++) {
        let o = lg[tl * RE + q];
        place += select(0u, 1u, o > l || (o == l && q < e));
      }
      if (place < RK) { ids[(t0 + tl) * RK + place] = e; }
    }
    workgroupBarrier();
    for (var tl = li; tl < nt; tl += 256u) {
      let t = t0 + tl;
      let top = lg[tl * RE + ids[t * RK]];
      var s = 0.0;
      for (var k = 0u; k < RK; k++) { s += exp(lg[tl * RE + ids[t * RK + k]] - top); }
      for (var k = 0u; k < RK; k++) {
        let e = ids[t * RK + k];
        route[rIds() + t * RK + k] = e;
        wts[t * RK + k] = exp(lg[tl * RE + e] - top) / s;
        atomicAdd(&cnt[e], 1u);
      }
    }
    workgroupBarrier();
  }
  // Offsets and first tiles: exclusive prefix sums over the experts, one thread an expert (and one
  // for the totals) instead of one thread walking them all.
  if (li < RE) {
    let c = atomicLoad(&cnt[li]);
    off[li] = c;
    tls[li] = (c + prm.tileRows - 1u) / prm.tileRows;
    route[rCounts() + li] = c;
  }
  workgroupBarrier();
  var o = 0u; var tiles = 0u;
  if (li <= RE) {
    for (var q = 0u; q < RE; q++) { if (q < li) { o += off[q]; tiles += tls[q]; } }
    route[rOffsets() + li] = o;
    route[rTiles() + li] = tiles;
  }
  workgroupBarrier();
  if (li < RE) { off[li] = o; }
  workgroupBarrier();
  for (var p = li; p < T * RK; p += 256u) {
    let e = ids[p];
    let pos = off[e] + atomicAdd(&cur[e], 1u);
    route[rSorted() + pos] = p;
  }
  workgroupBarrier();
  if (li < RE) { route[rCursor() + li] = atomicLoad(&cur[li]); }
}
`;
}

/** The GEMV fits where x rows start on whole words of 8 bf16 (W and act are laid out that way). */
export function useMoeGemv(
  T: number,
  K: number,
  E: number,
  d: WgslDType,
  H: number,
  Is: number,
  xOff: number,
  xRowStride: number,
): boolean {
  return useDecodeKernels(T, K, E, d, H, Is) && xOff % 8 === 0 && xRowStride % 8 === 0;
}

/**
 * The start of moeGemvWgsl's stage 1 when routing folds into it (one token, one slot per tile):
 * `e` the workgroup's expert, `n` = 1, `tileOf.y` its pair; workgroups past the K pairs exit.
 */
function foldedRouteWgsl(WG: number): string {
  return `  for (var i = li; i < E; i += ${WG}u) { fl[i] = ld_logits(prm.logitsOffset + i); }
  if (li < K) { fsel[li] = 0u; }
  if (li == 0u) { ftile = vec2<u32>(0xffffffffu, 0u); }
  workgroupBarrier();
  // The expert at each place of the token's order (moeRoute1Wgsl's ranking, NaN rule included).
  for (var i = li; i < E; i += ${WG}u) {
    let l = fl[i]; var place = 0u;
    for (var q = 0u; q < E; q++) { let o = fl[q]; if (o > l || (o == l && q < i)) { place++; } }
    if (place < K) { fsel[place] = i; }
  }
  workgroupBarrier();
  // Pair k's tile: its rank in expert order (k breaks the tie of an expert picked twice), the
  // numbering of the routing pass at one slot per tile.
  if (li < K) {
    let ek = fsel[li]; var rank = 0u;
    for (var k = 0u; k < K; k++) { let o = fsel[k]; if (o < ek || (o == ek && k < li)) { rank++; } }
    if (rank == wid.x) { ftile = vec2<u32>(ek, li); }
    if (wid.x == 0u && wid.y == 0u) {
      // What moeRoute1Wgsl writes, for stage 2: ids, weights (softmax in k order), sorted pairs.
      let top = fl[fsel[0]];
      var s = 0.0;
      for (var k = 0u; k < K; k++) { s += exp(fl[fsel[k]] - top); }
      route[rIds() + li] = ek;
      wts[li] = exp(fl[ek] - top) / s;
      route[rSorted() + rank] = li;
    }
  }
  if (wid.x == 0u && wid.y == 0u) {
    // Per expert: its count, cursor, offset and first tile (one slot per tile: tiles = offsets).
    for (var q = li; q <= E; q += ${WG}u) {
      var c = 0u; var o = 0u;
      for (var k = 0u; k < K; k++) { let ek = fsel[k]; c += select(0u, 1u, ek == q); o += select(0u, 1u, ek < q); }
      if (q < E) { route[rCounts() + q] = c; route[rCursor() + q] = c; }
      route[rOffsets() + q] = o; route[rTiles() + q] = o;
    }
  }
  let tileOf = workgroupUniformLoad(&ftile);
  if (tileOf.x == 0xffffffffu) { return; }
  let e = tileOf.x;
  let n = 1u;`;
}

/**
 * moeGemvWgsl's k loop over a tile's W rows and token slots (accumulators a{row}_{slot}, the
 * workgroup's `n` slots taken): lane-strided words, and the options of MoeGemvConfig (prefetch,
 * unroll, fma, stageX, fullTiles). `stagedRow`: the word index of slot `t`'s activation row.
 */
function gemvLoopWgsl(cfg: MoeGemvConfig, tm: number, R: number, G: number, stagedRow: string): string {
  const rs = Array.from({ length: R }, (_, i) => i);
  const ts = Array.from({ length: tm }, (_, i) => i);
  const U = Math.max(1, cfg.unroll);
  const us = Array.from({ length: U }, (_, i) => i);
  // `fma`: the 8 products of a word added one fused multiply-add at a time, in k order (a
  // different, equally exact-per-step order than the two dot products: not bitwise the same).
  const fmaTerms = (acc: string, wl: string, wh: string) =>
    `${acc} = ${['x', 'y', 'z', 'w'].reduce((e, c) => `fma(${wh}.${c}, xh.${c}, fma(${wl}.${c}, xl.${c}, ${e}))`, acc)};`;
  // Slot t's terms of word column k; `load` defines its activation halves xl / xh (by default the
  // packed word from global memory, unpacked).
  const tokenTerms = (
    guard: boolean,
    load = (t: number) => `let v = a[x${t} + k]; let xl = lo4(v); let xh = hi4(v);`,
  ) =>
    ts
      .map(
        (t) => `${guard && t > 0 ? `if (${t}u < n) ` : ''}{
      ${load(t)}
      ${rs.map((r) => (cfg.fma ? fmaTerms(`a${r}_${t}`, `wl${r}`, `wh${r}`) : `a${r}_${t} += dot(wl${r}, xl) + dot(wh${r}, xh);`)).join(' ')}
    }`,
      )
      .join('\n    ');
  const unpack = rs.map((r) => `let wl${r} = lo4(q${r}); let wh${r} = hi4(q${r});`).join('\n    ');
  // The k loop: lane-strided words, `unroll` words per row per step; with `prefetch` the next
  // step's W words are loaded before this step's terms (loads of two steps in flight per thread).
  // `stageX`: the tile's activations staged in workgroup memory as f32, 64 words of every slot at a
  // time (tm · 2 KB), so a step reads two vec4<f32> per token instead of a packed word to unpack.
  const staged = (guard: boolean) => `for (var c0 = 0u; c0 < Kw; c0 += ${XS_WORDS}u) {
    workgroupBarrier();
    for (var i = li; i < ${tm * XS_WORDS}u; i += ${32 * G}u) {
      let t = i / ${XS_WORDS}u; let kw = c0 + i % ${XS_WORDS}u;
      var v = vec4<u32>(0u);
      if (t < n && kw < Kw) { v = a[${stagedRow} + kw]; }
      xs[2u * i] = lo4(v); xs[2u * i + 1u] = hi4(v);
    }
    workgroupBarrier();
    for (var s = 0u; s < ${XS_WORDS / 32}u; s++) {
      let k = c0 + lane + 32u * s;
      if (k < Kw) {
        ${rs.map((r) => `let q${r} = w[w${r} + k];`).join(' ')}
        ${unpack}
        ${tokenTerms(guard, (t) => `let xl = xs[${2 * t * XS_WORDS}u + 2u * (k - c0)]; let xh = xs[${2 * t * XS_WORDS}u + 2u * (k - c0) + 1u];`)}
      }
    }
  }`;
  const loopOf = (guard: boolean) =>
    cfg.stageX
      ? staged(guard)
      : cfg.prefetch
        ? `${rs.map((r) => `var q${r} = vec4<u32>(0u);`).join(' ')}
  if (lane < Kw) { ${rs.map((r) => `q${r} = w[w${r} + lane];`).join(' ')} }
  for (var k = lane; k < Kw; k += 32u) {
    ${unpack}
    if (k + 32u < Kw) { ${rs.map((r) => `q${r} = w[w${r} + k + 32u];`).join(' ')} }
    ${tokenTerms(guard)}
  }`
        : `for (var k0 = lane; k0 < Kw; k0 += ${32 * U}u) {
${us
  .map(
    (u) => `    ${u > 0 ? `if (k0 + ${32 * u}u < Kw) ` : ''}{
    let k = k0 + ${32 * u}u;
    ${rs.map((r) => `let q${r} = w[w${r} + k];`).join(' ')}
    ${unpack}
    ${tokenTerms(guard)}
    }`,
  )
  .join('\n')}
  }`;
  // `fullTiles`: a tile with all tm slots taken runs a copy of the loop with no slot branches, so
  // the tokens' loads of a step can all be issued at once.
  const kLoop =
    cfg.fullTiles && tm > 1
      ? `  if (n == ${tm}u) {
  ${loopOf(false)}
  } else {
  ${loopOf(true)}
  }`
      : `  ${loopOf(true)}`;
  return kLoop;
}

/**
 * Decode-time gemm1 / gemm2 as a batched GEMV: a workgroup is one (expert, ≤ tm tokens) tile ×
 * groups·rows W rows. The 32 threads of a group read consecutive words (8 bf16) of each of their
 * rows, so W streams once per tile in coalesced 16-byte loads; every thread keeps rows × tm partial
 * dot products in registers and reads the tokens' activations (a few KB, cache-resident) as packed
 * words, each load shared by its rows. Token slots past the tile's count are skipped by a branch
 * that is uniform over the workgroup. The 32 partial sums of a (row, token) are reduced by a
 * butterfly of subgroup shuffles (subgroup size ≥ 32), else through workgroup memory in a fixed order.
 * Stage 1 writes act as packed bf16 (a row pair per intermediate; 4 rows = one word per token),
 * which stage 2 reads as words. Same bind layout and roundings as moeGemmWgsl.
 *
 * `foldLogits` (stage 1, one token, one slot per tile; moeFoldsRoute): there is no routing pass.
 * Every workgroup ranks the token's logits (binding 7, of that dtype) as moeRoute1Wgsl does and
 * takes the tile-th (expert, k) pair in expert order, the tile numbering of the routing pass;
 * workgroup (0, 0) also writes the route buffer and the routing weights moeRoute1Wgsl would, for
 * stage 2. The pass floor of a separate routing dispatch is most of what routing cost at T = 1.
 */
export function moeGemvWgsl(
  stage: 1 | 2,
  cfg: MoeGemvConfig,
  tm: number,
  sg: number,
  experts: number,
  foldLogits: WgslDType | null = null,
): string {
  if (foldLogits && (stage !== 1 || tm !== 1))
    throw new Error(
      `moeGemvWgsl: routing folds into stage 1 with one token slot only (stage ${stage}, ${tm})`,
    );
  if (cfg.stageX && 2 * tm * XS_WORDS * 16 > 16384)
    throw new Error(`moeGemvWgsl: ${tm} staged token slots exceed 16 KB of workgroup memory`);
  const G = cfg.groups;
  const R = stage === 1 ? cfg.rows1 : cfg.rows2;
  if (stage === 1 && R % 4 !== 0)
    throw new Error(`moeGemvWgsl: stage 1 needs rows in fours (one act word per token), got ${R}`);
  const rs = Array.from({ length: R }, (_, i) => i);
  const ts = Array.from({ length: tm }, (_, i) => i);
  const butterfly = sg >= 32;
  // Partials per (row, token) in workgroup memory when a group spans several subgroups (or none).
  const P = butterfly ? 1 : sg > 0 && 32 % sg === 0 ? 32 / sg : 32;
  const useSub = sg > 0 && (butterfly || 32 % sg === 0);
  const aRowOf = (p: string) =>
    stage === 1 ? `(prm.xOffset + (${p} / K) * prm.xRowStride) / 8u` : `${p} * (Is / 8u)`;
  const aRow = (t: number) => aRowOf(`p${t}`);
  const reduce = butterfly
    ? rs
        .flatMap((r) =>
          ts.map(
            (t) =>
              `var s${r}_${t} = a${r}_${t};${[16, 8, 4, 2, 1].map((m) => ` s${r}_${t} += subgroupShuffleXor(s${r}_${t}, ${m}u);`).join('')}`,
          ),
        )
        .join('\n  ')
    : `${rs.flatMap((r) => ts.map((t) => `{ let v = ${useSub ? `subgroupAdd(a${r}_${t})` : `a${r}_${t}`}; if (${useSub ? 'sgid == 0u' : 'true'}) { red[((g * ${R}u + ${r}u) * ${tm}u + ${t}u) * ${P}u + lane / ${32 / P}u] = v; } }`)).join('\n  ')}
  workgroupBarrier();
  ${rs.flatMap((r) => ts.map((t) => `var s${r}_${t} = 0.0; for (var j = 0u; j < ${P}u; j++) { s${r}_${t} += red[((g * ${R}u + ${r}u) * ${tm}u + ${t}u) * ${P}u + j]; }`)).join('\n  ')}`;
  const epilogue =
    stage === 1
      ? ts
          .map(
            (t) => `if (lane == ${t}u && ${t}u < n) {
${Array.from(
  { length: R / 4 },
  (_, q) => `    if (r0 + ${4 * q}u < Nw) {
      var pair: array<u32, 2>;
${[0, 1]
  .map(
    (h) => `      {
        var gt = round_bf16(s${4 * q + 2 * h}_${t} + bias_v(e * Nw + r0 + ${4 * q + 2 * h}u));
        var up = round_bf16(s${4 * q + 2 * h + 1}_${t} + bias_v(e * Nw + r0 + ${4 * q + 2 * h + 1}u));
        gt = min(gt, ${SWIGLU.limit}.0);
        up = clamp(up, -${SWIGLU.limit}.0, ${SWIGLU.limit}.0);
        pair[${h}] = bf16_bits((up + 1.0) * gt / (1.0 + exp(-${SWIGLU.alpha} * gt)));
      }`,
  )
  .join('\n')}
      act[p${t} * (Is / 2u) + (r0 + ${4 * q}u) / 4u] = pair[0] | (pair[1] << 16u);
    }`,
).join('\n')}
  }`,
          )
          .join('\n  ')
      : ts
          .map(
            (t) => `if (lane == ${t}u && ${t}u < n) {
${rs
  .map(
    (r) => `    if (r0 + ${r}u < Nw) {
      var y = s${r}_${t};
      if (prm.hasB2 == 1u) { y += bias_v(e * Nw + r0 + ${r}u); }
      yk[p${t} * H + r0 + ${r}u] = round_bf16(wts[p${t}] * y);
    }`,
  )
  .join('\n')}
  }`,
          )
          .join('\n  ');
  // The tokens' terms of one word column k of the tile's rows (wl/wh: the rows' unpacked words);
  // `guard`: slots past n are skipped by a branch uniform over the workgroup.
  const kLoop = gemvLoopWgsl(
    cfg,
    tm,
    R,
    G,
    aRowOf(foldLogits ? 'tileOf.y' : 'route[rSorted() + rowBase + t]'),
  );
  const WG = 32 * G;
  const tileStart = foldLogits
    ? foldedRouteWgsl(WG)
    : `${tileExpertWgsl(tm, experts)}
  let n = min(${tm}u, route[rOffsets() + e + 1u] - rowBase);`;
  const access = foldLogits ? 'read_write' : 'read';
  return `${useSub ? 'enable subgroups;\n' : ''}${DTYPE_WGSL}${PACKED4_WGSL}${META}
@group(0) @binding(1) var<storage, ${access}> route: array<u32>;
@group(0) @binding(2) var<storage, ${access}> wts: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> bias: array<u32>;
${stage === 1 ? '@group(0) @binding(6) var<storage, read_write> act: array<u32>;' : '@group(0) @binding(6) var<storage, read_write> yk: array<f32>;'}
fn bias_v(i: u32) -> f32 { let x = bias[i >> 1u]; return select(bf16_lo(x), bf16_hi(x), (i & 1u) == 1u); }
${butterfly ? '' : `var<workgroup> red: array<f32, ${G * R * tm * P}>;`}
${cfg.stageX ? `var<workgroup> xs: array<vec4<f32>, ${2 * tm * XS_WORDS}>;` : ''}
${
  foldLogits
    ? `${inputBinding('logits', 7, foldLogits)}
var<workgroup> fl: array<f32, ${MOE_ROUTE1_MAX_E}>;
var<workgroup> fsel: array<u32, ${MOE_MAX_K}>;
var<workgroup> ftile: vec2<u32>;`
    : ''
}

@compute @workgroup_size(${32 * G})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32${useSub && !butterfly ? ', @builtin(subgroup_invocation_id) sgid: u32' : ''}) {
  let E = prm.E; let K = prm.K; let H = prm.H; let Is = prm.Is;
  _ = wts[0];
${tileStart}
  let Nw = ${stage === 1 ? '2u * Is' : 'H'};
  let Kw = ${stage === 1 ? 'H' : 'Is'} / 8u;
  let g = li / 32u; let lane = li % 32u;
  let r0 = wid.y * ${G * R}u + g * ${R}u;
  // Slots past n read slot 0's token: valid addresses, results never used.
  ${ts.map((t) => `let p${t} = ${foldLogits ? 'tileOf.y' : `route[rSorted() + rowBase + select(0u, ${t}u, ${t}u < n)]`}; let x${t} = ${aRow(t)};`).join('\n  ')}
  // Rows past the end re-read the last row: no branch in the loop, results never stored.
  ${rs.map((r) => `let w${r} = (e * Nw + min(r0 + ${r}u, Nw - 1u)) * Kw;`).join(' ')}
  ${rs.flatMap((r) => ts.map((t) => `var a${r}_${t} = 0.0;`)).join(' ')}
${kLoop}
  ${reduce}
  ${epilogue}
}
`;
}
