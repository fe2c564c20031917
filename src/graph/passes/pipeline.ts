// The pass pipeline: runs passes in order, keeps every intermediate graph, every match (which
// nodes it consumed and produced) and every stage's diagnostics, and ends with why each all-reduce
// left in the final graph is not fused. Graphs are immutable values: passes share unchanged nodes.

import type { Graph } from '../ir.ts';
import type { VllmPlatform } from './vllmConfig.ts';
import { indexGraph } from '../match.ts';
import { noopElimination } from './noopElimination.ts';
import { sliceHoist } from './sliceHoist.ts';
import { allReduceRmsNorm } from './allReduceRmsNorm.ts';
import { sequenceParallelism } from './sequenceParallelism.ts';
import { asyncTp } from './asyncTp.ts';
import { moeUnpad } from './moeUnpad.ts';
import { normQuant } from './normQuant.ts';
import { actQuant } from './actQuant.ts';
import { attnQuant } from './attnQuant.ts';
import { actPadding } from './actPadding.ts';
import type { AttentionBackend } from './attnQuant.ts';
import { qkNormRope } from './qkNormRope.ts';
import { ropeKvCache } from './ropeKvCache.ts';
import { vllmIrLowering } from './vllmIrLowering.ts';
import { explainAllReduce } from './diagnostics.ts';
import { resolveOptions } from './options.ts';
import { ALL_REDUCE } from './patternOps.ts';

export interface PassOptions {
  /** Default: what the graph states (a world_size / group_size argument), else 4. */
  worldSize?: number;
  /** max_num_batched_tokens; default 8192. */
  maxTokens?: number;
  /** Default hopper. */
  gpu?: 'hopper' | 'blackwell';
  /**
   * How the token count gates the fusion. 'runtime-fallback' (default): as the vLLM that PR
   * #28841 and the fixtures' dumps come from — the pattern always fires and the fused op falls
   * back to all-reduce + norm at run time for batches above max_token_num. 'compile-range': as
   * later vLLM (is_applicable_for_range) — a graph whose token count (a symbolic one: maxTokens)
   * exceeds max_token_num is left unfused ("too many tokens").
   */
  tokenGate?: 'runtime-fallback' | 'compile-range';
  /**
   * The TP group's name (default 'tp:0'). vLLM's patterns trace tensor_model_parallel_all_reduce,
   * which calls vllm.all_reduce(x, group_name = tp.unique_name): the name is a literal of the
   * pattern, so an all-reduce over another group ('dp:0', 'ep:0') never matches.
   */
  tpGroup?: string;
  /**
   * What vllm-ir-lowering lowers each vLLM IR op to: 'custom' (default; vLLM's `vllm_c` provider,
   * the `_C` op through auto_functionalized) or 'native' (the op's torch decomposition).
   */
  irLowering?: 'custom' | 'native';
  /** Where the graph would be compiled, as vllmConfig's --platform; default sm90. */
  platform?: VllmPlatform;
  /** ROCm's AITER kernels enabled (VLLM_ROCM_USE_AITER=1); default false. */
  aiter?: boolean;
  /** The attention backend (vLLM's --attention-backend); default vLLM's choice on the platform. */
  attentionBackend?: AttentionBackend;
  /** --kv-cache-dtype: FlashInfer fuses an output quant only with an FP8 KV cache; default 'auto'. */
  kvCacheDtype?: 'auto' | 'fp8';
}

export interface Match {
  pass: string;
  site: string;
  consumed: string[];
  produced: string[];
  /** Gates the rewrite passed without evaluating them (a shapeless graph), and what was assumed. */
  unevaluated?: string[];
}

export interface Diagnostic {
  pass: string;
  /** The all-reduce not fused (or not hoisted). */
  node: string;
  /** The node or gate that stopped it. */
  blocker?: string;
  reason: string;
  /** What would unblock it. */
  fix?: string;
}

export interface PassResult {
  graph: Graph;
  matches: Match[];
  diagnostics: Diagnostic[];
}

