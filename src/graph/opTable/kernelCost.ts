// Each kernel's bytes read and written and FLOPs, from its parameters (the traces and the cost model read it).

import type { Kernel, KernelName } from './kernels.ts';
import { numel, type StorageDType, type View } from './views.ts';

export const DTYPE_BYTES: Record<StorageDType, number> = { bf16: 2, f16: 2, f32: 4, i32: 4 };

/** What one step moves and computes on one rank (bytes of its views and outputs, FLOPs of its arithmetic). */
export interface KernelCost {
  bytesRead: number;
  bytesWritten: number;
  flops: number;
}

const viewBytes = (v: View) => numel(v.shape) * DTYPE_BYTES[v.dtype];

/**
 * Each kernel's cost from its parameters; `outBytes` are the bytes of the storages it writes,
 * `ranks` the group size. Reads count each view once (a broadcast operand once); collectives read
 * every peer's input; the MoE reads each expert's weights at most once.
 */
export const KERNEL_COST: {
  [K in KernelName]: (k: Extract<Kernel, { kernel: K }>, outBytes: number, ranks: number) => KernelCost;
} = {
  seed: (_k, out) => ({ bytesRead: 0, bytesWritten: out, flops: 0 }),
  copy: (k, out) => ({ bytesRead: viewBytes(k.x), bytesWritten: out, flops: 0 }),
  pad: (k, out) => ({ bytesRead: viewBytes(k.x), bytesWritten: out, flops: 0 }),
  add: (k, out) => ({
    bytesRead: viewBytes(k.a) + viewBytes(k.b),
    bytesWritten: out,
    flops: 2 * Math.max(numel(k.a.shape), numel(k.b.shape)),
  }),
  map: (k, out) => ({
    bytesRead: viewBytes(k.a) + (k.b ? viewBytes(k.b) : 0),
    bytesWritten: out,
    flops: numel(k.a.shape),
  }),
  gemm: (k, out) => {
    const [M, K] = k.a.shape,
      N = k.b.shape[1];
    return {
      bytesRead: viewBytes(k.a) + viewBytes(k.b) + (k.bias ? viewBytes(k.bias) : 0),
      bytesWritten: out,
      flops: 2 * M * N * K + (k.bias ? 2 * M * N : 0),
    };
  },
  embedding: (k, out) => ({ bytesRead: viewBytes(k.indices) + out, bytesWritten: out, flops: 0 }),
  // Square, sum, scale, weight: about 4 FLOPs an element (plus the residual add where there is one,
  // and the quant's multiply, clamp and round).
  rms_norm: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.w),
    bytesWritten: out,
    flops: (k.scale ? 7 : 4) * numel(k.x.shape),
  }),
  fused_add_rms_norm: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.residual) + viewBytes(k.w),
    bytesWritten: out,
    flops: (k.scale ? 8 : 5) * numel(k.x.shape),
  }),
  all_reduce: (k, out, ranks) => ({
    bytesRead: ranks * viewBytes(k.x),
    bytesWritten: out,
    flops: (ranks - 1) * numel(k.x.shape),
  }),
  // Multiply, clamp, round: about 3 FLOPs an element; the scale is one element.
  fp8_quant: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.scale),
    bytesWritten: out,
    flops: 3 * numel(k.x.shape),
  }),
  // A max over each block of 16, then a few f32 operations a block; the packing reads x again.
  nvfp4_scale: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.globalScale),
    bytesWritten: out,
    flops: numel(k.x.shape) + (4 * numel(k.x.shape)) / 16,
  }),
  nvfp4_quant: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.scale) + viewBytes(k.globalScale),
    bytesWritten: out,
    flops: 3 * numel(k.x.shape),
  }),
  // 2·M·N·K: out [M, N], a [M, K/2].
  nvfp4_gemm: (k, out) => ({
    bytesRead:
      viewBytes(k.a) + viewBytes(k.aScale) + viewBytes(k.b) + viewBytes(k.bScale) + viewBytes(k.alpha),
    bytesWritten: out,
    flops: 4 * k.a.shape[0]! * k.b.shape[0]! * k.a.shape[1]!,
  }),
  // The absmax, then a divide, clamp and round per element (x is read twice, the second from cache).
  fp8_quant_rows: (k, out) => ({ bytesRead: viewBytes(k.x), bytesWritten: out, flops: 5 * numel(k.x.shape) }),
  // q and k heads read and written in place (else all of qkv, v copied), a cache row a token; the
  // norm's ~4 FLOPs and the rotation's 3 per q / k value.
  qk_norm_rope: (k, out) => {
    const qk = k.qkv.shape[0]! * (k.qHeads + k.kHeads) * k.headSize;
    const inPlace = k.out === k.qkv.storage;
    return {
      bytesRead:
        (inPlace ? qk * DTYPE_BYTES[k.qkv.dtype] : viewBytes(k.qkv)) +
        viewBytes(k.qWeight) +
        viewBytes(k.kWeight) +
        viewBytes(k.positions) +
        k.qkv.shape[0]! * k.cache.shape[1]! * DTYPE_BYTES[k.cache.dtype],
      bytesWritten: inPlace ? qk * DTYPE_BYTES[k.qkv.dtype] : out,
      flops: 7 * qk,
    };
  },
  // exp, add, divide, two multiplies per output (half of x's elements), and the quant's three.
  silu_and_mul: (k, out) => ({
    bytesRead: viewBytes(k.x) + (k.scale ? viewBytes(k.scale) : 0),
    bytesWritten: out,
    flops: ((k.scale ? 8 : 5) * numel(k.x.shape)) / 2,
  }),
  // silu_and_mul's five per output, the block max and the scaling and rounding of each.
  silu_and_mul_nvfp4: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.globalScale),
    bytesWritten: out,
    flops: (9 * numel(k.x.shape)) / 2,
  }),
  // The norm's, then the absmax and the quant's divide (or multiply), clamp and round.
  rms_norm_dynamic_quant: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.w),
    bytesWritten: out,
    flops: 9 * numel(k.x.shape),
  }),
  fused_add_rms_norm_dynamic_quant: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.residual) + viewBytes(k.w),
    bytesWritten: out,
    flops: 10 * numel(k.x.shape),
  }),
  fused_allreduce_norm: (k, out, ranks) => ({
    bytesRead: ranks * viewBytes(k.x) + viewBytes(k.residual) + viewBytes(k.w),
    bytesWritten: out,
    flops: (ranks - 1 + 5) * numel(k.x.shape),
  }),
  reduce_rows: (k, out) => ({ bytesRead: viewBytes(k.x), bytesWritten: out, flops: numel(k.x.shape) }),
  // Each rank reads every peer's rows of its share (reduce-scatter) or every peer's shard (all-gather).
  reduce_scatter: (k, out, ranks) => ({
    bytesRead: viewBytes(k.x),
    bytesWritten: out,
    flops: ((ranks - 1) * numel(k.x.shape)) / ranks,
  }),
  all_gather: (k, out, ranks) => ({ bytesRead: ranks * viewBytes(k.x), bytesWritten: out, flops: 0 }),
  scatter: (k, out) => ({ bytesRead: viewBytes(k.base) + viewBytes(k.src), bytesWritten: out, flops: 0 }),
  // Four multiplies and two adds per rotated pair.
  rotary: (k, out) => ({
    bytesRead: viewBytes(k.x) + viewBytes(k.positions) + numel(k.x.shape) * DTYPE_BYTES[k.cache.dtype],
    bytesWritten: out,
    flops: 3 * numel(k.x.shape),
  }),
  // The reference copies the cache; vLLM's kernel writes the tokens' rows in place.
  kv_cache_write: (k, out) => ({
    bytesRead: viewBytes(k.cache) + viewBytes(k.x) + viewBytes(k.slots),
    bytesWritten: out,
    flops: 0,
  }),
  // QKᵀ and PV over the causal half, plus the softmax.
  attention: (k, out) => {
    const [T, H, D] = k.q.shape;
    return {
      bytesRead: viewBytes(k.q) + viewBytes(k.k) + viewBytes(k.v) + (k.scale ? viewBytes(k.scale) : 0),
      bytesWritten: out,
      // The fused quant: multiply, clamp, round per output element.
      flops: 2 * T * T * H * D + 3 * T * T * H + (k.scale ? 3 * T * H * D : 0),
    };
  },
  moe: (k, out, ranks) => {
    const T = numel(k.x.shape) / k.x.shape[k.x.shape.length - 1],
      H = k.x.shape[k.x.shape.length - 1],
      Is = k.intermediate / ranks;
    // Per routed token: W13 (2·Is×H) and W2 (H×Is), two FLOPs per multiply-add.
    return {
      bytesRead: viewBytes(k.x) + viewBytes(k.logits) + DTYPE_BYTES[k.x.dtype] * 3 * H * Is * k.experts,
      bytesWritten: out,
      flops: 2 * T * k.topK * 3 * H * Is,
    };
  },
};

/** A kernel step's cost (the dispatch through KERNEL_COST, typed once here). */
export function kernelCost(k: Kernel, outBytes: number, ranks: number): KernelCost {
  return (KERNEL_COST[k.kernel] as (k: Kernel, outBytes: number, ranks: number) => KernelCost)(
    k,
    outBytes,
    ranks,
  );
}
