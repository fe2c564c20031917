// The CPU reference: every kernel in plain TypeScript, accumulating in f64 and rounding to the
// storage dtype exactly where the op semantics (src/graph/ops.ts, DESIGN "Op semantics") say.
// Storages hold values already rounded to their dtype (bf16 values in a Float32Array).

import type { View, StorageDType } from './plan.ts';
import { broadcastStrides, numelOf } from './plan.ts';
import { roundTo, expertTensors, seededArray } from './weights.ts';

export type HostArray = Float32Array | Int32Array;

/**
 * Visits the elements of `shape` in row-major order: `visit(i, o)` with i the element's index and
 * o = base + Σ index[d]·strides[d] its place in a strided array.
 */
export function forEachOffset(
  shape: number[],
  strides: number[],
  base: number,
  visit: (i: number, o: number) => void,
): void {
  const n = numelOf(shape);
  const idx = new Array(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let o = base;
    for (let d = 0; d < shape.length; d++) o += idx[d] * strides[d];
    visit(i, o);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

/** Read a strided view into a dense array, optionally broadcast to `shape`. */
export function readView(v: View, mem: HostArray, shape: number[] = v.shape): Float64Array {
  const strides = shape === v.shape ? v.strides : broadcastStrides(v, shape);
  const out = new Float64Array(numelOf(shape));
  forEachOffset(shape, strides, v.offset, (i, o) => {
    out[i] = mem[o];
  });
  return out;
}

export function rounded(dtype: StorageDType, xs: Float64Array | number[]): HostArray {
  const out = dtype === 'i32' ? new Int32Array(xs.length) : new Float32Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = roundTo(dtype, xs[i]);
  return out;
}

export function cpuPad(
  x: Float64Array,
  shape: number[],
  lo: number[],
  outShape: number[],
  value: number,
): Float64Array {
  const out = new Float64Array(numelOf(outShape)).fill(value);
  const ostr: number[] = [];
  let acc = 1;
  for (let d = outShape.length - 1; d >= 0; d--) {
    ostr[d] = acc;
    acc *= outShape[d];
  }
  const at = lo.reduce((o, l, d) => o + l * ostr[d], 0);
  forEachOffset(shape, ostr, at, (i, o) => {
    out[o] = x[i];
  });
  return out;
}

/** C = alpha·A·B + beta·bias, f64 accumulation. */
/**
 * Each row of `x` (`cols` wide) to one value, as KERNELS.reduce_rows specifies: the mean as an f32
 * sum in index order then one division (each step rounded to f32), or the max (NaN wins).
 */
export function cpuReduceRows(x: Float64Array, cols: number, mean: boolean): Float64Array {
  const f = Math.fround;
  const out = new Float64Array(cols === 0 ? 0 : x.length / cols);
  for (let r = 0; r < out.length; r++) {
    let acc = mean ? 0 : x[r * cols];
    for (let c = mean ? 0 : 1; c < cols; c++) {
      const v = x[r * cols + c];
      if (mean) acc = f(acc + v);
      else if (v > acc || Number.isNaN(v)) acc = Number.isNaN(acc) ? acc : v;
    }
    out[r] = mean ? f(acc / cols) : acc;
  }
  return out;
}

export function cpuGemm(
  a: Float64Array,
  b: Float64Array,
  bias: Float64Array | null,
  M: number,
  K: number,
  N: number,
  alpha: number,
  beta: number,
): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[m * K + k] * b[k * N + n];
      out[m * N + n] = alpha * s + (bias ? beta * bias[m * N + n] : 0);
    }
  }
  return out;
}

/** rms_norm: y = round(round(x · rsqrt(mean(x²) + eps)) · w). */
export function cpuRmsNorm(
  x: Float64Array,
  w: Float64Array,
  rows: number,
  cols: number,
  eps: number,
  dtype: StorageDType,
): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += x[r * cols + c] ** 2;
    const inv = 1 / Math.sqrt(ss / cols + eps);
    for (let c = 0; c < cols; c++)
      out[r * cols + c] = roundTo(dtype, roundTo(dtype, x[r * cols + c] * inv) * w[c]);
  }
  return out;
}

