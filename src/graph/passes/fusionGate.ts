// The gates vLLM's AllReduceFusionPass puts on an all-reduce + RMSNorm site (world size, eps,
// shape, tokens), shared by the pass and by the diagnostics that explain a refusal.

import type { Arg, Node, TensorType } from '../ir.ts';
import { isRef, numberOf } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import type { ResolvedOptions } from './options.ts';
import { FUSED_EPSILONS, FUSED_WORLD_SIZES, elementSize, formatBytes, tokenCapacity } from './flashinferLimits.ts';

export const PASS = 'allreduce-rmsnorm';
export const ALL_REDUCE = 'vllm.all_reduce.default';
export const FUSED_ADD_RMS_NORM = '_C.fused_add_rms_norm.default';
export const RMS_NORM = '_C.rms_norm.default';
export const FUSED_ALLREDUCE_NORM = 'vllm.flashinfer_trtllm_fused_allreduce_norm.default';
export const C10D_ALL_REDUCE = '_c10d_functional.all_reduce.default';

export interface GateFailure { blocker: string; reason: string; fix: string }

/** The first gate that stops the fusion of `ar` with its norm, or the max_token_num to use. */
export function fusionGate(ar: Node, ix: GraphIndex, eps: Arg | undefined, opts: ResolvedOptions): GateFailure | { maxTokenNum: number } {
  if (!(FUSED_WORLD_SIZES as readonly number[]).includes(opts.worldSize)) {
    return {
      blocker: 'world size',
      reason: `world size ${opts.worldSize} (${opts.worldSizeFrom}): FlashInfer's fused all-reduce + RMSNorm runs on 2, 4 or 8 ranks`,
      fix: 'world size must be 2, 4 or 8',
    };
  }
  const e = numberOf(eps);
  if (e === undefined || !(FUSED_EPSILONS as readonly number[]).includes(e)) {
    return {
      blocker: 'eps',
      reason: `eps ${e ?? JSON.stringify(eps)}: vLLM registers the all-reduce + RMSNorm patterns for eps 1e-05 and 1e-06 only`,
      fix: 'eps must be 1e-05 or 1e-06',
    };
  }
  const xArg = ar.args[0];
  const t = xArg && isRef(xArg) ? ix.types.get(xArg.name) : undefined;
  if (!t || t.kind !== 'tensor' || t.shape.length !== 2 || typeof t.shape[1] !== 'number') {
    const shown = t && t.kind === 'tensor' ? `[${t.shape.join(', ')}]` : 'unknown';
    return {
      blocker: 'shape',
      reason: `the all-reduce input's shape is ${shown}: the fused kernel takes a 2-d [tokens, hidden] tensor with a known hidden size`,
      fix: 'reshape to [tokens, hidden] before the all-reduce',
    };
  }
  const x = t as TensorType;
  const hidden = x.shape[1] as number, elem = elementSize(x);
  const cap = tokenCapacity(opts.gpu, opts.worldSize, hidden, elem, opts.maxTokens)!;
  if (cap.maxTokenNum < 1) {
    return {
      blocker: 'too many tokens',
      reason: `too many tokens: one token row (${hidden} × ${elem} B) exceeds FlashInfer's ${formatBytes(cap.maxBytes)} limit at world size ${opts.worldSize} on ${opts.gpu}`,
      fix: 'use fewer ranks',
    };
  }
  if (opts.tokenGate === 'compile-range') {
    // A symbolic token count stands for every batch up to max_num_batched_tokens.
    const tokens = typeof x.shape[0] === 'number' ? x.shape[0] : opts.maxTokens;
    if (tokens > cap.maxTokenNum) {
      return {
        blocker: 'too many tokens',
        reason: `too many tokens: ${tokens} tokens × ${hidden} × ${elem} B = ${formatBytes(tokens * hidden * elem)} exceeds FlashInfer's ${formatBytes(cap.maxBytes)} limit at world size ${opts.worldSize} on ${opts.gpu} (max_token_num ${cap.maxTokenNum})`,
        fix: `at most ${cap.maxTokenNum} tokens (--max-tokens ${cap.maxTokenNum}), or world size 2`,
      };
    }
  }
  return { maxTokenNum: cap.maxTokenNum };
}

