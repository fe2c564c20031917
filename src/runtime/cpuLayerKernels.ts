// CPU reference kernels for the layer ops real post-grad graphs hold besides norms, GEMMs and
// the MoE: functionalization's scatter, vLLM's rotary embedding and a reference attention.
// Inputs arrive dense (readView) as values of their storage dtype; `round` is the storage
// dtype's rounding, applied exactly where the op's kernel rounds.

import { forEachOffset } from './cpuKernels.ts';

const f = Math.fround;

/** base (dense) with the elements at `at + Σ i[d]·strides[d]` (i over srcShape) replaced by src. */
export function cpuScatter(
  base: Float64Array,
  src: Float64Array,
  srcShape: number[],
  at: number,
  strides: number[],
): Float64Array {
  const out = Float64Array.from(base);
  forEachOffset(srcShape, strides, at, (i, o) => {
    out[o] = src[i];
  });
  return out;
}

/**
 * vLLM's rotary_embedding on x [T, heads · headSize]: the first rot = cache cols of each head
 * rotate by the token's angle; cache rows are [cos(rot/2), sin(rot/2)]. neox pairs element i
 * with i + rot/2, else 2i with 2i + 1. Arithmetic in the storage dtype, as the CUDA kernel's
 * scalar_t: each product and the sum rounded (`round` rounds to it).
 */
export function cpuRotary(
  x: Float64Array,
  T: number,
  width: number,
  positions: Float64Array,
  cache: Float64Array,
  rot: number,
  headSize: number,
  neox: boolean,
  round: (v: number) => number,
): Float64Array {
  const out = Float64Array.from(x);
  const half = rot / 2;
  for (let t = 0; t < T; t++) {
    const row = positions[t] * rot;
    for (let h = 0; h + headSize <= width; h += headSize) {
      const base = t * width + h;
      for (let i = 0; i < half; i++) {
        const xi = neox ? i : 2 * i,
          yi = neox ? half + i : 2 * i + 1;
        const c = cache[row + i],
          s = cache[row + half + i];
        const a = x[base + xi],
          b = x[base + yi];
        // c10's BFloat16 / Half operators compute in float and round the result: f32, then the dtype.
        out[base + xi] = round(f(round(f(a * c)) - round(f(b * s))));
        out[base + yi] = round(f(round(f(b * c)) + round(f(a * s))));
      }
    }
  }
  return out;
}

/** Causal attention of one sequence: q [T, H, D], k and v [T, Hkv, D], f32 softmax (max first), out [T, H, D]. */
export function cpuAttention(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  T: number,
  H: number,
  Hkv: number,
  D: number,
): Float64Array {
  const out = new Float64Array(T * H * D);
  const group = H / Hkv;
  const scale = 1 / Math.sqrt(D);
  const p = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / group);
      let max = -Infinity;
      for (let j = 0; j <= t; j++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[(t * H + h) * D + d] * k[(j * Hkv + kh) * D + d];
        p[j] = dot * scale;
        max = Math.max(max, p[j]);
      }
      let sum = 0;
      for (let j = 0; j <= t; j++) {
        p[j] = Math.exp(p[j] - max);
        sum += p[j];
      }
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let j = 0; j <= t; j++) acc += p[j] * v[(j * Hkv + kh) * D + d];
        out[(t * H + h) * D + d] = acc / sum;
      }
    }
  }
  return out;
}

/**
 * vLLM's paged KV cache write (reshape_and_cache_flash, csrc/cache_kernels.cu): each token's row of
 * x ([T, width]) into the cache ([slots, width], dense) at row slots[t]; a negative slot
 * (PAD_SLOT_ID) is skipped, as vLLM's kernel returns for it. A copy: nothing rounds. Tokens go in
 * order, so a repeated slot (which vLLM's slot mappings never hold) keeps the last token's row, as
 * the WGSL kernel does (src/wgsl/kvCache.ts).
 */
export function cpuKvCacheWrite(
  cache: Float64Array,
  x: Float64Array,
  slots: Float64Array,
  width: number,
): Float64Array {
  const out = Float64Array.from(cache);
  const rows = cache.length / width;
  slots.forEach((slot, t) => {
    if (slot < 0 || slot >= rows) return;
    out.set(x.subarray(t * width, (t + 1) * width), slot * width);
  });
  return out;
}
