// The gates vLLM's AllReduceFusionPass puts on an all-reduce + RMSNorm site (world size, eps,
// shape, tokens), shared by the pass and by the diagnostics that explain a refusal.

import type { Arg, Graph, Node, TensorType } from '../ir.ts';
import { numberOf } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { argOf, tensorOf } from '../match.ts';
import type { ResolvedOptions } from './options.ts';
import {
  FUSED_EPSILONS,
  FUSED_WORLD_SIZES,
  elementSize,
  formatBytes,
  tokenCapacity,
} from './flashinferLimits.ts';
import { ALL_REDUCE, C10D_ALL_REDUCE } from './patternOps.ts';

export const PASS = 'allreduce-rmsnorm';

/** FlashInfer's AllReduceFusionPattern codes (flashinfer/comm/trtllm_ar.py) that vLLM's patterns emit. */
export const FUSION_PATTERN_CODE = {
  kARResidualRMSNorm: 1,
  kARResidualRMSNormFP8Quant: 2,
  kARResidualRMSNormFP4Quant: 3,
} as const;

export interface GateFailure {
  blocker: string;
  reason: string;
  fix: string;
}
export interface GatePass {
  maxTokenNum: number;
  /** Gates that could not be evaluated on this graph, each with what was assumed instead. */
  unevaluated?: string[];
}

/** The process group an all-reduce names (`vllm.all_reduce(x, group_name)`; c10d: its third argument). */
export function reduceGroup(ar: Node): Arg | undefined {
  return ar.op === C10D_ALL_REDUCE ? argOf(ar, 2, 'group_name') : argOf(ar, 1, 'group_name');
}

/** The distinct groups the graph's all-reduces name, in order of first use (for picking the TP group). */
export function reduceGroups(g: Graph): string[] {
  const seen = new Set<string>();
  for (const n of g.nodes) {
    if (n.op !== ALL_REDUCE && n.op !== C10D_ALL_REDUCE) continue;
    const group = reduceGroup(n);
    if (typeof group === 'string') seen.add(group);
  }
  return [...seen];
}

/**
 * A collective over another group than the TP group (blocker 'group'), or null. vLLM's
 * sequence-parallelism, async-TP and all-reduce fusion patterns all name `tp.unique_name`
 * literally, so a 'dp:0' or 'ep:0' collective never matches them; `why` says which patterns.
 */
export function tpGroupGate(
  coll: Node,
  group: Arg | undefined,
  opts: ResolvedOptions,
  why: string,
): GateFailure | null {
  if (group === opts.tpGroup) return null;
  const shown =
    typeof group === 'string' ? `'${group}'` : `a non-literal group (${JSON.stringify(group ?? null)})`;
  const verb = coll.op === ALL_REDUCE || coll.op === C10D_ALL_REDUCE ? 'reduces over' : 'is over';
  return {
    blocker: 'group',
    reason: `${coll.name} ${verb} ${shown}, not the TP group '${opts.tpGroup}': ${why}`,
    fix:
      typeof group === 'string'
        ? `if '${group}' is the tensor-parallel group, --tp-group ${group}`
        : 'reduce over the TP group',
  };
}

/** The first gate that stops the fusion of `ar` with its norm, or the max_token_num to use. */
export function fusionGate(
  ar: Node,
  ix: GraphIndex,
  eps: Arg | undefined,
  opts: ResolvedOptions,
): GateFailure | GatePass {
  const notTp = tpGroupGate(
    ar,
    reduceGroup(ar),
    opts,
    // The pattern is traced from tensor_model_parallel_all_reduce (collective_fusion.py), so the TP
    // group's unique name is a literal of the pattern; the FlashInfer workspace spans TP ranks only.
    "vLLM's all-reduce + RMSNorm patterns match tensor_model_parallel_all_reduce only, and FlashInfer's workspace spans the TP ranks",
  );
  if (notTp) return notTp;
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
  const known = tensorOf(ix, ar.args[0]);
  if (known && known.shape.length !== 2) {
    return {
      blocker: 'shape',
      reason: `the all-reduce input's shape is [${known.shape.join(', ')}]: the fused kernel takes a 2-d [tokens, hidden] tensor`,
      fix: 'reshape to [tokens, hidden] before the all-reduce',
    };
  }
  if (!known || typeof known.shape[1] !== 'number') {
    // vLLM takes the hidden size from the model config, not the graph, and under the run-time
    // fallback the token count is checked per batch: the pattern fires without a shape. Only the
    // workspace's token capacity needs the hidden size; without it, max_num_batched_tokens bounds it.
    const shown = known ? `[${known.shape.join(', ')}]` : 'unknown';
    if (opts.tokenGate === 'compile-range') {
      return {
        blocker: 'shape',
        reason: `the all-reduce input's shape is ${shown}: the compile-range token gate needs the token count and a known hidden size`,
        fix: 'annotate the all-reduce input ("bf16[s72, 2880]"), or --token-gate runtime-fallback',
      };
    }
    return {
      maxTokenNum: opts.maxTokens,
      unevaluated: [
        `token capacity: ${ar.name}'s input shape is ${shown}, so FlashInfer's size limit was not evaluated; max_token_num = max_num_batched_tokens (${opts.maxTokens}) assumed, batches above the real limit fall back at run time`,
      ],
    };
  }
  const x = known as TensorType;
  const hidden = x.shape[1] as number,
    elem = elementSize(x);
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
