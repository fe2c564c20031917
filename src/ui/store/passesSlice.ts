import type { StateCreator } from 'zustand';
import type { Graph } from '../../graph/ir.ts';
import { DEFAULT_PIPELINE, PASSES, PASS_DESCRIPTIONS, diagnose, type Diagnostic, type Match, type Pass, type PassName, type PassOptions } from '../../graph/passes/pipeline.ts';
import type { RewriteStep } from '../urlState.ts';
import type { AppState } from './index.ts';

/** The graph after some number of rewrite steps, with what the last step did. */
export interface Stage {
  graph: Graph;
  step: RewriteStep | null;
  matches: Match[];
}

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
  applyPass(pass: string, site?: string): void;
  applyPipeline(): void;
  undo(): void;
  redo(): void;
  setScrub(stage: number | null): void;
  setGates(gates: Partial<PassOptions>, opts?: { replay?: boolean }): void;
  resetSteps(steps: RewriteStep[]): void;
}

export const PASS_ORDER: string[] = [...DEFAULT_PIPELINE];
/** Every pass, in the order the pass list shows them (the pipeline button runs PASS_ORDER). */
export const PASS_LIST = Object.keys(PASS_DESCRIPTIONS) as PassName[];

export const DEFAULT_GATES: PassOptions = { maxTokens: 8192, gpu: 'hopper' };

/** Runs one step; a site restricts the pass to the match anchored there. */
function applyStep(g: Graph, step: RewriteStep, gates: PassOptions) {
  const pass = (PASSES as Record<string, Pass | undefined>)[step.pass];
  if (!pass) throw new Error(`Unknown pass "${step.pass}" (known: ${Object.keys(PASSES).join(', ')})`);
  const site = step.site;
  return site === undefined ? pass(g, gates) : pass(g, gates, (s) => s === site);
}

interface Replayed { stages: Stage[]; error: string | null }

function replay(base: Graph, steps: RewriteStep[], gates: PassOptions): Replayed {
  const stages: Stage[] = [{ graph: base, step: null, matches: [] }];
  for (const [i, step] of steps.entries()) {
    try {
      const r = applyStep(stages[stages.length - 1].graph, step, gates);
      stages.push({ graph: r.graph, step, matches: r.matches });
    } catch (e) {
      return { stages, error: `Step ${i + 1} (${step.pass}${step.site ? ` at ${step.site}` : ''}) failed: ${(e as Error).message}` };
    }
  }
  return { stages, error: null };
}

function recount(g: Graph, gates: PassOptions): { sites: Record<string, string[]>; diagnostics: Diagnostic[]; passWhy: Record<string, Diagnostic[]> } {
  const sites: Record<string, string[]> = {};
  const passWhy: Record<string, Diagnostic[]> = {};
  for (const name of Object.keys(PASSES)) {
    const r = applyStep(g, { pass: name }, gates);
    sites[name] = r.matches.map((m) => m.site);
    passWhy[name] = r.diagnostics;
  }
  return { sites, diagnostics: diagnose(g, gates), passWhy };
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
  /** Recomputes stages from `base` for the steps in effect, then the counts of the shown stage. */
  const refresh = (steps: RewriteStep[], cursor: number, scrub: number | null) => {
    const { base, gates } = get();
    if (!base) return;
    const { stages, error } = replay(base, steps.slice(0, cursor), gates);
    const effective = stages.length - 1;
    const shownIndex = scrub === null ? effective : Math.min(scrub, effective);
    set({
      steps: error ? steps.slice(0, effective) : steps,
      cursor: effective,
      stages,
      scrub: scrub === null || shownIndex === effective ? null : shownIndex,
      rewriteError: error,
      ...recount(stages[shownIndex].graph, gates),
    });
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

    applyPass: (pass, site) => {
      const { steps, cursor, scrub } = get();
      // Applying while scrubbed back branches from the shown stage, like an editor's undo history.
      const from = scrub ?? cursor;
      const next = [...steps.slice(0, from), site === undefined ? { pass } : { pass, site }];
      refresh(next, next.length, null);
      follow(from, get().stages);
    },
    applyPipeline: () => {
      const { steps, cursor, scrub } = get();
      const from = scrub ?? cursor;
      const next = [...steps.slice(0, from), ...PASS_ORDER.map((pass) => ({ pass }))];
      refresh(next, next.length, null);
      follow(from, get().stages);
    },
    undo: () => {
      const { steps, cursor, scrub, stages } = get();
      if (cursor === 0) return;
      refresh(steps, cursor - 1, null);
      follow(scrub ?? cursor, stages);
    },
    redo: () => {
      const { steps, cursor, scrub } = get();
      if (cursor >= steps.length) return;
      const from = scrub ?? cursor;
      refresh(steps, cursor + 1, null);
      follow(from, get().stages);
    },
    setScrub: (stage) => {
      const { stages, gates, scrub } = get();
      if (stages.length === 0) return;
      const last = stages.length - 1;
      const from = scrub ?? last;
      const i = stage === null ? last : Math.max(0, Math.min(stage, last));
      set({ scrub: i === last ? null : i, ...recount(stages[i].graph, gates) });
      follow(from, stages);
    },
    setGates: (gates, opts) => {
      set((s) => ({ gates: { ...s.gates, ...gates } }));
      if (opts?.replay !== false) {
        const { steps, cursor, scrub } = get();
        refresh(steps, cursor, scrub);
      }
    },
    resetSteps: (steps) => refresh(steps, steps.length, null),
  };
};

/** The graph the views show: the scrubbed stage, or the latest. */
export function shownStage(s: Pick<AppState, 'stages' | 'scrub'>): Stage | undefined {
  return s.stages[s.scrub ?? s.stages.length - 1];
}
