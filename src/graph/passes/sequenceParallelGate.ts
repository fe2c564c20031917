// The gates vLLM puts on sequence parallelism and async TP (the ops they rewrite into: patternOps.ts).
//
// Sources (vLLM): vllm/compilation/passes/fusion/sequence_parallelism.py
//   - SequenceParallelismPass patterns for eps 1e-5 and 1e-6; reduce_scatter / all_gather along
//     dim 0 (the token dim) with world_size = the TP size;
//   - is_applicable_for_range: compile sizes divisible by the TP size (piecewise graphs), and
//     with later vLLM a minimum token count: get_sequence_parallelism_threshold, SP_MIN_HIDDEN_SIZE
//     {90: 8192} and SP_MIN_PER_GPU_SIZE_MB {90: 8}: min_token_num = 8 MiB · tp / (hidden · elem),
//     capped by max_num_batched_tokens; no entry for a GPU means no SP.
// vllm/compilation/passes/fusion/collective_fusion.py (AsyncTPPass): GEMMReduceScatterPattern
//   mm → reduce_scatter ⇒ symm_mem.fused_matmul_reduce_scatter(a, b, "sum", scatter_dim=0, group);
//   AllGatherGEMMPattern all_gather → mm ⇒ symm_mem.fused_all_gather_matmul(x, [w], gather_dim=0, group)
//   whose result is (gathered input, [matmul outputs]).

import type { Dim, TensorType } from '../ir.ts';
import { FUSED_EPSILONS } from './flashinferLimits.ts';
import type { ResolvedOptions } from './options.ts';

/** The dim sequence parallelism splits: tokens, dim 0 of a [tokens, hidden] activation. */
export const TOKEN_DIM = 0;
/** Same as the all-reduce + RMSNorm fusion: vLLM registers both passes' patterns per eps. */
export const SP_EPSILONS = FUSED_EPSILONS;

/** Later vLLM's minimum model size and per-GPU bytes for SP, by GPU (none: SP left off). */
export const SP_MIN_HIDDEN_SIZE: Partial<Record<ResolvedOptions['gpu'], number>> = { hopper: 8192 };
export const SP_MIN_PER_GPU_MB: Partial<Record<ResolvedOptions['gpu'], number>> = { hopper: 8 };

/** A token count split over `n` ranks: T/n when concrete, `T//n` when symbolic. */
export function shardDim(d: Dim, n: number): Dim {
  if (typeof d === 'number') return d / n;
  return /^[A-Za-z_]\w*$/.test(d) ? `${d}//${n}` : `(${d})//${n}`;
}

export function shardedType(t: TensorType, n: number): TensorType {
  const shape = t.shape.slice();
  shape[TOKEN_DIM] = shardDim(shape[TOKEN_DIM]!, n);
  return { kind: 'tensor', dtype: t.dtype, shape };
}

/** Why a [tokens, …] tensor cannot be split over `n` ranks along the token dim, or null. */
export function splitRefusal(t: TensorType | undefined, n: number, what: string): string | null {
  if (!t) return `${what}'s type is unknown, so its token dim cannot be split`;
  const d = t.shape[TOKEN_DIM];
  if (d === undefined) return `${what} is a scalar: no token dim to split`;
  if (typeof d === 'number' && d % n !== 0) {
    return `${what} has ${d} tokens, which do not divide by world size ${n} (${d} = ${Math.floor(d / n)}·${n} + ${d % n})`;
  }
  return null;
}

/** Later vLLM's token threshold for SP (compile-range gating), or why SP is off for this model and GPU. */
export function spThreshold(
  opts: ResolvedOptions,
  hidden: number,
  elem: number,
): { minTokens: number } | { off: string } {
  const minHidden = SP_MIN_HIDDEN_SIZE[opts.gpu],
    perGpu = SP_MIN_PER_GPU_MB[opts.gpu];
  if (minHidden === undefined || perGpu === undefined) {
    return {
      off: `vLLM sets no sequence-parallelism threshold for ${opts.gpu} (SP_MIN_HIDDEN_SIZE has no entry), so it leaves SP off`,
    };
  }
  if (hidden < minHidden) {
    return {
      off: `hidden size ${hidden} < ${minHidden}: vLLM enables sequence parallelism on ${opts.gpu} only for models with hidden ≥ ${minHidden}`,
    };
  }
  const minTokens = Math.floor((perGpu * 1024 * 1024 * opts.worldSize) / (hidden * elem));
  return { minTokens: Math.min(minTokens, opts.maxTokens) };
}
