// FP8 quantization and FP8 GEMMs: vLLM's static, dynamic per-tensor and dynamic per-token quant
// (csrc/quantization/w8a8/fp8/common.cu), cutlass_scaled_mm and torch's _scaled_mm. Quantized
// values are held in the run dtype (every e4m3fn value is exact in bf16); scales are f32, as
// vLLM's are. NVFP4 (scaled_fp4_quant) is emulated: e2m1 codes packed two per byte, e4m3 block
// scales, held as their values in the run dtype.

import { isRef, type Arg } from '../../graph/ir.ts';
import { F8E4M3FN_MAX } from '../../graph/fp8.ts';
import { NVFP4_BLOCK, SWIZZLE_TILE_COLS, SWIZZLE_TILE_ROWS, swizzledScaleDims } from '../../graph/fp4.ts';
import { torchDtype } from '../../graph/ops.ts';
import type { MapFn, StorageDType, View } from '../../graph/opTable.ts';
import type { PlanBuilder } from './builder.ts';
import { isContiguous, numelOf } from './layout.ts';
import { tensorValue as T, type LoweredOp, type Lowering, type OpCall } from './lowering.ts';

/** vLLM's min_scaling_factor<float8_e4m3fn>: 1 / (448 · 512) in f32, the smallest per-token scale. */
const MIN_SCALING_FACTOR = Math.fround(1 / (F8E4M3FN_MAX * 512));

/**
 * The per-token and the fused norm kernels' scale rule (layernorm_utils.cuh
 * compute_dynamic_per_token_scales, dynamic_per_token_scaled_fp8_quant): max(max|·| / 448,
 * 1/(448·512)), f32; fp8_quant_rows' eps 0 leaves the absmax as it is.
 */
export const NORM_BLOCK_SCALE = { max: F8E4M3FN_MAX, minScale: MIN_SCALING_FACTOR } as const;

/** A scaled GEMM's out_dtype argument: None keeps the FP8 dtype (values held in the run's dtype). */
export function scaledMmDtype(b: PlanBuilder, a: Arg): StorageDType | 'f8e4m3fn' {
  const to = torchDtype(a) ?? 'f8e4m3fn';
  return to === 'f8e4m3fn' ? to : b.computedDtype(to, [], b.dtype);
}

/** One map step into a new storage named `name`. */
export function mapStep(
  b: PlanBuilder,
  c: OpCall,
  name: string,
  fn: MapFn,
  a: View,
  y: View | null,
  scalar: number,
  dtype: StorageDType,
  shape = a.shape,
): View {
  const out = b.newStorage(`${c.node.name}.${name}`, dtype, shape);
  b.push(c.node, { kernel: 'map', fn, a, b: y, scalar, out: out.storage });
  return out;
}

/**
 * max|x| over rows of `rowLength` consecutive elements of contiguous `x` (the whole tensor, a token's
 * row or a group of its columns), into `shape`, in x's dtype (exact).
 */
function absMax(b: PlanBuilder, c: OpCall, x: View, rowLength: number, shape: number[]): View {
  const abs = mapStep(b, c, 'abs', 'abs', x, null, 0, x.dtype);
  const rows = numelOf(x.shape) / rowLength;
  const view: View = { ...abs, shape: [rows, rowLength], strides: [rowLength, 1] };
  const out = b.newStorage(`${c.node.name}.absmax`, x.dtype, shape);
  b.push(c.node, { kernel: 'reduce_rows', x: view, mean: false, out: out.storage });
  return out;
}

/** The last dim of `x` (1 for a scalar). */
const lastDim = (x: View): number => x.shape[x.shape.length - 1] ?? 1;

/** A scale of a [M, N] product: one value, one per row ([M, 1]) or one per column ([1, N]). */
function gemmScale(c: OpCall, s: View, M: number, N: number, what: string): View {
  const n = numelOf(s.shape);
  if (n === 1) return { ...s, shape: [1], strides: [1] };
  if (n === M && n !== N) return { ...s, shape: [M, 1], strides: [1, 0] };
  if (n === N && n !== M) return { ...s, shape: [1, N], strides: [0, 1] };
  if (n === M && s.shape[0] === M) return { ...s, shape: [M, 1], strides: [1, 0] };
  if (n === N) return { ...s, shape: [1, N], strides: [0, 1] };
  return c.fail(`${what} has ${n} elements: one, one per row (${M}) or one per column (${N})`);
}

