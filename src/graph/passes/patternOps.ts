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
