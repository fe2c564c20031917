// Fused kernels as the unfused steps they round as, for a backend without their own kernel.

import type { Kernel, KernelName } from './kernels.ts';
import { SILU_MUL_BY_DTYPE, type MapFn } from './mapFns.ts';
import { contiguousView, numel, type StorageDType, type View } from './views.ts';

/** A norm step with a static quant as the norm into a new storage and fp8_quant of it; null without one. */
function normThenQuant(
  k: Extract<Kernel, { kernel: 'rms_norm' | 'fused_add_rms_norm' }>,
  storage: NewStorage,
  shapeOf: StorageShape,
): Kernel[] | null {
  if (!k.scale) return null;
  const shape = shapeOf(k.out);
  const normed = storage('normed', k.x.dtype, shape);
  const x = contiguousView(normed, k.x.dtype, shape);
  return [
    { ...k, scale: null, out: normed },
    { kernel: 'fp8_quant', x, scale: k.scale, satfinite: false, out: k.out },
  ];
}

/** silu_and_mul's gate and up halves of x's last dim, each with the result's shape. */
export function siluMulHalves(x: View): { gate: View; up: View } {
  const last = x.shape.length - 1;
  const d = x.shape[last]! / 2;
  const gate: View = { ...x, shape: [...x.shape.slice(0, last), d] };
  return { gate, up: { ...gate, offset: x.offset + d * x.strides[last]! } };
}

/**
 * KERNELS.silu_and_mul as the unfused steps it rounds as: the silu-mul map step of x's dtype into
 * `out` (f16: silu into an f16 storage, then the product), then with a scale fp8_quant of it.
 */
export function siluAndMulUnfused(
  k: Extract<Kernel, { kernel: 'silu_and_mul' }>,
  storage: NewStorage,
): Kernel[] {
  const { gate, up } = siluMulHalves(k.x);
  const dtype = k.x.dtype;
  if (dtype === 'i32') throw new Error('silu_and_mul takes a float tensor, not i32');
  const contiguous = (id: string) => contiguousView(id, dtype, gate.shape);
  const product = k.scale ? storage('result', dtype, gate.shape) : k.out;
  const steps: Kernel[] = [];
  if (dtype === 'f16') {
    const silu = storage('silu', 'f16', gate.shape);
    steps.push({ kernel: 'map', fn: 'silu', a: gate, b: null, scalar: 0, out: silu });
    steps.push({ kernel: 'map', fn: 'mul', a: contiguous(silu), b: up, scalar: 0, out: product });
  } else {
    steps.push({ kernel: 'map', fn: SILU_MUL_BY_DTYPE[dtype], a: gate, b: up, scalar: 0, out: product });
  }
  if (k.scale)
    steps.push({ kernel: 'fp8_quant', x: contiguous(product), scale: k.scale, satfinite: false, out: k.out });
  return steps;
}

/**
 * A norm + dynamic quant as its pair: the norm into a new storage, then fp8_quant_rows of its
 * groups (that kernel's own unfused steps), the scales transposed by a copy where they are.
 */
function normThenDynamicQuant(
  k: Extract<Kernel, { kernel: 'rms_norm_dynamic_quant' | 'fused_add_rms_norm_dynamic_quant' }>,
  storage: NewStorage,
  shapeOf: StorageShape,
): Kernel[] {
  const shape = shapeOf(k.out);
  const normed = storage('normed', k.x.dtype, shape);
  const { x, w, eps } = k;
  const norm: Kernel =
    k.kernel === 'rms_norm_dynamic_quant'
      ? { kernel: 'rms_norm', x, w, eps, out: normed }
      : {
          kernel: 'fused_add_rms_norm',
          x,
          residual: k.residual,
          w,
          eps,
          out: normed,
          residualOut: k.residualOut,
        };
  const rows = numel(shape) / k.group;
  const tokens = numel(shape) / shape[shape.length - 1]!;
  const groups = rows / tokens;
  const scales = k.scaleTransposed ? storage('scale_rows', 'f32', [tokens, groups]) : k.scaleOut;
  const quant: Extract<Kernel, { kernel: 'fp8_quant_rows' }> = {
    kernel: 'fp8_quant_rows',
    x: contiguousView(normed, k.x.dtype, [rows, k.group]),
    eps: 0,
    max: k.max,
    minScale: k.minScale,
    out: k.out,
    scaleOut: scales,
  };
  const steps = [norm, ...KERNEL_DECOMPOSITIONS.fp8_quant_rows!(quant, storage, shapeOf)!];
  if (k.scaleTransposed)
    steps.push({
      kernel: 'copy',
      x: { ...contiguousView(scales, 'f32', [groups, tokens]), strides: [1, groups] },
      out: k.scaleOut,
    });
  return steps;
}

/** A new storage for a decomposed kernel's intermediate value: its id. */
export type NewStorage = (name: string, dtype: StorageDType, shape: number[]) => string;
/** The shape of a storage the plan made. */
export type StorageShape = (id: string) => number[];

/**
 * Kernels a backend without their own kernel (the native worker) runs as the unfused steps they
 * round as: each step's parameters, intermediates in new storages. One place, so the worker's
 * program does not special-case them.
 */