/**
 * Block scales: a's [M, K/g] (per token and K-group), b's [K/g, N/gn] with more than one row or
 * block column ([1, N] is a per-column scale, not blocks).
 */
function isBlockScaled(sa: View, sb: View, M: number, N: number): boolean {
  if (sa.shape.length !== 2 || sb.shape.length !== 2 || sa.shape[0] !== M) return false;
  return sb.shape[0] === sa.shape[1] && (sb.shape[0]! > 1 || sb.shape[1] !== N);
}

/**
 * The block-scaled FP8 product (W8A8BlockFp8LinearOp through cutlass_scaled_mm; CUTLASS's blockwise
 * kernels, csrc/quantization/w8a8/cutlass/c3x/scaled_mm_blockwise_*): per K-group kb, the f32
 * product of its columns of a and rows of b, times a_scale[m, kb] · b_scale[kb, n / gn], summed over
 * the groups in order. The per-group products are the gemm kernel's contract.
 */
function blockScaledProduct(b: PlanBuilder, c: OpCall, a32: View, w32: View, sa: View, sb: View): View {
  const [M, K] = a32.shape as [number, number],
    N = w32.shape[1]!;
  const G = sa.shape[1]!,
    Gn = sb.shape[1]!;
  if (K % G !== 0 || N % Gn !== 0)
    c.fail(`block scales [${sa.shape}] · [${sb.shape}] do not tile [${M}, ${K}] · [${K}, ${N}]`);
  const g = K / G,
    gn = N / Gn;
  let acc: View | null = null;
  for (let kb = 0; kb < G; kb++) {
    const ak = b.contiguous({ ...a32, shape: [M, g], strides: [K, 1], offset: a32.offset + kb * g }, c.node);
    const wk = b.contiguous(
      { ...w32, shape: [g, N], strides: [N, 1], offset: w32.offset + kb * g * N },
      c.node,
    );
    const part = b.newStorage(`${c.node.name}.acc${kb}`, 'f32', [M, N]);
    b.push(c.node, { kernel: 'gemm', a: ak, b: wk, bias: null, alpha: 1, beta: 0, out: part.storage });
    // a_scale[m, kb] · b_scale[kb, j] for each block column j, then the product's blocks by it.
    const saK: View = {
      ...sa,
      shape: [M, 1, 1],
      strides: [sa.strides[0]!, 0, 0],
      offset: sa.offset + kb * sa.strides[1]!,
    };
    const sbK: View = {
      ...sb,
      shape: [1, Gn, 1],
      strides: [0, sb.strides[1]!, 0],
      offset: sb.offset + kb * sb.strides[0]!,
    };
    const scale = mapStep(b, c, `scale${kb}`, 'mul', saK, sbK, 0, 'f32', [M, Gn, 1]);
    const scaled = mapStep(
      b,
      c,
      `scaled${kb}`,
      'mul',
      { ...part, shape: [M, Gn, gn], strides: [N, gn, 1] },
      scale,
      0,
      'f32',
    );
    const flat: View = { ...scaled, shape: [M, N], strides: [N, 1] };
    if (acc) {
      const sum = b.newStorage(`${c.node.name}.sum${kb}`, 'f32', [M, N]);
      b.push(c.node, { kernel: 'add', a: acc, b: flat, alpha: 1, out: sum.storage });
      acc = sum;
    } else acc = flat;
  }
  return acc!;
}

/**
 * An FP8 GEMM: the operands as e4m3fn values widened to f32, their f32 product (the gemm kernel's
 * contract), times b's scale then a's, each rounded to f32 (CUTLASS's ScaledEpilogue:
 * a_scale · (b_scale · acc)), plus the bias, cast to `to`.
 */
