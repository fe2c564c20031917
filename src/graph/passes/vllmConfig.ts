// vLLM's compilation config, read the way `vllm serve` reads it, and turned into the passes vLLM's
// PostGradPassManager would run on a graph. Source: vLLM main of spring 2026 —
//   vllm/config/vllm.py            OPTIMIZATION_LEVEL_00…03 and the predicates they use
//                                  (enable_norm_fusion, enable_act_fusion, enable_allreduce_rms_fusion, …)
//   vllm/compilation/passes/pass_manager.py   PostGradPassManager.configure: which flag adds which
//                                  pass, in which order
//   docs/design/optimization_levels.md, docs/design/fusions.md (flags, platforms)
// A user pastes the flags of their command line (`-O2 -cc.pass_config.fuse_norm_quant=true`,
// `--compilation-config '{"pass_config": {…}}'`, `-tp 2`) and gets the passes vLLM ran. Explicit
// flags win over the level's defaults, as in vLLM. A flag whose pass fusionlab does not implement
// is still resolved (on or off, and why) and reported as not run, never silently dropped.

import type { Graph, TensorType } from '../ir.ts';
import { isRef } from '../ir.ts';
import { ALL_REDUCE, C10D_ALL_REDUCE } from './patternOps.ts';
import { MAX_SIZE_MB, elementSize } from './flashinferLimits.ts';
import { DEFAULT_MAX_TOKENS, DEFAULT_TP_GROUP } from './options.ts';
import type { PassName, PassOptions } from './pipeline.ts';
import { spThreshold } from './sequenceParallelGate.ts';

/** PassConfig's fusion switches, as vLLM names them (vllm/config/compilation.py, PassConfig). */
export const VLLM_FLAGS = [
  'eliminate_noops',
  'enable_sp',
  'fuse_gemm_comms',
  'fuse_allreduce_rms',
  'fuse_norm_quant',
  'fuse_act_quant',
  'fuse_act_padding',
  'fuse_mla_dual_rms_norm',
  'fuse_rope_kvcache',
  'fuse_qk_norm_rope_kvcache',
  'fuse_rope_kvcache_cat_mla',
  'fuse_attn_quant',
  'enable_qk_norm_rope_fusion',
] as const;
export type VllmFlag = (typeof VLLM_FLAGS)[number];

/** PassConfig's numeric fields fusionlab reads (the rest are accepted and reported as unused). */
export const VLLM_NUMERIC_FIELDS = [
  'sp_min_token_num',
  'fi_allreduce_fusion_max_size_mb',
  'rope_kvcache_fusion_max_token_num',
] as const;
export type VllmNumericField = (typeof VLLM_NUMERIC_FIELDS)[number];

/** Where the graph would be compiled: a CUDA compute capability or ROCm (with AITER or not). */
export const VLLM_PLATFORMS = ['sm80', 'sm89', 'sm90', 'sm100', 'rocm'] as const;
export type VllmPlatform = (typeof VLLM_PLATFORMS)[number];

export type OptimizationLevel = 0 | 1 | 2 | 3;

/** What a level's predicates look at. */
export interface VllmContext {
  platform: VllmPlatform;
  /** ROCm's AITER kernels enabled (VLLM_ROCM_USE_AITER=1). */
  aiter: boolean;
  tp: number;
  /** `custom_ops` as given: 'none', 'all', '+rms_norm', '-quant_fp8', … */
  customOps: string[];
  /** The model's hidden size, when the graph tells it (GPT-OSS's 2880 gates the padding fusion). */
  hiddenSize?: number;
  /** FlashInfer installed (vLLM's has_flashinfer()); default true, as on the hosts vLLM documents. */
  flashinfer: boolean;
}

/** A level's default for one flag: a constant, or a predicate with the reason it gives. */
type LevelDefault = boolean | ((c: VllmContext) => { on: boolean; why: string });

/** vLLM's CustomOp.enabled(): '+name' turns it on, '-name' off, else 'all' / 'none' decide. */
export function customOpEnabled(c: VllmContext, name: string): boolean {
  if (c.customOps.includes(`-${name}`)) return false;
  if (c.customOps.includes(`+${name}`)) return true;
  // Under Inductor vLLM sets custom_ops to ['none'] when the user gave none (VllmConfig.__post_init__).
  return c.customOps.includes('all');
}

