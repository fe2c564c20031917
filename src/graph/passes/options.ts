// Pass options, their defaults, and how a graph tells its own world size.

import type { Graph } from '../ir.ts';
import { MAX_SIZE_MB } from './flashinferLimits.ts';
import type { Diagnostic, PassOptions } from './pipeline.ts';

/** The GPU families FlashInfer's size table knows, and the two ways of gating on tokens (DESIGN.md). */
export const GPU_FAMILIES = Object.keys(MAX_SIZE_MB) as (keyof typeof MAX_SIZE_MB)[];
export const TOKEN_GATES = ['runtime-fallback', 'compile-range'] as const satisfies readonly NonNullable<
  PassOptions['tokenGate']
>[];

export interface ResolvedOptions {
  worldSize: number;
  /** Where the world size came from, for diagnostics. */
  worldSizeFrom: string;
  maxTokens: number;
  gpu: 'hopper' | 'blackwell';
  tokenGate: 'runtime-fallback' | 'compile-range';
  tpGroup: string;
}

export const DEFAULT_WORLD_SIZE = 4;
/** vLLM's default max_num_batched_tokens for online serving. */
export const DEFAULT_MAX_TOKENS = 8192;
/**
 * The tensor-parallel group's name as vLLM's graphs carry it: GroupCoordinator names its groups
 * `f"{name}:{index}"` (parallel_state.py, _get_unique_name), and the first TP group is 'tp:0'.
 */
export const DEFAULT_TP_GROUP = 'tp:0';

/**
 * The world size a graph states: a `world_size` keyword (the fused op, vLLM's all_gather /
 * reduce_scatter) or a c10d collective's `group_size`. vLLM's `all_reduce(x, 'tp:0')` names its
 * group but not its size, so a plain vLLM graph states none.
 */
export function graphWorldSize(g: Graph): number | undefined {
  for (const n of g.nodes) {
    const ws = n.kwargs['world_size'] ?? n.kwargs['group_size'];
    if (typeof ws === 'number') return ws;
    if (n.op === '_c10d_functional.all_gather_into_tensor.default' && typeof n.args[1] === 'number')
      return n.args[1];
    if (n.op === '_c10d_functional.reduce_scatter_tensor.default' && typeof n.args[2] === 'number')
      return n.args[2];
  }
  return undefined;
}

export function resolveOptions(g: Graph, opts: PassOptions = {}): ResolvedOptions {
  const fromGraph = opts.worldSize === undefined ? graphWorldSize(g) : undefined;
  return {
    worldSize: opts.worldSize ?? fromGraph ?? DEFAULT_WORLD_SIZE,
    worldSizeFrom: opts.worldSize !== undefined ? 'option' : fromGraph !== undefined ? 'graph' : 'default',
    maxTokens: opts.maxTokens ?? DEFAULT_MAX_TOKENS,
    gpu: opts.gpu ?? 'hopper',
    tokenGate: opts.tokenGate ?? 'runtime-fallback',
    tpGroup: opts.tpGroup ?? DEFAULT_TP_GROUP,
  };
}

export function diagnostic(
  pass: string,
  node: string,
  reason: string,
  blocker?: string,
  fix?: string,
): Diagnostic {
  const d: Diagnostic = { pass, node, reason };
  if (blocker !== undefined) d.blocker = blocker;
  if (fix !== undefined) d.fix = fix;
  return d;
}
