import type { StateCreator } from 'zustand';
import type { Graph } from '../../graph/ir.ts';
import {
  DEFAULT_PIPELINE,
  PASS_DESCRIPTIONS,
  type Diagnostic,
  type PassName,
  type PassOptions,
} from '../../graph/passes/pipeline.ts';
import type { RewriteStep } from '../urlState.ts';
import { recount, replay, reusableStages, type Stage } from '../pipeline/pipelineJobs.ts';
import { WorkCancelled, offThread, replayOffThread, type ReplayResult } from '../pipeline/pipelineClient.ts';
import type { AppState } from './index.ts';
import type { LoadedGraphState } from './graphSlice.ts';
import type { ViewSlice } from './viewSlice.ts';

export type { Stage } from '../pipeline/pipelineJobs.ts';

export interface PassesSlice {
  gates: PassOptions;
  /** Every step taken; those past `cursor` were undone and can be redone. */
  steps: RewriteStep[];
  cursor: number;
  /** stages[0] is the imported graph; stages[i] the graph after steps[0..i). */
  stages: Stage[];
  /** Stage shown by the scrubber; null follows the latest. */
  scrub: number | null;
  /** The sites (anchor node names) each pass would rewrite in the shown graph. */
  sites: Record<string, string[]>;
  /** Why each near-miss did not fire, in the shown graph. */
  diagnostics: Diagnostic[];
  /** Per pass, what it refused in the shown graph and why (the pass list's why entries). */
  passWhy: Record<string, Diagnostic[]>;
  rewriteError: string | null;
  applyPass(pass: string, site?: string): Promise<void>;
  applyPipeline(): Promise<void>;
  undo(): Promise<void>;
  redo(): Promise<void>;
  setScrub(stage: number | null): Promise<void>;
  setGates(gates: Partial<PassOptions>, opts?: { replay?: boolean }): Promise<void>;
  /**
   * Replays `steps` from the base; with `from`, from a new base, which is installed (with its
   * patch) only together with its stages, so the views never show one graph's stages on another.
   * Resolves false when the work was cancelled or superseded.
   */
  resetSteps(steps: RewriteStep[], from?: NewBase): Promise<boolean>;
}

export const PASS_ORDER: string[] = [...DEFAULT_PIPELINE];
/** Every pass, in the order the pass list shows them (the pipeline button runs PASS_ORDER). */
export const PASS_LIST = Object.keys(PASS_DESCRIPTIONS) as PassName[];

export const DEFAULT_GATES: PassOptions = { maxTokens: 8192, gpu: 'hopper' };

/** Graphs with more nodes than this are rewritten in the pipeline worker; smaller ones take milliseconds here. */
export const OFF_THREAD_ABOVE_NODES = 500;

/** A fresh base to replay steps on, with the gates it runs under and what else changes with it. */
export interface NewBase {
  base: Graph;
  gates: PassOptions;
  /**
   * What the graph and view slices hold of the new graph, each part made by its own slice
   * (`loadedGraph`, `viewOfNewGraph`): installed in the same update as the stages, so no view
   * ever shows one graph's stages on another.
   */
  patch: LoadedGraphState & Pick<ViewSlice, 'collapsed' | 'viewCentre'>;
  /** Runs right after the patch and stages are installed (at once when the replay ran here). */
  installed(): void;
}

/**
 * The rewritten sites between two stages, one node per match, as named in the stage moved to:
 * going forward the main node the match produced (the fused op, the hoisted slice), going back
 * its anchor (the all-reduce) or what it consumed. Only names the stage moved to has, so the
 * views can centre on one of them; the latest step's sites first.
 */
export function changedNames(stages: readonly Stage[], from: number, to: number): string[] {
  if (from === to || !stages[to]) return [];
  const forward = to > from;
  const steps = forward ? stages.slice(from + 1, to + 1) : stages.slice(to + 1, from + 1);
  const present = new Set(stages[to].graph.nodes.map((n) => n.name));
  const names: string[] = [];
  for (const st of [...steps].reverse()) {
    for (const m of st.matches) {
      const head = (forward ? [...m.produced, m.site] : [m.site, ...m.consumed]).find((n) => present.has(n));
      if (head) names.push(head);
    }
  }
  return [...new Set(names)];
}