const normFusion: LevelDefault = (c) => {
  const on = customOpEnabled(c, 'rms_norm') || customOpEnabled(c, 'quant_fp8');
  return {
    on,
    why: on
      ? 'rms_norm or quant_fp8 runs as a custom kernel (enable_norm_fusion)'
      : 'neither rms_norm nor quant_fp8 is a custom op: Inductor fuses the native norm and quant itself (enable_norm_fusion; add -cc.custom_ops=\'["+rms_norm","+quant_fp8"]\')',
  };
};
const actFusion: LevelDefault = (c) => {
  const on = customOpEnabled(c, 'silu_and_mul') || customOpEnabled(c, 'quant_fp8');
  return {
    on,
    why: on
      ? 'silu_and_mul or quant_fp8 runs as a custom kernel (enable_act_fusion)'
      : 'neither silu_and_mul nor quant_fp8 is a custom op: Inductor fuses them itself (enable_act_fusion)',
  };
};
const allreduceRmsFusion: LevelDefault = (c) => {
  if (c.tp <= 1)
    return { on: false, why: 'TP 1: there is no all-reduce to fuse (enable_allreduce_rms_fusion)' };
  if (c.platform === 'rocm')
    return {
      on: c.aiter,
      why: c.aiter ? 'ROCm with AITER and TP > 1' : 'ROCm without AITER (enable_allreduce_rms_fusion)',
    };
  if (c.platform !== 'sm90' && c.platform !== 'sm100')
    return {
      on: false,
      why: `${c.platform}: FlashInfer's fused all-reduce needs Hopper (sm90) or Blackwell (sm100)`,
    };
  if (!c.flashinfer) return { on: false, why: 'FlashInfer is not installed' };
  return { on: true, why: `TP ${c.tp} on ${c.platform} with FlashInfer (enable_allreduce_rms_fusion)` };
};
const aiterOnly =
  (what: string, extra?: (c: VllmContext) => string | null): LevelDefault =>
  (c) => {
    if (c.platform !== 'rocm' || !c.aiter) return { on: false, why: `${what} is ROCm-with-AITER only` };
    const refusal = extra?.(c) ?? null;
    return refusal ? { on: false, why: refusal } : { on: true, why: `ROCm with AITER: ${what}` };
  };
const normPadFusion = aiterOnly('the add + RMSNorm + pad fusion', (c) =>
  c.hiddenSize === 2880
    ? null
    : `hidden size ${c.hiddenSize ?? 'unknown'} ≠ 2880 (GPT-OSS): enable_norm_pad_fusion is off`,
);
const ropeKvcacheFusion = aiterOnly('the RoPE + KV-cache fusion', (c) =>
  customOpEnabled(c, 'rotary_embedding')
    ? null
    : 'rotary_embedding is not a custom op (enable_rope_kvcache_fusion)',
);
/** IS_DENSE / IS_QUANTIZED: vLLM keeps them False for now (vllm/config/vllm.py, issue #25689). */
const OFF_FOR_NOW = false;

const LEVEL_0: Record<VllmFlag, LevelDefault> = {
  eliminate_noops: false,
  enable_sp: false,
  fuse_gemm_comms: false,
  fuse_allreduce_rms: false,
  fuse_norm_quant: false,
  fuse_act_quant: false,
  fuse_act_padding: false,
  fuse_mla_dual_rms_norm: false,
  fuse_rope_kvcache: false,
  fuse_qk_norm_rope_kvcache: false,
  fuse_rope_kvcache_cat_mla: false,
  fuse_attn_quant: false,
  enable_qk_norm_rope_fusion: false,
};
const LEVEL_1: Record<VllmFlag, LevelDefault> = {
  ...LEVEL_0,
  // PassConfig's own default: noops are eliminated whenever vLLM compiles (mode VLLM_COMPILE).
  eliminate_noops: true,
  fuse_norm_quant: normFusion,
  fuse_act_quant: actFusion,
  fuse_act_padding: normPadFusion,
  fuse_mla_dual_rms_norm: aiterOnly('the MLA dual RMSNorm fusion'),
};
const LEVEL_2: Record<VllmFlag, LevelDefault> = {
  ...LEVEL_1,
  fuse_allreduce_rms: allreduceRmsFusion,
  fuse_attn_quant: OFF_FOR_NOW,
  enable_sp: OFF_FOR_NOW,
  fuse_gemm_comms: OFF_FOR_NOW,
  fuse_rope_kvcache: ropeKvcacheFusion,
  fuse_qk_norm_rope_kvcache: aiterOnly('the QK-norm + RoPE + KV-cache fusion', (c) =>
    customOpEnabled(c, 'rotary_embedding') ? null : 'rotary_embedding is not a custom op',
  ),
  // enable_rope_kvcache_mla_fusion: on when the KV-cache update is not a splitting op; the graphs
  // fusionlab reads are split at attention, so it stays off here.
  fuse_rope_kvcache_cat_mla: false,
};
export const OPTIMIZATION_LEVELS: Record<OptimizationLevel, Record<VllmFlag, LevelDefault>> = {
  0: LEVEL_0,
  1: LEVEL_1,
  2: LEVEL_2,
  3: LEVEL_2,
};

