// vLLM's PassConfig as the app holds it: the optimization level, the platform, TP, the flags set on
// top of the level, the custom-op list, the token numbers and the compile range. When it is set it
// is the one source of the pipeline: "Run pipeline" runs the passes vLLM would run on the chosen
// range's graph (vllmConfig.ts resolves them); when it is null the pass picker's own order runs.

import type { StateCreator } from 'zustand';
import type { Graph } from '../../graph/ir.ts';
import { resolveOptions } from '../../graph/passes/options.ts';
import { DEFAULT_PIPELINE, type PassName } from '../../graph/passes/pipeline.ts';
import {
  VllmConfigError,
  chooseRange,
  compileRanges,
  modelShapeOf,
  passesInRange,
  resolveVllmConfig,
  splitCommandLine,
  splitVllmArgs,
  type CompileRange,
  type CompileRanges,
  type OptimizationLevel,
  type OutOfRange,
  type RangeSource,
  type ResolvedVllmConfig,
  type VllmArgs,
  type VllmFlag,
  type VllmNumericField,
  type VllmPlatform,
} from '../../graph/passes/vllmConfig.ts';
import type { AppState } from './index.ts';

/** What the panel holds: vLLM's own arguments, before the level's defaults are applied. */
export interface PassConfigChoice {
  level: OptimizationLevel;
  platform: VllmPlatform;
  tp: number;
  /** Flags set explicitly, on top of the level (an override each). */
  flags: Partial<Record<VllmFlag, boolean>>;
  /** compilation_config.custom_ops as vLLM spells it: 'none', 'all', '+rms_norm', '-quant_fp8', … */
  customOps: string[];
  numbers: Partial<Record<VllmNumericField, number>>;
  maxNumBatchedTokens?: number;
  rangeEndpoints: number[];
  /** The compile range chosen; null: the dump's, else the first vLLM compiles. */
  range: CompileRange | null;
}

export const DEFAULT_PASS_CONFIG: PassConfigChoice = {
  level: 2,
  platform: 'sm90',
  tp: 1,
  flags: {},
  customOps: ['none'],
  numbers: {},
  rangeEndpoints: [],
  range: null,
};

export interface PassConfigSlice {
  /** null: vLLM's config is off and the pass picker's pipeline runs. */
  passConfig: PassConfigChoice | null;
  /** The command line last pasted, and what was wrong with it. */
  commandLine: string;
  commandLineError: string | null;
  /** Sets (or with null, turns off) the config; the gates follow its TP, GPU and token count. */
  setPassConfig(patch: Partial<PassConfigChoice> | null): Promise<void>;
  /** A vLLM command line, parsed as `fusionlab rewrite` parses it; an error leaves the config as it was. */
  pasteCommandLine(text: string): Promise<void>;
  /** The passes "Run pipeline" applies: vLLM's for the chosen range, or the picker's order. */
  pipelinePasses(): PassName[];
}

/** The choice as vLLM's arguments (what splitVllmArgs makes of the same command line). */
export function choiceArgs(c: PassConfigChoice): VllmArgs {
  return {
    level: c.level,
    passConfig: c.flags,
    numbers: c.numbers,
    customOps: c.customOps,
    tp: c.tp,
    rangeEndpoints: c.rangeEndpoints,
    ...(c.maxNumBatchedTokens !== undefined ? { maxNumBatchedTokens: c.maxNumBatchedTokens } : {}),
    ...(c.range ? { compileRange: c.range } : {}),
  };
}

/** A parsed command line as a choice: what it does not say is vLLM's default (platform and TP kept). */
export function choiceFromArgs(
  a: VllmArgs,
  keep: Pick<PassConfigChoice, 'platform' | 'tp'>,
): PassConfigChoice {
  return {
    level: a.level ?? 2,
    platform: keep.platform,
    tp: a.tp ?? keep.tp,
    flags: a.passConfig,
    customOps: a.customOps ?? ['none'],
    numbers: a.numbers,
    rangeEndpoints: a.rangeEndpoints ?? [],
    range: a.compileRange ?? null,
    ...(a.maxNumBatchedTokens !== undefined ? { maxNumBatchedTokens: a.maxNumBatchedTokens } : {}),
  };
}

/** Everything the panels show of a choice on a graph: flags, ranges, the range and its passes. */
export interface ResolvedPassConfig {
  config: ResolvedVllmConfig;
  ranges: CompileRanges;
  range: CompileRange;
  rangeFrom: RangeSource;
  passes: PassName[];
  outOfRange: OutOfRange[];
}

export function resolvePassConfig(
  c: PassConfigChoice,
  graph: Graph | undefined,
  dumpRange?: CompileRange,
): ResolvedPassConfig {
  const model = graph ? modelShapeOf(graph) : undefined;
  const config = resolveVllmConfig(choiceArgs(c), {
    platform: c.platform,
    ...(model ? { hiddenSize: model.hidden } : {}),
  });
  const ranges = compileRanges(config, model);
  const { range, from } = chooseRange(config, ranges, dumpRange);
  return { config, ranges, range, rangeFrom: from, ...passesInRange(config, ranges, range) };
}

export const createPassConfigSlice: StateCreator<AppState, [], [], PassConfigSlice> = (set, get) => {
  /** The gates the passes run under follow the config: TP is the world size, the platform the GPU. */
  const followGates = async (c: PassConfigChoice | null) => {
    if (!c) return;
    const { options, maxNumBatchedTokens } = resolveVllmConfig(choiceArgs(c), { platform: c.platform });
    await get().setGates({ worldSize: options.worldSize, gpu: options.gpu, maxTokens: maxNumBatchedTokens });
  };
  return {
    passConfig: null,
    commandLine: '',
    commandLineError: null,
    setPassConfig: async (patch) => {
      const s = get();
      // Turned on, it starts at vLLM's defaults with the TP the gates have (the graph's own).
      const start = s.passConfig ?? {
        ...DEFAULT_PASS_CONFIG,
        tp: s.base ? resolveOptions(s.base, s.gates).worldSize : DEFAULT_PASS_CONFIG.tp,
      };
      const next = patch === null ? null : { ...start, ...patch };
      set({ passConfig: next });
      await followGates(next);
    },
    pasteCommandLine: async (text) => {
      let parsed: VllmArgs | null;
      try {
        parsed = splitVllmArgs(splitCommandLine(text)).vllm;
      } catch (e) {
        if (!(e instanceof VllmConfigError)) throw e;
        set({ commandLine: text, commandLineError: e.message });
        return;
      }
      if (!parsed) {
        set({
          commandLine: text,
          commandLineError:
            'no vLLM compilation flag in this line (-O2, -cc.pass_config.…, --compilation-config, -tp)',
        });
        return;
      }
      const next = choiceFromArgs(parsed, get().passConfig ?? DEFAULT_PASS_CONFIG);
      set({ commandLine: text, commandLineError: null, passConfig: next });
      await followGates(next);
    },
    pipelinePasses: () => {
      const s = get();
      if (!s.passConfig) return [...DEFAULT_PIPELINE];
      return resolvePassConfig(s.passConfig, s.stages[0]?.graph, s.dump?.compileRange).passes;
    },
  };
};
