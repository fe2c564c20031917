import type { StateCreator } from 'zustand';
import type { Algorithm } from '../../graph/cost/model.ts';
import { compareGraphs, RunError, type CompareReport, type RunOptions } from '../../runtime/index.ts';
import type { AppState } from './index.ts';

export type RunSettings = Omit<RunOptions, 'onProgress'>;

export interface RunProgress {
  phase: string;
  /** 0..1, or null while the amount of work is not known yet. */
  fraction: number | null;
}

export interface RunSlice {
  runSettings: RunSettings;
  runStatus: 'idle' | 'running' | 'done' | 'error';
  progress: RunProgress | null;
  report: CompareReport | null;
  runError: string | null;
  /** Hardware profile and token count the cost model predicts for. */
  profileId: string;
  tokens: number;
  /** TP degree for the prediction; null follows the world-size gate. */
  costTp: number | null;
  costAlgorithm: Algorithm;
  setRunSettings(patch: Partial<RunSettings>): void;
  setProfile(profileId: string): void;
  setTokens(tokens: number): void;
  setCostTp(tp: number | null): void;
  setCostAlgorithm(algorithm: Algorithm): void;
  run(): Promise<void>;
}

/** The native agent backend exists once its client module is part of the build. */
const AGENT_CLIENT = import.meta.glob('../../runtime/agentClient.ts');
export const AGENT_AVAILABLE = Object.keys(AGENT_CLIENT).length > 0;

const PHASES: Record<string, string> = {
  plan: 'planning', compile: 'compiling kernels', upload: 'uploading inputs and weights', run: 'running', download: 'reading back outputs',
};

export const DEFAULT_RUN_SETTINGS: RunSettings = {
  backend: 'webgpu', ranks: 2, preset: 'tiny', dtype: 'bf16', allreduce: 'one-shot', workers: false,
};

export const createRunSlice: StateCreator<AppState, [], [], RunSlice> = (set, get) => ({
  runSettings: DEFAULT_RUN_SETTINGS,
  runStatus: 'idle',
  progress: null,
  report: null,
  runError: null,
  profileId: 'H100-NVLink',
  tokens: 1024,
  costTp: null,
  costAlgorithm: 'one-shot',
  setRunSettings: (patch) => set((s) => ({ runSettings: { ...s.runSettings, ...patch } })),
  setProfile: (profileId) => set({ profileId }),
  setTokens: (tokens) => set({ tokens }),
  setCostTp: (costTp) => set({ costTp }),
  setCostAlgorithm: (costAlgorithm) => set({ costAlgorithm }),

  run: async () => {
    const { stages, steps, cursor, runSettings, runStatus } = get();
    if (stages.length === 0 || runStatus === 'running') return;
    // Before is the imported graph, after the latest stage (single-site steps included).
    const before = stages[0].graph;
    const after = stages[cursor].graph;
    const passes = [...new Set(steps.slice(0, cursor).map((s) => s.pass))];
    set({ runStatus: 'running', progress: { phase: 'plan', fraction: null }, runError: null, report: null });
    try {
      // The agent client registers the 'agent' backend when it loads.
      if (runSettings.backend === 'agent') await Object.values(AGENT_CLIENT)[0]?.();
      const report = await compareGraphs(before, after, passes, {
        ...runSettings,
        onProgress: (p) => set({ progress: { phase: PHASES[p.phase] ?? p.phase, fraction: p.total ? p.done / p.total : null } }),
      });
      set({ runStatus: 'done', report, progress: null });
    } catch (e) {
      const message = e instanceof RunError ? e.message : `Run failed: ${(e as Error).message ?? String(e)}`;
      set({ runStatus: 'error', runError: message, progress: null });
    }
  },
});
