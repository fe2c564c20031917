// The CPU reference's steps for the model-layer kernels: the MoE, rotary embedding, the KV cache
// write, attention (with its fused static FP8 quant) and the fused q/k norm + rotary.

import type { Step, StorageDType, View } from './plan.ts';
import { asRows, numelOf } from './plan.ts';
import type { CpuSteps } from './cpuStepContext.ts';
import { cpuMoe, cpuRmsNorm, rounded } from './cpuKernels.ts';
import { cpuAttention, cpuKvCacheWrite, cpuRotary } from './cpuLayerKernels.ts';
import { storeStaticQuant } from './cpuQuantSteps.ts';
import { tpRankOf } from './rankMesh.ts';
import { roundTo } from './weights.ts';

/**
 * KERNELS.qk_norm_rope: qkv with its q and k heads through cpuRmsNorm and cpuRotary, as the pair's
 * steps (KERNEL_DECOMPOSITIONS) run them; v as it was.
 */
function cpuQkNormRope(
  s: Extract<Step, { kernel: 'qk_norm_rope' }>,
  read: (v: View) => Float64Array,
  dtype: StorageDType,
): Float64Array {
  const [T, width] = s.qkv.shape as [number, number];
  const d = s.headSize;
  const qkv = read(s.qkv);
  const positions = read(s.positions),
    cache = read(s.cache);
  const out = Float64Array.from(qkv);
  const parts: [number, number, View][] = [
    [0, s.qHeads, s.qWeight],
    [s.qHeads * d, s.kHeads, s.kWeight],
  ];
  for (const [col, heads, w] of parts) {
    const n = heads * d;
    const x = new Float64Array(T * n);
    for (let t = 0; t < T; t++) x.set(qkv.subarray(t * width + col, t * width + col + n), t * n);
    const normed = cpuRmsNorm(x, read(w), T * heads, d, s.eps, dtype);
    const round = (v: number) => roundTo(dtype, v);
    const rotated = cpuRotary(normed, T, n, positions, cache, s.cache.shape[1]!, d, s.neox, round);
    for (let t = 0; t < T; t++) out.set(rotated.subarray(t * n, (t + 1) * n), t * width + col);
  }
  return out;
}

export const LAYER_STEPS: CpuSteps<'moe' | 'rotary' | 'kv_cache_write' | 'attention' | 'qk_norm_rope'> = {
  moe: (s, c) => {
    const r = asRows(s.x)!;
    const { mesh } = c.plan;
    const [x, logits] = [c.read(s.x), c.read(s.logits)];
    c.store(
      s.out,
      cpuMoe(
        x,
        logits,
        r.rows,
        r.cols,
        s.experts,
        s.topK,
        s.intermediate,
        s.layer,
        tpRankOf(mesh, c.rank),
        mesh.tp,
        c.seed,
        c.out.dtype,
      ),
    );
  },
  rotary: (s, c) => {
    const [T, width] = s.x.shape;
    const round = (v: number) => roundTo(c.out.dtype, v);
    const [x, positions, cache] = [c.read(s.x), c.read(s.positions), c.read(s.cache)];
    c.store(s.out, cpuRotary(x, T, width, positions, cache, s.cache.shape[1], s.headSize, s.neox, round));
  },
  kv_cache_write: (s, c) => {
    const width = numelOf(s.x.shape) / s.x.shape[0]!;
    c.store(s.out, cpuKvCacheWrite(c.read(s.cache), c.read(s.x), c.read(s.slots), width));
  },
  attention: (s, c) => {
    const [T, H, D] = s.q.shape;
    const o = cpuAttention(c.read(s.q), c.read(s.k), c.read(s.v), T, H, s.k.shape[1], D);
    storeStaticQuant(c, s.out, rounded(c.out.dtype, o), s.scale);
  },
  qk_norm_rope: (s, c) => c.store(s.out, cpuQkNormRope(s, c.read, c.out.dtype)),
};