export function scaledMm(
  b: PlanBuilder,
  c: OpCall,
  a: View,
  w: View,
  sa: View,
  sb: View,
  bias: View | null,
  to: StorageDType | 'f8e4m3fn',
  name: string,
): View {
  if (a.shape.length !== 2 || w.shape.length !== 2 || a.shape[1] !== w.shape[0])
    c.fail(`multiplies [${a.shape}] by [${w.shape}]`);
  const M = a.shape[0],
    N = w.shape[1];
  const a32 = mapStep(b, c, 'a_f32', 'to_f8e4m3fn', a, null, 0, 'f32');
  const w32 = mapStep(b, c, 'b_f32', 'to_f8e4m3fn', w, null, 0, 'f32');
  let y: View;
  if (isBlockScaled(sa, sb, M, N)) y = blockScaledProduct(b, c, a32, w32, sa, sb);
  else {
    const acc = b.newStorage(`${c.node.name}.acc`, 'f32', [M, N]);
    b.push(c.node, { kernel: 'gemm', a: a32, b: w32, bias: null, alpha: 1, beta: 0, out: acc.storage });
    const bScaled = mapStep(b, c, 'scale_b', 'mul', acc, gemmScale(c, sb, M, N, 'the b scale'), 0, 'f32');
    y = mapStep(b, c, 'scale_a', 'mul', bScaled, gemmScale(c, sa, M, N, 'the a scale'), 0, 'f32');
  }
  if (bias) {
    const out = b.newStorage(`${c.node.name}.bias`, 'f32', [M, N]);
    b.push(c.node, { kernel: 'add', a: y, b: bias, alpha: 1, out: out.storage });
    y = out;
  }
  const dtype = to === 'f8e4m3fn' ? b.dtype : to;
  return mapStep(b, c, name, to === 'f8e4m3fn' ? 'to_f8e4m3fn' : 'cast', y, null, 0, dtype);
}

/** A quant's results: the quantized values (held in the run dtype) and their scales. */
export interface Quantized {
  out: View;
  scale: View;
}

/**
 * The dynamic per-token FP8 quant of the rows of `x` (contiguous): scale = max(max|row| / 448,
 * 1/(448·512)) in f32; result = e4m3fn(clamp(row / scale, ±448)), held in x's dtype.
 */
export function perTokenFp8Quant(b: PlanBuilder, c: OpCall, x: View): Quantized {
  const rows = numelOf(x.shape) / lastDim(x);
  // scaled_fp8_conversion<false>: x / scale (f32, correctly rounded), then the clamp and the cast.
  return quantRows(b, c, x, lastDim(x), [rows, 1], { eps: 0, ...NORM_BLOCK_SCALE });
}

/**
 * One fp8_quant_rows step over rows of `rowLength` consecutive elements of contiguous `x`: the
 * values (x's shape and dtype) and one f32 scale per row (`scaleShape`), as vLLM's one-launch
 * per-token and per-group kernels compute them.
 */
function quantRows(
  b: PlanBuilder,
  c: OpCall,
  x: View,
  rowLength: number,
  scaleShape: number[],
  rule: { eps: number; max: number; minScale: number },
): Quantized {
  const rows: View = { ...x, shape: [numelOf(x.shape) / rowLength, rowLength], strides: [rowLength, 1] };
  const out = b.newStorage(`${c.node.name}.result`, x.dtype, x.shape);
  const scale = b.newStorage(`${c.node.name}.scale`, 'f32', scaleShape);
  b.push(c.node, { kernel: 'fp8_quant_rows', x: rows, ...rule, out: out.storage, scaleOut: scale.storage });
  return { out, scale };
}

/**
 * How a per-group scale is computed, as each of vLLM's kernels does (f32 throughout); both then
 * quantize x / scale (scaled_fp8_conversion<false>):
 * - 'group-quant' (per_token_group_fp8_quant, csrc/quantization/w8a8/fp8/per_token_group_quant.cu
 *   ComputeGroupScale: the absmax starts at eps): scale = max(eps, max|group|) / fp8_max;
 * - 'norm-block' (rms_norm_per_block_quant, csrc/quantization/fused_kernels/layernorm_utils.cuh
 *   compute_dynamic_per_token_scales with a group size): scale = max(max|group| / 448, 1/(448·512)).
 */