/** fused_allreduce_norm pattern 1, given the rank-ordered sum: one rounding for the norm. */
export function cpuResidualNorm(
  ar: Float64Array,
  residual: Float64Array,
  w: Float64Array,
  rows: number,
  cols: number,
  eps: number,
  dtype: StorageDType,
  oneRounding: boolean,
) {
  const res = new Float64Array(rows * cols);
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < res.length; i++) res[i] = roundTo(dtype, ar[i] + residual[i]);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += res[r * cols + c] ** 2;
    const inv = 1 / Math.sqrt(ss / cols + eps);
    for (let c = 0; c < cols; c++) {
      const z = res[r * cols + c] * inv;
      out[r * cols + c] = oneRounding ? roundTo(dtype, z * w[c]) : roundTo(dtype, roundTo(dtype, z) * w[c]);
    }
  }
  return { out, res };
}

/** Top-k of one token's logits (ties to the lower expert id), softmax over the selected k. */
export function routeToken(logits: ArrayLike<number>, topK: number): { ids: number[]; weights: number[] } {
  const order = Array.from({ length: logits.length }, (_, e) => e).sort(
    (p, q) => logits[q] - logits[p] || p - q,
  );
  const ids = order.slice(0, topK);
  const m = logits[ids[0]];
  const ex = ids.map((e) => Math.exp(logits[e] - m));
  const s = ex.reduce((a, b) => a + b, 0);
  return { ids, weights: ex.map((v) => v / s) };
}

export const SWIGLU_ALPHA = 1.702;
export const SWIGLU_LIMIT = 7;

/**
 * GPT-OSS MoE on one rank. Rounding points (as vLLM's fused MoE stores its intermediate caches):
 * h = round(x·W13ᵀ + b13); a = round((up + 1)·gate·σ(1.702·gate)) with gate = min(h[0::2], 7),
 * up = clamp(h[1::2], −7, 7); y_k = round(w_k · (a·W2ᵀ + b2·[rank = 0])); out = round(Σ_k y_k).
 */
export function cpuMoe(
  x: Float64Array,
  logits: Float64Array,
  T: number,
  H: number,
  E: number,
  topK: number,
  interFull: number,
  layer: string,
  rank: number,
  ranks: number,
  seed: number,
  dtype: StorageDType,
): Float64Array {
  const Is = interFull / ranks;
  const wt = expertTensors(layer, rank, { experts: E, hidden: H, interShard: Is, interFull });
  const w13 = seededArray(seed, wt.w13.stream, numelOf(wt.w13.shape), wt.w13.rule, dtype);
  const b13 = seededArray(seed, wt.b13.stream, numelOf(wt.b13.shape), wt.b13.rule, dtype);
  const w2 = seededArray(seed, wt.w2.stream, numelOf(wt.w2.shape), wt.w2.rule, dtype);
  const b2 = rank === 0 ? seededArray(seed, wt.b2.stream, numelOf(wt.b2.shape), wt.b2.rule, dtype) : null;
  const out = new Float64Array(T * H);
  const a = new Float64Array(Is);
  const acc = new Float64Array(H);
  for (let t = 0; t < T; t++) {
    const { ids, weights } = routeToken(logits.subarray(t * E, t * E + E), topK);
    acc.fill(0);
    ids.forEach((e, k) => {
      for (let j = 0; j < Is; j++) {
        let g = b13[e * 2 * Is + 2 * j],
          u = b13[e * 2 * Is + 2 * j + 1];
        const rg = (e * 2 * Is + 2 * j) * H,
          ru = rg + H;
        for (let h = 0; h < H; h++) {
          g += x[t * H + h] * w13[rg + h];
          u += x[t * H + h] * w13[ru + h];
        }
        g = Math.min(roundTo(dtype, g), SWIGLU_LIMIT);
        u = Math.min(Math.max(roundTo(dtype, u), -SWIGLU_LIMIT), SWIGLU_LIMIT);
        a[j] = roundTo(dtype, ((u + 1) * g) / (1 + Math.exp(-SWIGLU_ALPHA * g)));
      }
      for (let n = 0; n < H; n++) {
        let y = b2 ? b2[e * H + n] : 0;
        const r = (e * H + n) * Is;
        for (let j = 0; j < Is; j++) y += a[j] * w2[r + j];
        acc[n] += roundTo(dtype, weights[k] * y);
      }
    });
    for (let n = 0; n < H; n++) out[t * H + n] = roundTo(dtype, acc[n]);
  }
  return out;
}