export type Pass = (g: Graph, opts: PassOptions, only?: (site: string) => boolean) => PassResult;

export type PassName =
  | 'noop-elimination'
  | 'slice-hoist'
  | 'moe-unpad'
  | 'sequence-parallelism'
  | 'async-tp'
  | 'allreduce-rmsnorm'
  | 'norm-quant'
  | 'act-quant'
  | 'act-padding'
  | 'rope-kvcache'
  | 'attn-quant'
  | 'qk-norm-rope'
  | 'vllm-ir-lowering';

export const PASSES: Record<PassName, Pass> = {
  'noop-elimination': noopElimination,
  'slice-hoist': sliceHoist,
  'moe-unpad': moeUnpad,
  'sequence-parallelism': sequenceParallelism,
  'async-tp': asyncTp,
  'allreduce-rmsnorm': allReduceRmsNorm,
  'norm-quant': normQuant,
  'act-quant': actQuant,
  'act-padding': actPadding,
  'rope-kvcache': ropeKvCache,
  'attn-quant': attnQuant,
  'qk-norm-rope': qkNormRope,
  'vllm-ir-lowering': vllmIrLowering,
};

/** One line per pass: what it rewrites and why that is legal (pass lists, --help). */
export const PASS_DESCRIPTIONS: Record<PassName, string> = {
  'noop-elimination': 'Drops reshapes to the same shape and full-range slices.',
  'slice-hoist':
    'slice(all_reduce(x)) → all_reduce(slice(x)): legal because the all-reduce sums elementwise over ranks (vLLM PR #28841).',
  'moe-unpad':
    "pad → MoE → slice → MoE reading and writing the unpadded hidden size: the pad folds into the MoE's input alignment, the slice into its output shape (vLLM #30647, the re-land).",
  'sequence-parallelism':
    'all_reduce → RMSNorm → reduce_scatter → RMSNorm on the local token shard → all_gather: the norm does 1/N of the work (vLLM SequenceParallelismPass).',
  'async-tp':
    'mm → reduce_scatter and all_gather → mm → symmetric-memory fused collective matmuls that overlap transfer and compute (vLLM AsyncTPPass).',
  'allreduce-rmsnorm':
    'all_reduce + (fused_add_)rms_norm → one FlashInfer fused all-reduce + RMSNorm kernel.',
  'norm-quant':
    '(fused_add_)rms_norm → FP8 quant (static, per-token, per-group 128/64) → one fused norm + quant kernel, where only the quant reads the normed output (vLLM RMSNormQuantFusionPass).',
  'act-quant':
    'silu_and_mul → static FP8 quant (NVFP4 on Blackwell) → one fused SwiGLU + quant kernel, where only the quant reads its output (vLLM ActivationQuantFusionPass).',
  'act-padding':
    "fused_add_rms_norm → pad of GPT-OSS's hidden 2880 (to a multiple of 128 or 256) → AITER's one Triton add + RMSNorm + pad kernel, the router GEMM reading its first 2880 columns (vLLM RocmAiterTritonAddRMSNormPadFusionPass; ROCm with AITER only).",
  'rope-kvcache':
    'rotary_embedding → unified_kv_cache_update of the rotated key → one fused RoPE + KV-cache write (vLLM RopeKVCacheFusionPass; ROCm, decode-size compile ranges).',
  'attn-quant':
    'unified_attention_with_output → static FP8 quant (NVFP4 on Blackwell) → the attention writes the quantized output itself (output_scale), where only the quant reads it and the attention backend supports it (vLLM AttnQuantFusionPass).',
  'qk-norm-rope':
    'split qkv → per-head q/k RMSNorm → rotary_embedding → one fused_qk_norm_rope kernel over qkv in place (vLLM QKNormRoPEFusionPass; head_dim 64/128/256, bf16/f16).',
  'vllm-ir-lowering':
    "vllm_ir.rms_norm / fused_add_rms_norm → the _C custom op (or, with irLowering 'native', its torch decomposition), as vLLM's VllmIRLoweringPass does after the fusion passes have matched the IR ops.",
};

