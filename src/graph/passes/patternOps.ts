// The ops the passes match and emit, by their FX names: what vLLM's patterns are written against
// (vllm/compilation/passes/fusion: collective_fusion.py, sequence_parallelism.py, noop_elimination.py).

// Collectives
export const ALL_REDUCE = 'vllm.all_reduce.default';
export const C10D_ALL_REDUCE = '_c10d_functional.all_reduce.default';
export const WAIT_TENSOR = '_c10d_functional.wait_tensor.default';
export const REDUCE_SCATTER = 'vllm.reduce_scatter.default';
export const ALL_GATHER = 'vllm.all_gather.default';
/** This rank's chunk of the token dim (vllm/model_executor/models/utils.py). */
export const SEQUENCE_PARALLEL_CHUNK = 'vllm.sequence_parallel_chunk_impl.default';

// Norms and quants (custom ops, matched through auto_functionalized)
export const RMS_NORM = '_C.rms_norm.default';
export const FUSED_ADD_RMS_NORM = '_C.fused_add_rms_norm.default';
export const QUANT_FP8 = '_C.static_scaled_fp8_quant.default';
export const QUANT_FP4 = '_C.scaled_fp4_quant.default';
export const MOE_FORWARD = 'vllm.moe_forward.default';

// What the fusions emit
export const FUSED_ALLREDUCE_NORM = 'vllm.flashinfer_trtllm_fused_allreduce_norm.default';
export const FUSED_MATMUL_REDUCE_SCATTER = 'symm_mem.fused_matmul_reduce_scatter.default';
export const FUSED_ALL_GATHER_MATMUL = 'symm_mem.fused_all_gather_matmul.default';
// FP8: later vLLM calls vllm.patched_fused_scaled_matmul_reduce_scatter, with the same arguments.
export const FUSED_SCALED_MATMUL_REDUCE_SCATTER = 'symm_mem.fused_scaled_matmul_reduce_scatter.default';
export const FUSED_ALL_GATHER_SCALED_MATMUL = 'symm_mem.fused_all_gather_scaled_matmul.default';

// aten
export const MM = 'aten.mm.default';
export const ADDMM = 'aten.addmm.default';
export const SCALED_MM = 'aten._scaled_mm.default';
// FP8 GEMM (custom op, matched through auto_functionalized)
export const CUTLASS_SCALED_MM = '_C.cutlass_scaled_mm.default';
export const SLICE = 'aten.slice.Tensor';
export const SLICE_SCATTER = 'aten.slice_scatter.default';
export const CONSTANT_PAD = 'aten.constant_pad_nd.default';

// vLLM IR ops (vllm/ir/ops/layernorm.py, PRs #33825 / #36823): functional, lowered by VllmIRLoweringPass
export const VLLM_IR_RMS_NORM = 'vllm_ir.rms_norm.default';
export const VLLM_IR_FUSED_ADD_RMS_NORM = 'vllm_ir.fused_add_rms_norm.default';
/** vllm/_aiter_ops.py: AITER's fused add + RMSNorm, functional, (x, residual, weight, variance_epsilon) → (out, residual_out). */
export const ROCM_AITER_FUSED_ADD_RMS_NORM = 'vllm.rocm_aiter_rmsnorm2d_fwd_with_add.default';

// The torch-native decompositions vLLM's matchers also match (matcher_utils.py forward_native), as
// they appear in a post-grad graph
export const CONVERT_ELEMENT_TYPE = 'prims.convert_element_type.default';
export const TO_COPY = 'aten._to_copy.default';
export const ADD = 'aten.add.Tensor';
export const ADD_SCALAR = 'aten.add.Scalar';
export const MUL = 'aten.mul.Tensor';
export const DIV = 'aten.div.Tensor';
export const POW = 'aten.pow.Tensor_Scalar';
export const MEAN_DIM = 'aten.mean.dim';
export const RSQRT = 'aten.rsqrt.default';
export const RECIPROCAL = 'aten.reciprocal.default';
export const CLAMP = 'aten.clamp.default';
export const CLAMP_MIN = 'aten.clamp_min.default';
export const CLAMP_MAX = 'aten.clamp_max.default';
export const ABS = 'aten.abs.default';
export const AMAX = 'aten.amax.default';
export const MAX = 'aten.max.default';
export const MAX_DIM = 'aten.max.dim';
export const UNSQUEEZE = 'aten.unsqueeze.default';
export const NEG = 'aten.neg.default';
export const EXP = 'aten.exp.default';
export const SIGMOID = 'aten.sigmoid.default';
export const SILU = 'aten.silu.default';
export const EMPTY_LIKE = 'aten.empty_like.default';
export const EMPTY = 'aten.empty.memory_format';

// More vLLM custom ops the matchers recognize
export const SILU_AND_MUL = '_C.silu_and_mul.default';
export const DYNAMIC_QUANT_FP8 = '_C.dynamic_scaled_fp8_quant.default';
export const DYNAMIC_PER_TOKEN_QUANT_FP8 = '_C.dynamic_per_token_scaled_fp8_quant.default';
export const ROTARY_EMBEDDING = '_C.rotary_embedding.default';

// What the norm + quant and activation + quant fusions match and emit (rms_quant_fusion.py,
// act_quant_fusion.py; schemas in csrc/torch_bindings.cpp)
export const PER_TOKEN_GROUP_QUANT_FP8 = '_C.per_token_group_fp8_quant.default';
export const RMS_NORM_STATIC_FP8_QUANT = '_C.rms_norm_static_fp8_quant.default';
export const FUSED_ADD_RMS_NORM_STATIC_FP8_QUANT = '_C.fused_add_rms_norm_static_fp8_quant.default';
export const RMS_NORM_DYNAMIC_PER_TOKEN_QUANT = '_C.rms_norm_dynamic_per_token_quant.default';
export const RMS_NORM_PER_BLOCK_QUANT = '_C.rms_norm_per_block_quant.default';
export const SILU_AND_MUL_QUANT = '_C.silu_and_mul_quant.default';
export const SILU_AND_MUL_PER_BLOCK_QUANT = '_C.silu_and_mul_per_block_quant.default';
export const SILU_AND_MUL_NVFP4_QUANT = '_C.silu_and_mul_nvfp4_quant.default';

// RoPE: the native rotary embedding (RotaryEmbedding.forward_static), and what the QK-norm + RoPE
// and RoPE + KV-cache fusions match and emit (qk_norm_rope_fusion.py, rope_kvcache_fusion.py)
export const INDEX = 'aten.index.Tensor';
export const SPLIT = 'aten.split.Tensor';
export const SPLIT_WITH_SIZES = 'aten.split_with_sizes.default';
export const SUB = 'aten.sub.Tensor';
export const CAT = 'aten.cat.default';
export const RESHAPE = 'aten.reshape.default';
export const VIEW = 'aten.view.default';
export const FLASHINFER_ROTARY_EMBEDDING = 'vllm.flashinfer_rotary_embedding.default';
export const FUSED_QK_NORM_ROPE = '_C.fused_qk_norm_rope.default';
export const UNIFIED_KV_CACHE_UPDATE = 'vllm.unified_kv_cache_update.default';
export const FUSED_ROPE_KV_CACHE_UPDATE = 'vllm.fused_rope_and_unified_kv_cache_update.default';