export const createPassesSlice: StateCreator<AppState, [], [], PassesSlice> = (set, get) => {
  /** The gates the stages held were made under (a gate change makes them stale). */
  let stagesGates: PassOptions | null = null;
  /** Counts replays, so one superseded while in the worker does not install its result. */
  let ticket = 0;

  /**
   * Recomputes stages from the base for the steps in effect, then the counts of the shown stage:
   * in the pipeline worker for a big graph (with progress, cancellable), else here. `installed`
   * runs once the result is in the store.
   */
  const refresh = async (
    steps: RewriteStep[],
    cursor: number,
    scrub: number | null,
    from?: NewBase,
    installed?: () => void,
  ): Promise<boolean> => {
    const s = get();
    const base = from?.base ?? s.base;
    const gates = from?.gates ?? s.gates;
    if (!base) return false;
    const mine = ++ticket;
    const wanted = steps.slice(0, cursor);
    const known: Stage[] =
      !from && stagesGates && s.stages[0]?.graph === base
        ? s.stages.slice(0, reusableStages(s.stages, stagesGates, wanted, gates))
        : [{ graph: base, step: null, matches: [] }];
    let r: ReplayResult;
    if (offThread() && base.nodes.length > OFF_THREAD_ABOVE_NODES) {
      s.setWork({ label: from ? 'importing' : 'rewriting', fraction: null });
      try {
        r = await replayOffThread(known, wanted, gates, scrub, (label, fraction) => {
          if (mine === ticket) get().setWork({ label, fraction });
        });
      } catch (e) {
        if (mine !== ticket) return false;
        get().setWork(null);
        const what = from ? 'Loading' : 'Rewriting';
        get().setNotice(
          e instanceof WorkCancelled
            ? `${what} cancelled: the graph shown is unchanged.`
            : `${what} failed: ${(e as Error).message}`,
          !(e instanceof WorkCancelled),
        );
        return false;
      }
      if (mine !== ticket) return false;
      get().setWork(null);
    } else {
      const { stages, error } = replay(known, wanted, gates);
      const shown = scrub === null ? stages.length - 1 : Math.min(scrub, stages.length - 1);
      r = { stages, error, counts: recount(stages[shown].graph, gates) };
    }
    const { stages, error, counts } = r;
    const effective = stages.length - 1;
    const shownIndex = scrub === null ? effective : Math.min(scrub, effective);
    stagesGates = gates;
    set({
      ...(from ? { ...from.patch, gates: from.gates } : {}),
      steps: error ? steps.slice(0, effective) : steps,
      cursor: effective,
      stages,
      scrub: scrub === null || shownIndex === effective ? null : shownIndex,
      rewriteError: error,
      ...counts,
    });
    // Synchronously after the set when the replay ran here: callers read the result at once.
    from?.installed();
    installed?.();
    return true;
  };

  /**
   * Points the views at what changed between stage `from` and the stage now shown. `history`
   * holds both stages: the new stages going forward, the old ones after an undo.
   */
  const follow = (from: number, history: readonly Stage[]) => {
    const s = get();
    s.setFocus(changedNames(history, from, s.scrub ?? s.stages.length - 1));
  };

  return {
    gates: DEFAULT_GATES,
    steps: [],
    cursor: 0,
    stages: [],
    scrub: null,
    sites: {},
    diagnostics: [],
    passWhy: {},
    rewriteError: null,

    applyPass: async (pass, site) => {
      const { steps, cursor, scrub } = get();
      // Applying while scrubbed back branches from the shown stage, like an editor's undo history.
      const from = scrub ?? cursor;
      const next = [...steps.slice(0, from), site === undefined ? { pass } : { pass, site }];
      await refresh(next, next.length, null, undefined, () => follow(from, get().stages));
    },
    applyPipeline: async () => {
      const { steps, cursor, scrub } = get();
      const from = scrub ?? cursor;
      // vLLM's passes for the chosen compile range when its config is set, else PASS_ORDER.
      const next = [
        ...steps.slice(0, from),
        ...get()
          .pipelinePasses()
          .map((pass) => ({ pass })),
      ];
      await refresh(next, next.length, null, undefined, () => follow(from, get().stages));
    },
    undo: async () => {
      const { steps, cursor, scrub, stages } = get();
      if (cursor === 0) return;
      await refresh(steps, cursor - 1, null, undefined, () => follow(scrub ?? cursor, stages));
    },
    redo: async () => {
      const { steps, cursor, scrub } = get();
      if (cursor >= steps.length) return;
      const from = scrub ?? cursor;
      await refresh(steps, cursor + 1, null, undefined, () => follow(from, get().stages));
    },
    setScrub: async (stage) => {
      const { stages, scrub, steps, cursor } = get();
      if (stages.length === 0) return;
      const last = stages.length - 1;
      const from = scrub ?? last;
      const i = stage === null ? last : Math.max(0, Math.min(stage, last));
      // Every stage is held: only the shown stage's counts are recomputed.
      await refresh(steps, cursor, i === last ? null : i, undefined, () => follow(from, stages));
    },
    setGates: async (gates, opts) => {
      set((s) => ({ gates: { ...s.gates, ...gates } }));
      if (opts?.replay !== false) {
        const { steps, cursor, scrub } = get();
        await refresh(steps, cursor, scrub);
      }
    },
    resetSteps: (steps, from) => refresh(steps, steps.length, null, from),
  };
};

/** The graph the views show: the scrubbed stage, or the latest. */
export function shownStage(s: Pick<AppState, 'stages' | 'scrub'>): Stage | undefined {
  return s.stages[s.scrub ?? s.stages.length - 1];
}