export const DEFAULT_PIPELINE = ['noop-elimination', 'slice-hoist', 'allreduce-rmsnorm'] as const;
/** vLLM's order with sequence parallelism and async TP on (they replace the all-reduce fusion). */
export const SEQUENCE_PARALLEL_PIPELINE = [
  'noop-elimination',
  'slice-hoist',
  'sequence-parallelism',
  'async-tp',
] as const;

const EXPLAINS_LEFTOVERS: string[] = [
  'allreduce-rmsnorm',
  'sequence-parallelism',
  'async-tp',
] satisfies PassName[];

export interface PipelineStage {
  pass: string;
  graph: Graph;
  matches: Match[];
  diagnostics: Diagnostic[];
}

export interface PipelineResult {
  input: Graph;
  stages: PipelineStage[];
  output: Graph;
  /**
   * Every stage's diagnostics in stage order, then — when the last stage does not explain what it
   * leaves — why each all-reduce of the final graph is not fused (pass 'allreduce-rmsnorm').
   */
  diagnostics: Diagnostic[];
}

export class UnknownPassError extends Error {
  constructor(readonly pass: string) {
    super(`unknown pass '${pass}' (known: ${Object.keys(PASSES).join(', ')})`);
    this.name = 'UnknownPassError';
  }
}

export function runPipeline(g: Graph, passes: readonly string[], opts: PassOptions = {}): PipelineResult {
  const run = passes.map((p) => {
    const fn = PASSES[p as keyof typeof PASSES];
    if (!fn) throw new UnknownPassError(p);
    return [p, fn] as const;
  });
  const stages: PipelineStage[] = [];
  let cur = g;
  for (const [name, fn] of run) {
    const r = fn(cur, opts);
    stages.push({
      pass: name,
      graph: r.graph,
      matches: r.matches,
      diagnostics: r.diagnostics.map((d) => withEarlierReason(d, stages)),
    });
    cur = r.graph;
  }
  // These passes already explain every collective they leave; don't do it twice.
  const last = stages[stages.length - 1];
  const leftovers =
    last && EXPLAINS_LEFTOVERS.includes(last.pass)
      ? []
      : diagnose(cur, opts).map((d) => withEarlierReason(d, stages));
  return {
    input: g,
    stages,
    output: cur,
    diagnostics: [...stages.flatMap((s) => s.diagnostics), ...leftovers],
  };
}

/**
 * A diagnostic whose fix is a pass that already ran in this pipeline ("run sequence-parallelism
 * first" from async-tp, after sequence-parallelism refused that all-reduce) gives that pass's own
 * reason for the node instead: telling the user to run a pass that ran says nothing.
 */
function withEarlierReason(d: Diagnostic, earlier: readonly PipelineStage[]): Diagnostic {
  const wanted = d.fix?.match(/^run ([\w-]+)/)?.[1];
  if (wanted === undefined) return d;
  for (let i = earlier.length - 1; i >= 0; i--) {
    const stage = earlier[i]!;
    if (stage.pass !== wanted) continue;
    const own = stage.diagnostics.find((e) => e.node === d.node);
    if (!own) return d;
    const r: Diagnostic = {
      pass: d.pass,
      node: d.node,
      reason: `${d.node} is left as ${wanted} left it: ${own.reason}`,
    };
    if (own.blocker !== undefined) r.blocker = own.blocker;
    if (own.fix !== undefined) r.fix = own.fix;
    return r;
  }
  return d;
}

/** Why each all-reduce of `g` as it stands is not fused. */
export function diagnose(g: Graph, opts: PassOptions = {}) {
  const left = g.nodes.filter((n) => n.op === ALL_REDUCE || n.op === '_c10d_functional.all_reduce.default');
  if (left.length === 0) return [];
  const ix = indexGraph(g);
  const resolved = resolveOptions(g, opts);
  return left.map((ar) => explainAllReduce(ar, ix, resolved));
}