export type GroupScaleRule = { kind: 'group-quant'; eps: number; max: number } | { kind: 'norm-block' };

/**
 * The per-token-group FP8 quant of contiguous `x` [..., H]: one scale per `group` consecutive columns
 * of a token ([..., H / group] f32, a token's groups in a row: the logical layout whether vLLM stores
 * it row- or column-major), each element e4m3fn(clamp(·, ±max)) held in x's dtype.
 */
export function perGroupFp8Quant(
  b: PlanBuilder,
  c: OpCall,
  x: View,
  group: number,
  rule: GroupScaleRule,
): Quantized {
  const H = lastDim(x);
  if (!Number.isInteger(group) || group <= 0 || H % group !== 0)
    c.fail(`group size ${group} does not divide the last dim ${H}`);
  // maxs(·, 0) and maxs(·, eps = 0) leave a non-negative absmax and scale as they are.
  const scaleRule =
    rule.kind === 'group-quant'
      ? { eps: rule.eps, max: rule.max, minScale: 0 }
      : { eps: 0, ...NORM_BLOCK_SCALE };
  return quantRows(b, c, x, group, [...x.shape.slice(0, -1), H / group], scaleRule);
}

/**
 * NVFP4 quant of contiguous `x` [..., K] by its global scale S ([1] f32), as vLLM's
 * cvt_warp_fp16_to_fp4 (src/graph/fp4.ts): the e4m3 block scales (one per 16 elements), then the
 * e2m1 pairs packed by them (the even element in the low nibble). Packed bytes and block scales are
 * held as their values in x's dtype. The scales are [..., K/16] row-major ('linear'), or in vLLM's
 * swizzled 128 × 4 tiles ('swizzled': [roundUp(rows, 128), roundUp(K/16, 4)], zero padding), the
 * layout its buffer declares (scaleLayout).
 */
export function nvfp4Quant(
  b: PlanBuilder,
  c: OpCall,
  x: View,
  globalScale: View,
  layout: ScaleLayout = 'linear',
): Quantized {
  const K = lastDim(x);
  if (K % NVFP4_BLOCK !== 0) c.fail(`the last dim ${K} is not a multiple of ${NVFP4_BLOCK}`);
  const S: View = { ...globalScale, shape: [1], strides: [1] };
  const lead = x.shape.slice(0, -1);
  const scale = b.newStorage(`${c.node.name}.block_scale`, x.dtype, [...lead, K / NVFP4_BLOCK]);
  b.push(c.node, { kernel: 'nvfp4_scale', x, globalScale: S, out: scale.storage });
  const out = b.newStorage(`${c.node.name}.packed`, x.dtype, [...lead, K / 2]);
  b.push(c.node, { kernel: 'nvfp4_quant', x, scale, globalScale: S, out: out.storage });
  if (layout === 'linear') return { out, scale };
  return { out, scale: swizzleScales(b, c, scale, numelOf(lead), K / NVFP4_BLOCK) };
}

/** How block scales are laid out: row-major [rows, K/16], or vLLM's swizzled 128 × 4 tiles (src/graph/fp4.ts). */
export type ScaleLayout = 'linear' | 'swizzled';

/**
 * The layout of block-scale argument `i` (rows × cols scales), from its view and its declared type:
 * swizzled where it holds the padded tiles (swizzledScaleDims) and is declared int32 (vLLM's
 * scaled_fp4_quant allocates the swizzled scales as int32, four a word: a quarter as many elements)
 * or with static dims (vLLM's swizzle_blockscale of a weight's scales; where the padded and the
 * unpadded shapes coincide, CUTLASS reads them swizzled); linear where it holds rows × cols (a
 * token-sized [T, K/16] buffer, as the captures write); null when it is neither.
 */