/**
 * The pass each flag adds, in PostGradPassManager.configure's order; `pass: null` where fusionlab
 * has no pass for it yet (the flag is still resolved and shown).
 */
export const FLAG_PASSES: Record<VllmFlag, { vllmPass: string; pass: PassName | null; needs?: VllmFlag }> = {
  eliminate_noops: { vllmPass: 'NoOpEliminationPass', pass: 'noop-elimination' },
  enable_sp: { vllmPass: 'SequenceParallelismPass', pass: 'sequence-parallelism' },
  fuse_gemm_comms: { vllmPass: 'AsyncTPPass', pass: 'async-tp', needs: 'enable_sp' },
  fuse_allreduce_rms: { vllmPass: 'AllReduceFusionPass', pass: 'allreduce-rmsnorm' },
  fuse_norm_quant: { vllmPass: 'RMSNormQuantFusionPass', pass: 'norm-quant' },
  fuse_act_quant: { vllmPass: 'ActivationQuantFusionPass', pass: 'act-quant' },
  fuse_act_padding: { vllmPass: 'RocmAiterTritonAddRMSNormPadFusionPass', pass: 'act-padding' },
  fuse_mla_dual_rms_norm: { vllmPass: 'MLA dual RMSNorm fusion', pass: null },
  fuse_rope_kvcache: { vllmPass: 'RopeKVCacheFusionPass', pass: 'rope-kvcache' },
  fuse_qk_norm_rope_kvcache: { vllmPass: 'QK-norm + RoPE + KV-cache fusion', pass: null },
  fuse_rope_kvcache_cat_mla: { vllmPass: 'MLA RoPE + KV-cache cat fusion', pass: null },
  fuse_attn_quant: { vllmPass: 'AttnQuantFusionPass', pass: 'attn-quant' },
  enable_qk_norm_rope_fusion: { vllmPass: 'QKNormRoPEFusionPass', pass: 'qk-norm-rope' },
};

/** What the user's command line says, before the level's defaults are applied. */
export interface VllmArgs {
  level?: OptimizationLevel;
  passConfig: Partial<Record<VllmFlag, boolean>>;
  numbers: Partial<Record<VllmNumericField, number>>;
  customOps?: string[];
  tp?: number;
  /** `--max-num-batched-tokens`: the end of the last compile range (vLLM's scheduler default 8192). */
  maxNumBatchedTokens?: number;
  /** `compile_ranges_endpoints` (earlier `compile_ranges_split_points`): the user's own range ends. */
  rangeEndpoints?: number[];
  /** `--compile-range 1-8192`: the range whose graph to rewrite (fusionlab's; vLLM compiles them all). */
  compileRange?: CompileRange;
}

/** vLLM's Range (vllm/config/utils.py): token counts start…end, both included. */
export interface CompileRange {
  start: number;
  end: number;
}

export class VllmConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VllmConfigError';
  }
}

function parseBool(v: string, where: string): boolean {
  const t = v.trim().toLowerCase();
  if (t === 'true' || t === '1') return true;
  if (t === 'false' || t === '0') return false;
  throw new VllmConfigError(`${where} takes true or false, got '${v}'`);
}

const isFlag = (k: string): k is VllmFlag => (VLLM_FLAGS as readonly string[]).includes(k);
const isNumeric = (k: string): k is VllmNumericField =>
  (VLLM_NUMERIC_FIELDS as readonly string[]).includes(k);

function setPassConfigField(a: VllmArgs, key: string, value: unknown, where: string): void {
  if (isFlag(key)) {
    a.passConfig[key] = typeof value === 'boolean' ? value : parseBool(String(value), where);
  } else if (isNumeric(key)) {
    const n = typeof value === 'number' ? value : Number(value);
    if (!Number.isFinite(n) || n < 0)
      throw new VllmConfigError(`${where} takes a number ≥ 0, got '${String(value)}'`);
    a.numbers[key] = n;
  } else {
    throw new VllmConfigError(
      `${where}: PassConfig has no field '${key}' that fusionlab knows (known: ${[...VLLM_FLAGS, ...VLLM_NUMERIC_FIELDS].join(', ')})`,
    );
  }
}

