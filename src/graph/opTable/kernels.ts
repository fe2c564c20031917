// KERNELS: the plan's kernel steps; the TypeScript `Kernel` type is derived from their wire fields.

import type { KernelDef, KernelFields, Flatten } from './kernelDef.ts';
import { MAP_FNS, SILU_MUL_BY_DTYPE, mapFnUlps } from './mapFns.ts';

/** The silu_and_mul kernels' products: the ulps of the map function each dtype's unfused step runs. */
const SILU_MUL_ULPS = {
  bf16: mapFnUlps(MAP_FNS[SILU_MUL_BY_DTYPE.bf16].rounding, 'bf16'),
  f32: mapFnUlps(MAP_FNS[SILU_MUL_BY_DTYPE.f32].rounding, 'f32'),
};
/** The norm + dynamic quant kernels' quant: columns per scale, the FP8 range, the scale floor, the scales' layout. */
const NORM_DYNAMIC_QUANT_FIELDS = {
  group: 'int',
  max: 'num',
  minScale: 'num',
  scaleTransposed: 'bool',
  scaleOut: 'storage',
} as const;

// The ulps below bound the largest distances the differential check measured (agent/differential.ts,
// 48 graphs on the agent's CPU worker and 8 on WebGPU/SwiftShader, ulps at the output's scale):
// bf16 add 0, gemm 0.03, norms 0–2, all_reduce 0, MoE 1; f32 add 1, gemm 3.5, norms 3, all_reduce 1,
// MoE 5 — with about 2× headroom for accumulation orders not yet seen.
export const KERNELS = {
  seed: {
    fields: { name: 'str', role: 'role', perRank: 'bool', range: 'int?', out: 'storage' },
    worker: ['seed', 'fill'],
    rounding: 'exact',
    collective: false,
    doc: 'seeded input',
  },
  copy: {
    fields: { x: 'view', out: 'storage' },
    worker: ['gather'],
    rounding: 'exact',
    collective: false,
    doc: 'strided copy',
  },
  pad: {
    fields: { x: 'view', lo: 'ints', value: 'num', out: 'storage' },
    worker: ['gather'],
    rounding: 'exact',
    collective: false,
    doc: 'constant pad',
  },
  add: {
    fields: { a: 'view', b: 'view', alpha: 'num', out: 'storage' },
    worker: ['add'],
    rounding: { ulps: { bf16: 1, f32: 1 } },
    collective: false,
    doc: 'a + alpha · b (broadcast)',
  },
  map: {
    fields: { fn: 'mapfn', a: 'view', b: 'view?', scalar: 'num', out: 'storage' },
    worker: ['map'],
    rounding: 'exact',
    collective: false,
    doc: 'elementwise map function',
  },
  gemm: {
    fields: { a: 'view', b: 'view', bias: 'view?', alpha: 'num', beta: 'num', out: 'storage' },
    worker: ['mm'],
    rounding: { ulps: { bf16: 1, f32: 8 } },
    collective: false,
    doc: 'alpha · A·B + beta · bias',
  },
  embedding: {
    fields: { weight: 'view', indices: 'view', out: 'storage' },
    worker: ['embedding'],
    rounding: 'exact',
    collective: false,
    doc: 'rows by token id',
  },
  // With `scale` (rms_norm_static_fp8_quant, fused_add_rms_norm_static_fp8_quant after norm-quant)
  // each output, rounded to the run dtype as the unfused norm stores it, is quantized as fp8_quant
  // does in the same kernel (csrc/layernorm_quant_kernels.cu): bitwise the norm → static quant pair
  // on one backend; across backends a quantized value may differ by one e4m3 step where the norm's
  // last bit crosses a rounding point.
  rms_norm: {
    fields: { x: 'view', w: 'view', eps: 'num', scale: 'view?', out: 'storage' },
    worker: ['rms_norm'],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: false,
    doc: 'RMSNorm',
  },
  fused_add_rms_norm: {
    fields: {
      x: 'view',
      residual: 'view',
      w: 'view',
      eps: 'num',
      scale: 'view?',
      out: 'storage',
      residualOut: 'storage',
    },
    worker: ['fused_add_rms_norm'],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: false,
    doc: 'residual add + RMSNorm',
  },
  all_reduce: {
    fields: { x: 'view', group: 'str', out: 'storage' },
    worker: ['all_reduce'],
    rounding: { ulps: { bf16: 1, f32: 1 } },
    collective: true,
    doc: 'sum over ranks in rank order',
  },
  fused_allreduce_norm: {
    fields: {
      x: 'view',
      residual: 'view',
      w: 'view',
      eps: 'num',
      group: 'str',
      out: 'storage',
      residualOut: 'storage',
      normRounding: 'rounding?',
    },
    worker: ['allreduce_norm'],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: true,
    doc: 'all-reduce + residual + RMSNorm',
  },
  moe: {
    fields: {
      x: 'view',
      logits: 'view',
      layer: 'str',
      experts: 'int',
      topK: 'int',
      intermediate: 'int',
      out: 'storage',
    },
    worker: ['seed', 'moe'],
    rounding: { ulps: { bf16: 2, f32: 8 } },
    collective: false,
    doc: 'GPT-OSS MoE',
  },
  // Sequence parallelism's pair (and the collective halves of async TP's fused matmuls): token rows
  // split over the group's ranks in rank order; the reduce-scatter sums in rank order as the all-reduce does.
  reduce_scatter: {
    fields: { x: 'view', group: 'str', out: 'storage' },
    worker: ['reduce_scatter', 'mm_reduce_scatter'],
    rounding: { ulps: { bf16: 1, f32: 1 } },
    collective: true,
    doc: 'sum over ranks, rank r keeps rows [r·T/N, (r+1)·T/N)',
  },
  all_gather: {
    fields: { x: 'view', group: 'str', out: 'storage' },
    worker: ['all_gather'],
    rounding: 'exact',
    collective: true,
    doc: "every rank's rows, in rank order",
  },
  // Reductions along the last dim (RMSNorm's mean of squares, QuantFP8's absmax): each row of x
  // to one value. mean: an f32 sum in index order, then one correctly rounded division by the row
  // length (every backend adds in that order, so it is bitwise; torch's own order is not
  // specified); else the max, NaN if any element is NaN.
  reduce_rows: {
    fields: { x: 'view', mean: 'bool', out: 'storage' },
    worker: ['reduce_rows'],
    rounding: 'exact',
    collective: false,
    doc: 'mean or max of each row',
  },
  // Functionalization's write-back (slice_scatter) and in-place writes into a view: out is base
  // (read with out's shape) with the elements at at + Σ i[d]·strides[d], i < shape (src's shape),
  // replaced by src; the window's strides each exceed the extent of those after them (a view of a
  // contiguous tensor), which makes the window invertible. No agent kernel yet.
  scatter: {
    fields: { base: 'view', src: 'view', at: 'int', strides: 'ints', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'base with a strided window replaced by src',
  },
  // vLLM's rotary_embedding on one of query / key ([tokens, heads · headSize]), in the storage
  // dtype as its kernel computes: x' = r(r(x·cos) − r(y·sin)), y' = r(r(y·cos) + r(x·sin)).
  rotary: {
    fields: { x: 'view', positions: 'view', cache: 'view', headSize: 'int', neox: 'bool', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'rotary position embedding',
  },
  // The reference attention: one prefill sequence, causal, no KV cache, GQA, scale 1/√D, f32
  // softmax, rounded once. q [T, H, D], k and v [T, Hkv, D], out [T, H, D]. WebGPU measured in the
  // differential sweep (seed 20261129, 7 steps): bf16 0, f32 2 ulps at the output's scale.
  // With `scale` (vLLM's output_scale, after attn-quant) each output, rounded to the output dtype as
  // the unfused attention stores it, is quantized as fp8_quant does (clamp(o · (1/scale), ±448) to
  // e4m3, the value held in the output dtype): bitwise the attention → static quant pair on one
  // backend. The ulps above bound the attention before the quant; across backends a quantized
  // output may differ by one e4m3 step where the attention's last bit crosses a rounding point.
  attention: {
    fields: { q: 'view', k: 'view', v: 'view', scale: 'view?', out: 'storage' },
    worker: [],
    rounding: { ulps: { bf16: 1, f32: 4 } },
    collective: false,
    doc: 'causal attention',
  },
  // vLLM's paged KV cache write (reshape_and_cache_flash, csrc/cache_kernels.cu; what
  // unified_kv_cache_update runs): out is cache ([num_blocks, block_size, H_kv, D], contiguous) with
  // row slots[t] (a flat slot, block · block_size + offset) replaced by x[t] ([T, H_kv, D],
  // contiguous); a slot < 0 is skipped (PAD_SLOT_ID). A copy, bitwise on every backend; a repeated
  // slot keeps the last token's row. No worker kernel: the agent feeds it.
  kv_cache_write: {
    fields: { cache: 'view', x: 'view', slots: 'view', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'paged KV cache write',
  },
  // FP8 e4m3fn quant of contiguous x by 1/scale[0] (src/graph/fp8.ts), values held in the run
  // dtype (each is exact in bf16). satfinite: FlashInfer's saturating cast (the fused op's
  // quant_out), else vLLM's static_scaled_fp8_quant clamp.
  fp8_quant: {
    fields: { x: 'view', scale: 'view', satfinite: 'bool', out: 'storage' },
    worker: ['fp8_quant'],
    rounding: 'exact',
    collective: false,
    doc: 'static FP8 quant',
  },
  // NVFP4 (vLLM's scaled_fp4_quant, emulated: src/graph/fp4.ts) of contiguous x in blocks of 16 by the
  // global scale globalScale[0]: the e4m3 block scales, then the e2m1 pairs packed into bytes by
  // them, each held as its value in the run dtype. No worker kernel: the agent feeds them.
  nvfp4_scale: {
    fields: { x: 'view', globalScale: 'view', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'NVFP4 block scales',
  },
  nvfp4_quant: {
    fields: { x: 'view', scale: 'view', globalScale: 'view', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'NVFP4 packed e2m1 pairs',
  },
  // vLLM's NVFP4 GEMM (cutlass_scaled_fp4_mm): out[m, n] = alpha[0] · Σ_k A[m, k] · B[n, k], A and B
  // rows of packed e2m1 pairs ([M, K/2], [N, K/2]: bytes 0–255 held as values, the even element in
  // the low nibble) times their e4m3 block scales ([M, K/16], [N, K/16], linear), all contiguous. A
  // scale is read as its e4m3 value (a seeded one rounds to it; a computed one already is one).
  // Each product is exact in f32 (2·4 significant bits a side); the sum is f32 in k order, then
  // alpha's product rounds to f32, then to out's dtype: the same bits on every backend. No worker
  // kernel: the agent feeds it.
  nvfp4_gemm: {
    fields: { a: 'view', aScale: 'view', b: 'view', bScale: 'view', alpha: 'view', out: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'NVFP4 GEMM',
  },
  // The dynamic FP8 quant of each row of contiguous x [rows, cols] (a token, or a group of a
  // token's columns) in one kernel: scale = maxs(maxs(max|row|, eps) / max, minScale) in f32 into
  // scaleOut (one per row), out = e4m3fn(clamp(x / scale, ±max)) held in the run dtype — exactly the
  // unfused steps' roundings (abs, reduce_rows' max, divs, maxs, div, the clamp, to_f8e4m3fn;
  // src/wgsl/fp8QuantRows.ts). No worker op of its own: the agent runs those steps
  // (KERNEL_DECOMPOSITIONS), where its run's dtype holds the f32 scales (f32 runs).
  fp8_quant_rows: {
    fields: { x: 'view', eps: 'num', max: 'num', minScale: 'num', out: 'storage', scaleOut: 'storage' },
    worker: [],
    rounding: 'exact',
    collective: false,
    doc: 'dynamic FP8 quant per row',
  },
  // vLLM's fused QK-norm + RoPE (csrc/fused_qknorm_rope_kernel.cu) in one kernel: out is qkv
  // ([T, (qHeads + kHeads + vHeads) · headSize], contiguous) with each q head RMSNormed by qWeight
  // and each k head by kWeight (rms_norm's r(r(x·rsqrt(mean(x²) + eps))·w)), then rotated as rotary
  // does (the first cache.shape[1] dims, neox or GPT-J, by positions[t]'s cache row); v copied. out
  // may be qkv's own storage (written in place where nothing after reads qkv: v is then not touched).
  // Rounded where that pair of steps rounds (KERNEL_DECOMPOSITIONS), so bitwise the pair on one
  // backend; against the CPU reference the norm's f32 accumulation, as rms_norm's. vLLM's kernel
  // keeps the normed value in f32 and rounds once, a few ulps from this. No worker op of its own:
  // the worker would run the pair, but has no rotary op yet, so it feeds the node.
  qk_norm_rope: {
    fields: {
      qkv: 'view',
      qWeight: 'view',
      kWeight: 'view',
      positions: 'view',
      cache: 'view',
      qHeads: 'int',
      kHeads: 'int',
      headSize: 'int',
      eps: 'num',
      neox: 'bool',
      out: 'storage',
    },
    worker: [],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: false,
    doc: 'fused QK RMSNorm + rotary embedding',
  },
  // vLLM's silu_and_mul (csrc/activation_kernels.cu act_and_mul_kernel) over the gate | up halves of
  // each row of x ([..., 2·I], unit column stride) in one kernel: silu(gate) rounded to the run dtype,
  // × up, rounded — the map step of SILU_MUL_BY_DTYPE (f16: silu, then mul), whose bodies every backend
  // runs. With `scale` (silu_and_mul_quant, csrc/quantization/activation_kernels.cu: `ACT_FN(x) · y`
  // in scalar_t, then scaled_fp8_conversion) each product is quantized as fp8_quant does in the same
  // kernel: bitwise the silu_and_mul → static quant pair on one backend. The ulps are the map
  // functions' (silu_mul_bf16's in bf16, silu_mul's in f32) and bound the product before the quant;
  // across backends a quantized value may differ by one e4m3 step. The agent runs it as the pair's
  // steps (KERNEL_DECOMPOSITIONS), map and fp8_quant.
  silu_and_mul: {
    fields: { x: 'view', scale: 'view?', out: 'storage' },
    worker: ['map', 'fp8_quant'],
    rounding: { ulps: SILU_MUL_ULPS },
    collective: false,
    doc: 'SiLU-and-mul (+ static FP8 quant)',
  },
  // vLLM's silu_and_mul_nvfp4_quant as fusionlab runs it (fusedQuant.ts says why it rounds the product
  // as the pair): silu_and_mul's products of x (as KERNELS.silu_and_mul) quantized as nvfp4_scale and
  // nvfp4_quant do, in one kernel: the packed e2m1 pairs into `out` ([rows, I/2]) and the e4m3 block
  // scales into `scaleOut`, row-major [rows, I/16] or, `swizzled`, at vLLM's
  // cvt_quant_to_fp4_get_sf_out_offset in the padded 128 × 4 tiles (src/graph/fp4.ts; the padding
  // left zero). Bitwise the silu_and_mul → scaled_fp4_quant pair on one backend; the ulps bound the
  // products before the quant, as silu_and_mul's. No worker kernel: the agent feeds it.
  silu_and_mul_nvfp4: {
    fields: { x: 'view', globalScale: 'view', swizzled: 'bool', out: 'storage', scaleOut: 'storage' },
    worker: [],
    rounding: { ulps: SILU_MUL_ULPS },
    collective: false,
    doc: 'SiLU-and-mul + NVFP4 quant',
  },
  // RMSNorm (and the residual add) with the dynamic FP8 quant of its output in one kernel: vLLM's
  // rms_norm_dynamic_per_token_quant (group = the row) and rms_norm_per_block_quant (groups of
  // `group` columns), csrc/quantization/fused_kernels/. Each normed value is rounded to the run
  // dtype as the unfused norm stores it, then quantized per group exactly as fp8_quant_rows (eps 0):
  // bitwise the norm → fp8_quant_rows pair on one backend (KERNEL_DECOMPOSITIONS); against the CPU
  // reference the norm's ulps, so a quantized value may differ by one e4m3 step where the norm's
  // last bit crosses a rounding point, a scale by the absmax's. scaleOut holds the scales
  // [rows, groups], or [groups, rows] with scaleTransposed (vLLM's column-major scales).
  rms_norm_dynamic_quant: {
    fields: { x: 'view', w: 'view', eps: 'num', out: 'storage', ...NORM_DYNAMIC_QUANT_FIELDS },
    worker: [],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: false,
    doc: 'RMSNorm + dynamic FP8 quant',
  },
  fused_add_rms_norm_dynamic_quant: {
    fields: {
      x: 'view',
      residual: 'view',
      w: 'view',
      eps: 'num',
      out: 'storage',
      residualOut: 'storage',
      ...NORM_DYNAMIC_QUANT_FIELDS,
    },
    worker: [],
    rounding: { ulps: { bf16: 2, f32: 4 } },
    collective: false,
    doc: 'residual add + RMSNorm + dynamic FP8 quant',
  },
} as const satisfies Record<string, KernelDef>;

export type KernelName = keyof typeof KERNELS;

/** A kernel step's parameters, derived from its wire fields (one declaration for both). */
export type Kernel = {
  [K in KernelName]: Flatten<{ kernel: K } & KernelFields<(typeof KERNELS)[K]['fields']>>;
}[KernelName];
