// The gates vLLM's AllReduceFusionPass puts on FlashInfer's fused all-reduce + RMSNorm, and
// max_token_num, the token capacity of its one-kernel workspace.
//
// Source: vLLM vllm/compilation/passes/fusion/allreduce_rms_fusion.py, FI_ALLREDUCE_FUSION_MAX_SIZE_MB
// (keyed by device capability 90 = Hopper, 100 = Blackwell B200), and AllReduceFusionPass:
//   max_token_num = min(max_size // (hidden_dim * element_size), max_num_batched_tokens)
// with max_size = MB * 2^20. Hopper at 8 ranks is 0.5 MB there (DESIGN.md's table says 1 MB; the
// source wins). The PR #28841 "after" fragment's max_token_num = 5825 is this formula for
// GPT-OSS (hidden 2880, bf16) at world size 4 on Blackwell: ⌊32·2^20 / (2880·2)⌋ = 5825
// (< max_num_batched_tokens 8192). On Hopper at world size 4 it would be ⌊2·2^20 / 5760⌋ = 364.

import type { TensorType } from '../ir.ts';

export const FUSED_WORLD_SIZES = [2, 4, 8] as const;
/** vLLM registers its patterns for these two epsilons only. */
export const FUSED_EPSILONS = [1e-5, 1e-6] as const;

export const MAX_SIZE_MB: Record<'hopper' | 'blackwell', Record<number, number>> = {
  hopper: { 2: 64, 4: 2, 8: 0.5 },
  blackwell: { 2: 64, 4: 32, 8: 1 },
};

const MiB = 1024 * 1024;

export interface TokenCapacity {
  /** Bytes of input the fused kernel takes at this world size and GPU. */
  maxBytes: number;
  /** ⌊maxBytes / (hidden · element size)⌋, before the cap by max_num_batched_tokens. */
  bySize: number;
  /** The value vLLM passes as `max_token_num`. */
  maxTokenNum: number;
}

/** vLLM's element size: 4 for f32 models (FP32 Lamport buffers), else 2. */
export function elementSize(t: TensorType): number {
  return t.dtype === 'f32' ? 4 : 2;
}

export function tokenCapacity(
  gpu: 'hopper' | 'blackwell',
  worldSize: number,
  hidden: number,
  elem: number,
  maxTokens: number,
): TokenCapacity | undefined {
  const mb = MAX_SIZE_MB[gpu][worldSize];
  if (mb === undefined) return undefined;
  const maxBytes = Math.floor(mb * MiB);
  const bySize = Math.floor(maxBytes / (hidden * elem));
  return { maxBytes, bySize, maxTokenNum: Math.min(bySize, maxTokens) };
}

export function formatBytes(b: number): string {
  if (b >= MiB) return `${+(b / MiB).toFixed(2)} MiB`;
  if (b >= 1024) return `${+(b / 1024).toFixed(2)} KiB`;
  return `${b} B`;
}