function parseCustomOps(v: unknown, where: string): string[] {
  const list =
    typeof v === 'string' ? (v.trim().startsWith('[') ? (JSON.parse(v) as unknown) : v.split(',')) : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string'))
    throw new VllmConfigError(
      `${where} takes a list of op names like ["+rms_norm", "-quant_fp8"] or "none"/"all"`,
    );
  return list.map((x) => x.trim()).filter((x) => x.length > 0);
}

/** `{"pass_config": {…}, "custom_ops": […], "mode": …}`: the compilation config as JSON. */
function applyCompilationJson(a: VllmArgs, text: string, where: string): void {
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch (e) {
    throw new VllmConfigError(`${where} is not JSON: ${(e as Error).message}`);
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg))
    throw new VllmConfigError(`${where} must be a JSON object like {"pass_config": {"enable_sp": true}}`);
  for (const [k, v] of Object.entries(cfg)) {
    if (k === 'pass_config') {
      if (typeof v !== 'object' || v === null)
        throw new VllmConfigError(`${where}: pass_config must be an object`);
      for (const [pk, pv] of Object.entries(v)) setPassConfigField(a, pk, pv, `${where} pass_config.${pk}`);
    } else if (k === 'custom_ops') a.customOps = parseCustomOps(v, `${where} custom_ops`);
    else if (RANGE_ENDPOINT_KEYS.includes(k)) a.rangeEndpoints = parseEndpoints(v, `${where} ${k}`);
    // Other fields (mode, cudagraph_mode, splitting_ops, …) do not change which passes run on a graph.
  }
}

/** The field's name in vLLM main, and before its rename (vllm/config/compilation.py). */
const RANGE_ENDPOINT_KEYS = ['compile_ranges_endpoints', 'compile_ranges_split_points'];

function parseEndpoints(v: unknown, where: string): number[] {
  let list: unknown = v;
  if (typeof v === 'string') {
    try {
      list = JSON.parse(v.trim().startsWith('[') ? v : `[${v}]`);
    } catch {
      list = null;
    }
  }
  if (!Array.isArray(list) || !list.every((x) => Number.isInteger(x) && (x as number) > 0))
    throw new VllmConfigError(`${where} takes a list of positive token counts like [256, 2048]`);
  return list as number[];
}

/** `1-8192`, `1,8192` or vLLM's own `(1, 8192)`. */
export function parseCompileRange(v: string | undefined, where: string): CompileRange {
  const m = /^\(?\s*(\d+)\s*(?:-|,)\s*(\d+)\s*\)?$/.exec(v?.trim() ?? '');
  const start = Number(m?.[1]),
    end = Number(m?.[2]);
  if (!m || start < 1 || end < start)
    throw new VllmConfigError(
      `${where} takes a token range like 1-8192 (start ≥ 1, end ≥ start), got '${v ?? ''}'`,
    );
  return { start, end };
}

function positiveInt(v: string | undefined, where: string): number {
  if (v === undefined || !/^\d+$/.test(v) || Number(v) < 1)
    throw new VllmConfigError(`${where} takes a positive integer, got '${v ?? ''}'`);
  return Number(v);
}

function parseLevel(v: string | undefined, where: string): OptimizationLevel {
  if (v === undefined || !/^[0-3]$/.test(v))
    throw new VllmConfigError(`${where} takes 0, 1, 2 or 3, got '${v ?? ''}'`);
  return Number(v) as OptimizationLevel;
}

/**
 * Takes vLLM's own arguments out of a command line: `-O2`, `-O 2`, `--optimization-level 2`,
 * `-cc.pass_config.X=Y`, `-cc.custom_ops=…`, `--compilation-config '{…}'` / `-cc '{…}'`,
 * `-tp N` / `--tensor-parallel-size N`; `rest` keeps everything else in order.
 */