export function scaleLayout(
  b: PlanBuilder,
  c: OpCall,
  i: number,
  rows: number,
  cols: number,
): ScaleLayout | null {
  const a = c.arg(i);
  const declared = isRef(a) ? (b.nodesByName.get(a.name)?.type ?? b.inputs.get(a.name)?.type) : undefined;
  const t = declared?.kind === 'tensor' ? declared : undefined;
  const n = numelOf(c.tensor(i, 'block scales').shape);
  const [Rp, Cp] = swizzledScaleDims(rows, cols);
  if (t?.dtype === 'i32' && (n * 4 === Rp * Cp || n === Rp * Cp)) return 'swizzled';
  if (t && t.dtype !== 'i32' && n === Rp * Cp && t.shape.every((d) => typeof d === 'number'))
    return 'swizzled';
  return n === rows * cols && t?.dtype !== 'i32' ? 'linear' : null;
}

/**
 * Linear [rows, cols] scales into the swizzled layout: padded with zeros to [Rp, Cp], then copied
 * through the tiles' strides, in the swizzled order (row tile, column tile, row % 32, row / 32 % 4,
 * col % 4). Held as [Rp, Cp].
 */
function swizzleScales(b: PlanBuilder, c: OpCall, linear: View, rows: number, cols: number): View {
  const [Rp, Cp] = swizzledScaleDims(rows, cols);
  const src = wholeStorage(b, c, { ...linear, shape: [rows, cols], strides: [cols, 1] }, 'scale_rows');
  let padded = src;
  if (Rp !== rows || Cp !== cols) {
    padded = b.newStorage(`${c.node.name}.scale_padded`, src.dtype, [Rp, Cp]);
    b.push(c.node, { kernel: 'pad', x: src, lo: [0, 0], value: 0, out: padded.storage });
  }
  const tiles = [Rp / SWIZZLE_TILE_ROWS, Cp / SWIZZLE_TILE_COLS, 32, 4, 4];
  const out = b.newStorage(`${c.node.name}.scale_swizzled`, src.dtype, tiles);
  b.push(c.node, {
    kernel: 'copy',
    x: { ...padded, shape: tiles, strides: [SWIZZLE_TILE_ROWS * Cp, SWIZZLE_TILE_COLS, Cp, 32 * Cp, 1] },
    out: out.storage,
  });
  return { ...out, shape: [Rp, Cp], strides: [Cp, 1] };
}

/** Swizzled scales back to linear [rows, cols]: the padded rows read through the tiles' strides, then the unpadded corner. */
function unswizzleScales(
  b: PlanBuilder,
  c: OpCall,
  swizzled: View,
  rows: number,
  cols: number,
  name: string,
): View {
  const [Rp, Cp] = swizzledScaleDims(rows, cols);
  const s = wholeStorage(b, c, { ...swizzled, shape: [Rp * Cp], strides: [1] }, `${name}_tiles`);
  const order = [Rp / SWIZZLE_TILE_ROWS, 4, 32, Cp / SWIZZLE_TILE_COLS, 4];
  const padded = b.newStorage(`${c.node.name}.${name}_linear`, s.dtype, order);
  b.push(c.node, {
    kernel: 'copy',
    x: { ...s, shape: order, strides: [(Cp / SWIZZLE_TILE_COLS) * 512, 4, 16, 512, 1] },
    out: padded.storage,
  });
  return wholeStorage(b, c, { ...padded, shape: [rows, cols], strides: [Cp, 1] }, `${name}_rows`);
}

/** `v`'s values as a whole storage read from element 0 (what the NVFP4 kernels read), copied if need be. */
function wholeStorage(b: PlanBuilder, c: OpCall, v: View, name: string): View {
  if (v.offset === 0 && isContiguous(v)) return v;
  const out = b.newStorage(`${c.node.name}.${name}`, v.dtype, v.shape);
  b.push(c.node, { kernel: 'copy', x: v, out: out.storage });
  return out;
}