export const KERNEL_DECOMPOSITIONS: {
  [K in KernelName]?: (
    k: Extract<Kernel, { kernel: K }>,
    storage: NewStorage,
    shapeOf: StorageShape,
  ) => Kernel[] | null;
} = {
  // A norm with a quant: the norm into a new storage, then fp8_quant of it.
  rms_norm: (k, storage, shapeOf) => normThenQuant(k, storage, shapeOf),
  fused_add_rms_norm: (k, storage, shapeOf) => normThenQuant(k, storage, shapeOf),
  // The silu-mul map step(s), then fp8_quant with a scale.
  silu_and_mul: (k, storage) => siluAndMulUnfused(k, storage),
  rms_norm_dynamic_quant: (k, storage, shapeOf) => normThenDynamicQuant(k, storage, shapeOf),
  fused_add_rms_norm_dynamic_quant: (k, storage, shapeOf) => normThenDynamicQuant(k, storage, shapeOf),
  // abs, reduce_rows' max, the scale's maxs / divs / maxs, then div, the clamp and to_f8e4m3fn.
  fp8_quant_rows: (k, storage, shapeOf) => {
    const cols = k.x.shape[k.x.shape.length - 1] ?? 1;
    const rows = numel(k.x.shape) / cols;
    const shape = [rows, cols];
    const x: View = { ...k.x, shape, strides: [cols, 1] };
    const steps: Kernel[] = [];
    // A map reads its operands with its output storage's shape: the last two steps write the plan's
    // storages ([..., H] values, [..., H / group] scales) from a contiguous intermediate, read as
    // the same elements in that shape.
    const map = (fn: MapFn, a: View, b: View | null, scalar: number, dtype: StorageDType, into?: string) => {
      const out = into ?? storage(`${fn}${steps.length}`, dtype, a.shape);
      const read = into ? contiguousView(a.storage, a.dtype, shapeOf(into)) : a;
      steps.push({ kernel: 'map', fn, a: read, b, scalar, out });
      return contiguousView(out, dtype, a.shape);
    };
    const abs = map('abs', x, null, 0, x.dtype);
    const amax = storage('absmax', x.dtype, [rows, 1]);
    steps.push({ kernel: 'reduce_rows', x: abs, mean: false, out: amax });
    const floored = map('maxs', contiguousView(amax, x.dtype, [rows, 1]), null, k.eps, 'f32');
    const raw = map('divs', floored, null, k.max, 'f32');
    const scale = map('maxs', raw, null, k.minScale, 'f32', k.scaleOut);
    const q = map('div', x, { ...scale, shape, strides: [1, 0] }, 0, 'f32');
    const lo = map('maxs', q, null, -k.max, 'f32');
    const hi = map('mins', lo, null, k.max, 'f32');
    map('to_f8e4m3fn', hi, null, 0, x.dtype, k.out);
    return steps;
  },
  // Per q and k: the heads copied out of qkv, rms_norm, rotary, scattered back over qkv's columns.
  qk_norm_rope: (k, storage) => qkNormRopeSteps(k, storage),
};

/** KERNELS.qk_norm_rope as the steps of the pair it fuses, in the order their roundings apply. */
function qkNormRopeSteps(k: Extract<Kernel, { kernel: 'qk_norm_rope' }>, storage: NewStorage): Kernel[] {
  const { qkv, headSize: d } = k;
  const [tokens, width] = qkv.shape as [number, number];
  const dense = (id: string, shape: number[]): View => ({
    storage: id,
    dtype: qkv.dtype,
    offset: 0,
    shape,
    strides: shape.map((_, i) => numel(shape.slice(i + 1))),
  });
  const steps: Kernel[] = [];
  let base: View = qkv;
  const parts = [
    { what: 'q', col: 0, heads: k.qHeads, w: k.qWeight },
    { what: 'k', col: k.qHeads * d, heads: k.kHeads, w: k.kWeight },
  ];
  for (const [i, { what, col, heads, w }] of parts.entries()) {
    const shape = [tokens, heads, d];
    const byHead: View = { ...qkv, offset: qkv.offset + col, shape, strides: [qkv.strides[0]!, d, 1] };
    const x = storage(`${what}_heads`, qkv.dtype, shape);
    steps.push({ kernel: 'copy', x: byHead, out: x });
    const normed = storage(`${what}_norm`, qkv.dtype, shape);
    steps.push({ kernel: 'rms_norm', x: dense(x, shape), w, eps: k.eps, out: normed });
    const flat = [tokens, heads * d];
    const rotated = storage(what, qkv.dtype, flat);
    const { positions, cache, neox } = k;
    steps.push({
      kernel: 'rotary',
      x: dense(normed, flat),
      positions,
      cache,
      headSize: d,
      neox,
      out: rotated,
    });
    const into = i === parts.length - 1 ? k.out : storage(`qkv_${what}`, qkv.dtype, [tokens, width]);
    steps.push({
      kernel: 'scatter',
      base,
      src: dense(rotated, flat),
      at: col,
      strides: [width, 1],
      out: into,
    });
    base = dense(into, [tokens, width]);
  }
  return steps;
}