export function splitVllmArgs(argv: readonly string[]): { vllm: VllmArgs | null; rest: string[] } {
  const a: VllmArgs = { passConfig: {}, numbers: {} };
  let any = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const [name, inline] = eq >= 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const value = () => inline ?? argv[++i];
    if (/^-O[0-3]$/.test(arg)) {
      a.level = Number(arg[2]) as OptimizationLevel;
    } else if (name === '-O' || name === '--optimization-level' || name === '-O.level') {
      a.level = parseLevel(value(), name);
    } else if (name === '--compilation-config' || name === '-cc') {
      const v = value();
      if (v === undefined) throw new VllmConfigError(`${name} takes a JSON object`);
      applyCompilationJson(a, v, name);
    } else if (name.startsWith('-cc.pass_config.') || name.startsWith('--compilation-config.pass_config.')) {
      const key = name.slice(name.indexOf('pass_config.') + 'pass_config.'.length);
      const v = value();
      if (v === undefined) throw new VllmConfigError(`${name} takes a value`);
      setPassConfigField(a, key, v, name);
    } else if (name === '-cc.custom_ops' || name === '--compilation-config.custom_ops') {
      const v = value();
      if (v === undefined) throw new VllmConfigError(`${name} takes a list`);
      a.customOps = parseCustomOps(v, name);
    } else if (RANGE_ENDPOINT_KEYS.some((k) => name === `-cc.${k}` || name === `--compilation-config.${k}`)) {
      a.rangeEndpoints = parseEndpoints(value(), name);
    } else if (name === '--max-num-batched-tokens') {
      a.maxNumBatchedTokens = positiveInt(value(), name);
    } else if (name === '--compile-range') {
      a.compileRange = parseCompileRange(value(), name);
    } else if (name.startsWith('-cc.')) {
      // -cc.mode=…, -cc.cudagraph_mode=…: accepted; they do not change the post-grad passes.
      if (inline === undefined) i++;
    } else if (name === '-tp' || name === '--tensor-parallel-size') {
      a.tp = positiveInt(value(), name);
    } else {
      rest.push(arg);
      continue;
    }
    any = true;
  }
  return { vllm: any ? a : null, rest };
}

/**
 * A pasted command line as the shell would split it: whitespace between words, '…' taken as is,
 * "…" with \\ escapes, a backslash before a newline joining lines (`vllm serve … \`).
 */