export const QUANT_LOWERINGS = {
  '_C.static_scaled_fp8_quant.default': {
    lower: (b, c) => {
      const x = b.contiguous(c.tensor(1, 'input'), c.node);
      const scale = c.tensor(2, 'scale', { role: 'norm-weight', shape: [1] });
      const out = b.newStorage(`${c.node.name}.result`, x.dtype, x.shape);
      b.push(c.node, { kernel: 'fp8_quant', x, scale, satfinite: false, out: out.storage });
      return { t: 'tuple', items: [{ t: 'none' }, T(out)] };
    },
  },
  // scale = max|x| / 448 in f32; result = e4m3fn(clamp(x · (1 / scale), ±448)): the static kernel on that scale.
  '_C.dynamic_scaled_fp8_quant.default': {
    lower: (b, c) => {
      const x = b.contiguous(c.tensor(1, 'input'), c.node);
      const absmax = absMax(b, c, x, numelOf(x.shape), [1]);
      const scale = mapStep(b, c, 'scale', 'divs', absmax, null, F8E4M3FN_MAX, 'f32');
      const out = b.newStorage(`${c.node.name}.result`, x.dtype, x.shape);
      b.push(c.node, { kernel: 'fp8_quant', x, scale, satfinite: false, out: out.storage });
      return { t: 'tuple', items: [{ t: 'none' }, T(out), T(scale)] };
    },
  },
  // Per row: scale = max(max|row| / 448, 1/(448·512)) in f32; result = e4m3fn(clamp(row / scale, ±448)).
  '_C.dynamic_per_token_scaled_fp8_quant.default': {
    lower: (b, c) => {
      const x = b.contiguous(c.tensor(1, 'input'), c.node);
      if (c.arg(3) !== null) c.fail('scale_ub (an upper bound on the per-token absmax) has no kernel');
      const { out, scale } = perTokenFp8Quant(b, c, x);
      return { t: 'tuple', items: [{ t: 'none' }, T(out), T(scale)] };
    },
  },
  // (input, output_q!, output_s!, group_size, eps, fp8_min, fp8_max, scale_ue8m0, …) → [1] output_q, [2] output_s.
  '_C.per_token_group_fp8_quant.default': {
    lower: (b, c) => {
      if (c.arg(7) === true) c.fail('scale_ue8m0 (power-of-two scales for DeepGEMM) has no kernel');
      const min = c.num(5, -F8E4M3FN_MAX),
        max = c.num(6, F8E4M3FN_MAX);
      if (min !== -max) c.fail(`fp8_min ${min} and fp8_max ${max} are not symmetric`);
      const x = b.contiguous(c.tensor(0, 'input'), c.node);
      const eps = c.num(4, 1e-10);
      const { out, scale } = perGroupFp8Quant(b, c, x, c.num(3, 128), { kind: 'group-quant', eps, max });
      return { t: 'tuple', items: [{ t: 'none' }, T(out), T(scale)] };
    },
  },
  '_C.cutlass_scaled_mm.default': {
    roles: { b: 'weight', b_scales: 'norm-weight', a_scales: 'norm-weight', bias: 'bias' },
    lower: (b, c) => {
      const into = c.tensor(0, 'out');
      const a = c.tensor(1, 'a'),
        w = c.tensor(2, 'b', { role: 'weight' });
      const bias = c.arg(5) === null ? null : c.tensor(5, 'bias', { role: 'bias' });
      const out = scaledMm(
        b,
        c,
        a,
        w,
        c.tensor(3, 'a_scales'),
        c.tensor(4, 'b_scales'),
        bias,
        into.dtype,
        'out',
      );
      return { t: 'tuple', items: [{ t: 'none' }, T(out)] };
    },
  },
  'aten._scaled_mm.default': {
    roles: { mat2: 'weight', scale_a: 'norm-weight', scale_b: 'norm-weight', bias: 'bias' },
    lower: (b, c) => {
      if (c.arg(5) !== null) c.fail('scale_result (an FP8 output scale) has no kernel');
      const a = c.tensor(0, 'self'),
        w = c.tensor(1, 'mat2', { role: 'weight' });
      const bias = c.arg(4) === null ? null : c.tensor(4, 'bias', { role: 'bias' });
      const dtype = scaledMmDtype(b, c.arg(6));
      return T(scaledMm(b, c, a, w, c.tensor(2, 'scale_a'), c.tensor(3, 'scale_b'), bias, dtype, 'out'));
    },
  },
  // (output!, input, output_scale!, input_scale) → [1] output (packed e2m1 pairs), [2] output_scale.
  '_C.scaled_fp4_quant.default': {
    roles: { input_scale: 'norm-weight' },
    lower: (b, c) => {
      const x = b.contiguous(c.tensor(1, 'input'), c.node);
      // The block scales in the layout their buffer is shaped for: linear, or vLLM's swizzled tiles.
      const layout = scaleLayout(b, c, 2, numelOf(x.shape) / lastDim(x), lastDim(x) / NVFP4_BLOCK);
      if (!layout) return 'unsupported';
      const S = c.tensor(3, 'input_scale', { role: 'norm-weight', shape: [1] });
      const { out, scale } = nvfp4Quant(b, c, x, S, layout);
      return { t: 'tuple', items: [{ t: 'none' }, T(out), T(scale)] };
    },
  },
  // (out!, a, b, block_scale_a, block_scale_b, alpha) → [1] out: vLLM's NVFP4 GEMM
  // (csrc/quantization/fp4/nvfp4_scaled_mm_entry.cu → CUTLASS's block-scaled SM100 GEMM),
  // out = alpha · (A · Bᵀ) with A, B the operands' e2m1 values times their block scales: the
  // nvfp4_gemm kernel (opTable.ts: exact products, an f32 sum in k order; CUTLASS's tensor cores
  // sum in their own order, so against a B200 the contract is f32 accumulation, not its bits).
  '_C.cutlass_scaled_fp4_mm.default': {
    roles: {
      b: 'fp4-weight',
      block_scale_a: 'norm-weight',
      block_scale_b: 'norm-weight',
      alpha: 'norm-weight',
    },
    lower: (b, c) => {
      const into = c.tensor(0, 'out');
      const a = c.tensor(1, 'a'),
        w = c.tensor(2, 'b', { role: 'fp4-weight' });
      if (a.shape.length !== 2 || w.shape.length !== 2 || a.shape[1] !== w.shape[1])
        c.fail(`multiplies packed [${a.shape}] by packed [${w.shape}]ᵀ`);
      const M = a.shape[0]!,
        N = w.shape[0]!,
        K = 2 * a.shape[1]!;
      if (K % NVFP4_BLOCK !== 0) c.fail(`K = ${K} is not a multiple of ${NVFP4_BLOCK}`);
      if (into.shape.join() !== [M, N].join()) c.fail(`out [${into.shape}] is not [${M}, ${N}]`);
      // Each operand's scales linear or swizzled (scaleLayout); the kernel reads them linear.
      const scales = (at: number, name: string, rows: number): View => {
        const sf = c.tensor(at, name, { role: 'norm-weight' });
        const layout = scaleLayout(b, c, at, rows, K / NVFP4_BLOCK);
        if (!layout)
          c.fail(
            `${name} [${sf.shape}] is neither one scale per ${NVFP4_BLOCK} of [${rows}, ${K}] nor their swizzled tiles`,
          );
        return layout === 'linear'
          ? wholeStorage(b, c, sf, name)
          : unswizzleScales(b, c, sf, rows, K / NVFP4_BLOCK, name);
      };
      const out = b.newStorage(`${c.node.name}.out`, into.dtype, [M, N]);
      b.push(c.node, {
        kernel: 'nvfp4_gemm',
        a: wholeStorage(b, c, a, 'a'),
        aScale: scales(3, 'block_scale_a', M),
        b: wholeStorage(b, c, w, 'b'),
        bScale: scales(4, 'block_scale_b', N),
        alpha: wholeStorage(b, c, c.tensor(5, 'alpha', { role: 'norm-weight', shape: [1] }), 'alpha'),
        out: out.storage,
      });
      return { t: 'tuple', items: [{ t: 'none' }, T(out)] };
    },
  },
} satisfies Partial<Record<LoweredOp, Lowering>>;