export function splitCommandLine(text: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && text[i + 1] === '\n') {
      i++;
    } else if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else if (ch === "'" || ch === '"') {
      const close = quoteEnd(text, i);
      if (close < 0)
        throw new VllmConfigError(`unclosed ${ch} opened at column ${i + 1}: close it after the value`);
      const inner = text.slice(i + 1, close);
      word = (word ?? '') + (ch === '"' ? inner.replace(/\\(["\\$`])/g, '$1') : inner);
      i = close;
    } else {
      word = (word ?? '') + (ch === '\\' && i + 1 < text.length ? text[++i]! : ch);
    }
  }
  if (word !== null) words.push(word);
  return words;
}

function quoteEnd(text: string, open: number): number {
  const q = text[open];
  for (let i = open + 1; i < text.length; i++) {
    if (q === '"' && text[i] === '\\') i++;
    else if (text[i] === q) return i;
  }
  return -1;
}

/** One flag as resolved: on or off, and where that came from. */
export interface ResolvedFlag {
  flag: VllmFlag;
  on: boolean;
  source: 'explicit' | `-O${OptimizationLevel}`;
  why: string;
  vllmPass: string;
  /** fusionlab's pass, or null where it has none yet. */
  pass: PassName | null;
}

export interface ResolvedVllmConfig {
  level: OptimizationLevel;
  context: VllmContext;
  flags: ResolvedFlag[];
  /** The passes vLLM would run, in its order, that fusionlab runs. */
  passes: PassName[];
  /** Flags that are on whose pass fusionlab does not run: their sites are not counted. */
  notRun: ResolvedFlag[];
  /** Pass options the config implies (world size = TP, FlashInfer's GPU family). */
  options: PassOptions;
  numbers: VllmArgs['numbers'];
  /** The end of the last compile range: max_num_batched_tokens. */
  maxNumBatchedTokens: number;
  rangeEndpoints: number[];
  /** The range asked for (`--compile-range`), if any. */
  compileRange?: CompileRange;
}

/** vLLM's defaults for `level` on `context`, overridden by the explicit flags. vLLM's default level is 2. */
export function resolveVllmConfig(args: VllmArgs, context: Partial<VllmContext> = {}): ResolvedVllmConfig {
  const level = args.level ?? 2;
  const c: VllmContext = {
    platform: context.platform ?? 'sm90',
    aiter: context.aiter ?? false,
    tp: args.tp ?? context.tp ?? 1,
    customOps: args.customOps ?? context.customOps ?? ['none'],
    flashinfer: context.flashinfer ?? true,
    ...(context.hiddenSize !== undefined ? { hiddenSize: context.hiddenSize } : {}),
  };
  const defaults = OPTIMIZATION_LEVELS[level];
  const flags: ResolvedFlag[] = VLLM_FLAGS.map((flag) => {
    const { vllmPass, pass } = FLAG_PASSES[flag];
    const explicit = args.passConfig[flag];
    if (explicit !== undefined)
      return { flag, on: explicit, source: 'explicit', why: `set on the command line`, vllmPass, pass };
    const d = defaults[flag];
    const r = typeof d === 'boolean' ? { on: d, why: d ? `on at -O${level}` : `off at -O${level}` } : d(c);
    return { flag, on: r.on, source: `-O${level}`, why: r.why, vllmPass, pass };
  });
  const byFlag = new Map(flags.map((f) => [f.flag, f]));
  // AsyncTP is added only under enable_sp (pass_manager.py); the ROCm padding pass only with AITER.
  for (const f of flags) {
    const needs = FLAG_PASSES[f.flag].needs;
    if (f.on && needs && !byFlag.get(needs)!.on) {
      f.on = false;
      f.why = `${needs} is off: vLLM adds ${f.vllmPass} only after ${FLAG_PASSES[needs].vllmPass}`;
    }
  }
  const on = flags.filter((f) => f.on);
  return {
    level,
    context: c,
    flags,
    // After its fusion passes vLLM always lowers what is left of its IR ops (pass_manager.py:
    // post_cleanup, then VllmIRLoweringPass); -O0 compiles nothing.
    passes: [
      ...on.flatMap((f) => (f.pass ? [f.pass] : [])),
      ...(level > 0 ? (['vllm-ir-lowering'] as const) : []),
    ],
    notRun: on.filter((f) => f.pass === null),
    options: {
      worldSize: c.tp,
      gpu: c.platform === 'sm100' ? 'blackwell' : 'hopper',
      platform: c.platform,
      aiter: c.aiter,
    },
    numbers: args.numbers,
    maxNumBatchedTokens: args.maxNumBatchedTokens ?? DEFAULT_MAX_TOKENS,
    rangeEndpoints: args.rangeEndpoints ?? [],
    ...(args.compileRange ? { compileRange: args.compileRange } : {}),
  };
}

// ---- compile ranges ---------------------------------------------------------------------------
// vLLM compiles one graph per token range and runs each pass only in the ranges it applies to:
//   vllm/config/vllm.py VllmConfig._set_compile_ranges: the range ends are max_num_batched_tokens,
//     the all-reduce fusion's max_token_num (when below it), sp_min_token_num − 1 (so SP starts a
//     range), rope_kvcache_fusion_max_token_num, and the user's compile_ranges_endpoints in (1, max);
//   vllm/config/compilation.py CompilationConfig.get_compile_ranges: Range(s + 1, e) between ends;
//   vllm/compilation/passes/pass_manager.py PostGradPassManager.__call__: a pass runs on a range's
//     graph only if pass_.is_applicable_for_range(compile_range);
//   fusion/allreduce_rms_fusion.py AllReduceFusionPass.is_applicable_for_range: range.end ≤
//     max_token_num = min(max_size // (hidden · itemsize), max_num_batched_tokens);
//   fusion/sequence_parallelism.py SequenceParallelismPass.is_applicable_for_range: range.start ≥
//     min_token_num (None: never); AsyncTPPass rewrites what SP produced, so it follows SP;
//   fusion/rope_kvcache_fusion.py RopeKVCacheFusionPass.is_applicable_for_range: range.end ≤
//     rope_kvcache_fusion_max_token_num (PassConfig default 256).

/** What a graph tells of the model: vLLM's thresholds divide bytes by hidden size × element size. */
export interface ModelShape {
  hidden: number;
  elementSize: number;
}

/** The hidden size of the first all-reduce whose input is typed (what the thresholds need). */
export function modelShapeOf(g: Graph): ModelShape | undefined {
  const types = new Map<string, TensorType>();
  for (const v of [...g.inputs, ...g.nodes]) if (v.type?.kind === 'tensor') types.set(v.name, v.type);
  for (const n of g.nodes) {
    if (n.op !== ALL_REDUCE && n.op !== C10D_ALL_REDUCE) continue;
    const a = n.args[0];
    const t = a !== undefined && isRef(a) ? types.get(a.name) : undefined;
    const hidden = t?.shape[t.shape.length - 1];
    if (t && typeof hidden === 'number') return { hidden, elementSize: elementSize(t) };
  }
  return undefined;
}

/** A pass's token bound: it runs on a range's graph only when the range lies within it. */
export interface TokenBound {
  flag: VllmFlag;
  /** The range must start at or above this (SP's min_token_num). */
  min?: number;
  /** The range must end at or below this (max_token_num); 0: the pass never runs. */
  max?: number;
  why: string;
}

export interface CompileRanges {
  ranges: CompileRange[];
  /** Each range's end and what put it there. */
  endpoints: { at: number; why: string }[];
  bounds: TokenBound[];
  /** Bounds that could not be evaluated on this graph (no typed all-reduce: no hidden size). */
  unevaluated: string[];
}

/** vLLM's str(Range): `(1, 8192)`. */
export function formatRange(r: CompileRange): string {
  return `(${r.start}, ${r.end})`;
}

const FLASHINFER_GPU: Partial<Record<VllmPlatform, keyof typeof MAX_SIZE_MB>> = {
  sm90: 'hopper',
  sm100: 'blackwell',
};
const MiB = 1024 * 1024;
/** PassConfig.rope_kvcache_fusion_max_token_num's default. */
export const ROPE_KVCACHE_MAX_TOKENS = 256;

function allReduceBound(cfg: ResolvedVllmConfig, model: ModelShape | undefined): TokenBound | string {
  const { tp, platform } = cfg.context;
  const flag = 'fuse_allreduce_rms';
  if (tp <= 1) return { flag, max: 0, why: 'TP 1: AllReduceFusionPass is disabled (no all-reduce)' };
  const gpu = FLASHINFER_GPU[platform];
  const mb = cfg.numbers.fi_allreduce_fusion_max_size_mb ?? (gpu ? MAX_SIZE_MB[gpu][tp] : undefined);
  if (mb === undefined)
    return {
      flag,
      max: 0,
      why: `FlashInfer has no size limit for TP ${tp} on ${platform} (flashinfer_max_size is None): AllReduceFusionPass is disabled`,
    };
  if (!model)
    return `all-reduce fusion's token bound: no typed all-reduce input in the graph, so the hidden size is unknown; assumed to hold in every range`;
  const bySize = Math.floor((mb * MiB) / (model.hidden * model.elementSize));
  const max = Math.min(bySize, cfg.maxNumBatchedTokens);
  return {
    flag,
    max,
    why: `max_token_num ${max} = min(${mb} MiB / (hidden ${model.hidden} × ${model.elementSize} B), max_num_batched_tokens ${cfg.maxNumBatchedTokens})`,
  };
}

function spBound(cfg: ResolvedVllmConfig, model: ModelShape | undefined): TokenBound | string {
  const given = cfg.numbers.sp_min_token_num;
  if (given !== undefined) return { flag: 'enable_sp', min: given, why: `sp_min_token_num ${given} (given)` };
  if (!model)
    return 'sequence parallelism threshold: the hidden size is unknown, so sp_min_token_num was not derived; assumed to hold in every range';
  const gpu = FLASHINFER_GPU[cfg.context.platform];
  const th = gpu
    ? spThreshold(
        {
          worldSize: cfg.context.tp,
          worldSizeFrom: 'option',
          maxTokens: cfg.maxNumBatchedTokens,
          gpu,
          tokenGate: 'compile-range',
          tpGroup: DEFAULT_TP_GROUP,
        },
        model.hidden,
        model.elementSize,
      )
    : { off: `vLLM derives no sequence-parallelism threshold on ${cfg.context.platform}` };
  if ('off' in th) return { flag: 'enable_sp', max: 0, why: `${th.off} (sp_min_token_num is None)` };
  return {
    flag: 'enable_sp',
    min: th.minTokens,
    why: `sp_min_token_num ${th.minTokens} (get_sequence_parallelism_threshold for hidden ${model.hidden}, TP ${cfg.context.tp})`,
  };
}

/** The ranges vLLM compiles for this config, and each pass's token bound. */
export function compileRanges(cfg: ResolvedVllmConfig, model?: ModelShape): CompileRanges {
  const on = new Set(cfg.flags.filter((f) => f.on).map((f) => f.flag));
  const end = cfg.maxNumBatchedTokens;
  const endpoints = [{ at: end, why: 'max_num_batched_tokens' }];
  const bounds: TokenBound[] = [];
  const unevaluated: string[] = [];
  const add = (b: TokenBound | string) => {
    if (typeof b === 'string') unevaluated.push(b);
    else bounds.push(b);
    return typeof b === 'string' ? undefined : b;
  };
  if (on.has('fuse_allreduce_rms')) {
    const b = add(allReduceBound(cfg, model));
    if (b?.max && b.max < end) endpoints.push({ at: b.max, why: `all-reduce fusion: ${b.why}` });
  }
  if (on.has('enable_sp')) {
    const b = add(spBound(cfg, model));
    if (b?.min !== undefined && b.min > 1 && b.min < end)
      endpoints.push({ at: b.min - 1, why: `sp_min_token_num − 1: SP starts a range at ${b.min}` });
    if (b && on.has('fuse_gemm_comms')) bounds.push({ ...b, flag: 'fuse_gemm_comms' });
  }
  if (on.has('fuse_rope_kvcache')) {
    const max = cfg.numbers.rope_kvcache_fusion_max_token_num ?? ROPE_KVCACHE_MAX_TOKENS;
    bounds.push({ flag: 'fuse_rope_kvcache', max, why: `rope_kvcache_fusion_max_token_num ${max}` });
    if (max < end) endpoints.push({ at: max, why: `rope_kvcache_fusion_max_token_num ${max}` });
  }
  for (const x of cfg.rangeEndpoints)
    if (x > 1 && x < end) endpoints.push({ at: x, why: 'compile_ranges_endpoints (given)' });
  const ends = [...new Set(endpoints.map((e) => e.at))].sort((a, b) => a - b);
  return {
    ranges: ends.map((e, i) => ({ start: (i === 0 ? 0 : ends[i - 1]!) + 1, end: e })),
    endpoints: ends.map((at) => endpoints.find((e) => e.at === at)!),
    bounds,
    unevaluated,
  };
}

/** A flag that is on, whose pass does not run on this range's graph, and the bound that excluded it. */
export interface OutOfRange {
  flag: VllmFlag;
  vllmPass: string;
  pass: PassName | null;
  why: string;
}

/** Why `bound` keeps its pass off `range`'s graph, or null when it runs there. */
export function boundRefusal(bound: TokenBound, range: CompileRange): string | null {
  if (bound.max === 0) return bound.why;
  if (bound.max !== undefined && range.end > bound.max)
    return `not applicable in range ${formatRange(range)}: it ends above ${bound.max} tokens (${bound.why})`;
  if (bound.min !== undefined && range.start < bound.min)
    return `not applicable in range ${formatRange(range)}: it starts below ${bound.min} tokens (${bound.why})`;
  return null;
}

/** The passes vLLM runs on the graph it compiled for `range`, and those its bounds leave out. */
export function passesInRange(
  cfg: ResolvedVllmConfig,
  cr: CompileRanges,
  range: CompileRange,
): { passes: PassName[]; outOfRange: OutOfRange[] } {
  const outOfRange: OutOfRange[] = [];
  for (const b of cr.bounds) {
    const why = boundRefusal(b, range);
    const f = cfg.flags.find((x) => x.flag === b.flag)!;
    if (why) outOfRange.push({ flag: b.flag, vllmPass: f.vllmPass, pass: f.pass, why });
  }
  const dropped = new Set(outOfRange.map((o) => o.pass));
  return { passes: cfg.passes.filter((p) => !dropped.has(p)), outOfRange };
}

/** Where the range to rewrite came from: asked for, named in a dump's log, or vLLM's first (smallest). */
export type RangeSource = 'given' | 'dump' | 'first';

/** The range to rewrite: the one asked for, else the dump's, else the first vLLM compiles. */
export function chooseRange(
  cfg: ResolvedVllmConfig,
  cr: CompileRanges,
  logged?: CompileRange,
): { range: CompileRange; from: RangeSource } {
  if (cfg.compileRange) return { range: cfg.compileRange, from: 'given' };
  if (logged) return { range: logged, from: 'dump' };
  return { range: cr.ranges[0]!, from: 'first' };
}

/** The range a vLLM log names (`Compiling a graph for compile range (1, 8192)`, backends.py), if any. */
export function loggedCompileRange(text: string): CompileRange | undefined {
  const m = /compile range \((\d+), (\d+)\)/.exec(text);
  return m ? { start: Number(m[1]), end: Number(m[2]) } : undefined;
}
