import type { StateCreator } from 'zustand';
import type { Algorithm } from '../../graph/cost/model.ts';
import {
  compareGraphs,
  registerBackend,
  RunError,
  type CompareReport,
  type RunOptions,
} from '../../runtime/index.ts';
import {
  AgentClient,
  agentAddressFromLocation,
  agentBackend,
  type AgentAddress,
} from '../../runtime/agentClient.ts';
import type { Graph } from '../../graph/ir.ts';
import { timeGraphs, type Timing } from '../../runtime/timing.ts';
import type { RunRequest } from '../run/runProtocol.ts';
import { RunWorkerSlot } from '../run/runWorker.ts';
import type { AppState } from './index.ts';

export type RunSettings = Omit<RunOptions, 'onProgress'>;

export interface RunProgress {
  phase: string;
  /** 0..1 of this phase, or null while the amount of work is not known yet. */
  fraction: number | null;
  /**
   * 0..1 of the whole run: the comparison's graph runs (before, after, the exact check's) and the
   * timed runs after them, each an equal share (runPhaseShare); what an ETA is taken from.
   */
  overall: number;
}

/** The comparison's graph runs before the timed ones: before, after, the exact check's rerun. */
const COMPARE_RUNS = 3;

/**
 * The whole run's fraction: `graph` runs of the comparison done plus `within` of the current one,
 * or, once timing, the comparison and `timed` of the 2·runs timed runs.
 */
export function runPhaseShare(
  runs: number,
  at: { graph: number; within: number } | { timed: number },
): number {
  const total = COMPARE_RUNS + 2 * runs;
  const done = 'timed' in at ? COMPARE_RUNS + at.timed : Math.min(at.graph + at.within, COMPARE_RUNS);
  return Math.max(0, Math.min(1, done / total));
}

/** What a run compared: the imported graph, the rewrite steps in effect and the gates they ran under. */
export interface RunSubject {
  base: Graph;
  steps: string;
  gates: string;
}

export function runSubjectOf(s: Pick<AppState, 'base' | 'steps' | 'cursor' | 'gates'>): RunSubject | null {
  return s.base
    ? { base: s.base, steps: JSON.stringify(s.steps.slice(0, s.cursor)), gates: JSON.stringify(s.gates) }
    : null;
}

/**
 * Whether the report still describes what the app shows: a different graph clears it (see the
 * graph slice); other steps or gates leave it, marked stale, until the next run.
 */
export function reportIsStale(
  s: Pick<AppState, 'base' | 'steps' | 'cursor' | 'gates' | 'reportFor'>,
): boolean {
  const now = runSubjectOf(s);
  const was = s.reportFor;
  return !!was && (!now || now.base !== was.base || now.steps !== was.steps || now.gates !== was.gates);
}

export interface RunSlice {
  runSettings: RunSettings;
  runStatus: 'idle' | 'running' | 'done' | 'error';
  progress: RunProgress | null;
  report: CompareReport | null;
  /** Times of the same graphs: median and spread of `timedRuns` runs after the report's warm-up. */
  timing: Timing | null;
  /** Timed runs per side after the warm-up (the comparison's own runs). */
  timedRuns: number;
  setTimedRuns(n: number): void;
  /** The graph, steps and gates the report was made for. */
  reportFor: RunSubject | null;
  /** The settings the report ran under (the form may have changed since). */
  ranSettings: RunSettings | null;
  /** Counts the runs that finished, so every tab can name the run it shows (panels/runCaption.ts). */
  runNumber: number;
  runError: string | null;
  /** Hardware profile and token count the cost model predicts for. */
  profileId: string;
  tokens: number;
  /** TP degree for the prediction; null follows the world-size gate. */
  costTp: number | null;
  costAlgorithm: Algorithm;
  /** Where the native agent listens and its one-time token (from `?agent=…#token=…` or typed in). */
  agentAddress: AgentAddress;
  /** The connected agent's own description, once a run has connected. */
  agentInfo: string | null;
  setAgentAddress(patch: Partial<AgentAddress>): void;
  setRunSettings(patch: Partial<RunSettings>): void;
  setProfile(profileId: string): void;
  setTokens(tokens: number): void;
  setCostTp(tp: number | null): void;
  setCostAlgorithm(algorithm: Algorithm): void;
  run(): Promise<void>;
  /** Forgets the last run (a different graph was loaded); a run still going is dropped when it ends. */
  clearRun(): void;
  /** Stops the run in progress: a worker run is ended at once, a run on the page is dropped when it returns. */
  cancelRun(): void;
}

const PHASES: Record<string, string> = {
  plan: 'planning',
  compile: 'compiling kernels',
  upload: 'uploading inputs',
  run: 'running',
  download: 'reading back outputs',
};

/** The phase's label with its count where it has one (compiling kernels 3/12). */
const phaseLabel = (p: { phase: string; done: number; total: number }) =>
  `${PHASES[p.phase] ?? p.phase}${p.total && p.phase !== 'plan' ? ` ${p.done}/${p.total}` : ''}`;

export const DEFAULT_TIMED_RUNS = 3;

export const DEFAULT_RUN_SETTINGS: RunSettings = {
  backend: 'webgpu',
  ranks: 2,
  preset: 'tiny',
  dtype: 'bf16',
  allreduce: 'one-shot',
  workers: false,
};

function initialAgentAddress(): AgentAddress {
  const fromUrl = typeof window === 'undefined' ? null : agentAddressFromLocation(window.location.href);
  return fromUrl ?? { url: 'ws://127.0.0.1:7777', token: '' };
}

/** One connection per address and token; a new address or token reconnects. */
let agent: { key: string; client: AgentClient } | null = null;

async function connectAgent(addr: AgentAddress): Promise<AgentClient> {
  const key = `${addr.url}#${addr.token}`;
  if (agent?.key === key) return agent.client;
  if (!/^ws:\/\/(127\.0\.0\.1|localhost):\d{1,5}\/?$/.test(addr.url)) {
    throw new RunError(
      'input',
      `agent address must be ws://127.0.0.1:PORT (loopback only), got '${addr.url}'`,
    );
  }
  if (!addr.token)
    throw new RunError('input', 'agent token is empty: paste the token that `npm run agent` printed');
  const client = await AgentClient.connect({ url: addr.url.replace(/\/$/, ''), token: addr.token });
  agent = { key, client };
  registerBackend('agent', async () => agentBackend(client));
  return client;
}

export const createRunSlice: StateCreator<AppState, [], [], RunSlice> = (set, get) => ({
  // A link from `npm run agent` (`?agent=…#token=…`) picks the agent backend.
  runSettings:
    typeof window !== 'undefined' && agentAddressFromLocation(window.location.href)
      ? { ...DEFAULT_RUN_SETTINGS, backend: 'agent' }
      : DEFAULT_RUN_SETTINGS,
  agentAddress: initialAgentAddress(),
  agentInfo: null,
  setAgentAddress: (patch) => set((s) => ({ agentAddress: { ...s.agentAddress, ...patch } })),
  runStatus: 'idle',
  progress: null,
  report: null,
  timing: null,
  timedRuns: DEFAULT_TIMED_RUNS,
  setTimedRuns: (timedRuns) => set({ timedRuns }),
  reportFor: null,
  ranSettings: null,
  runNumber: 0,
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
    const subject = runSubjectOf(get());
    const id = ++runId;
    // A graph loaded while this runs makes the result someone else's: drop it.
    const current = () => id === runId && get().base === subject?.base;
    get().dropNodeDeltas();
    set({
      runStatus: 'running',
      progress: { phase: PHASES.plan, fraction: null, overall: 0 },
      runError: null,
      report: null,
      timing: null,
      reportFor: null,
      ranSettings: null,
    });
    try {
      if (runSettings.backend === 'agent') {
        const { hello } = await connectAgent(get().agentAddress);
        const d = hello.device;
        set({
          agentInfo: `${hello.agent} · ${d.mode === 'cuda' ? d.gpus.map((g) => g.name).join(', ') : `CPU mode${d.reason ? ` (${d.reason})` : ''}`}`,
        });
      }
      const runs = get().timedRuns;
      const onTimed = (done: number, total: number) => {
        if (current())
          set({
            progress: {
              phase: `timed run ${Math.ceil(done / 2)}/${runs} (${done % 2 ? 'before' : 'after'})`,
              fraction: done / total,
              overall: runPhaseShare(runs, { timed: done }),
            },
          });
      };
      // Every graph run starts by planning: that counts the comparison's runs as they go.
      let graph = -1;
      const onProgress = (p: { phase: string; done: number; total: number }) => {
        if (p.phase === 'plan' && p.done === 0) graph++;
        const fraction = p.total ? p.done / p.total : null;
        if (current())
          set({
            progress: {
              phase: phaseLabel(p),
              fraction,
              overall: runPhaseShare(runs, {
                graph: Math.max(0, graph),
                within: p.phase === 'run' ? (fraction ?? 0) : 0,
              }),
            },
          });
      };
      let report: CompareReport, timing: Timing;
      if (runSettings.backend === 'cpu' && typeof Worker !== 'undefined') {
        // The CPU reference computes on the thread it runs on: a worker keeps the page responsive.
        ({ report, timing } = await runInWorker(
          { type: 'run', before, after, passes, settings: runSettings, timedRuns: runs },
          onProgress,
          onTimed,
        ));
      } else {
        report = await compareGraphs(before, after, passes, { ...runSettings, onProgress });
        if (!current()) return;
        // The comparison's runs compiled every kernel: they are the warm-up, never timed.
        timing = await timeGraphs(before, after, runSettings, runs, true, onTimed);
      }
      if (current())
        set({
          runStatus: 'done',
          report,
          timing,
          reportFor: subject,
          ranSettings: runSettings,
          runNumber: get().runNumber + 1,
          progress: null,
        });
    } catch (e) {
      const message = e instanceof RunError ? e.message : `Run failed: ${(e as Error).message ?? String(e)}`;
      if (current()) set({ runStatus: 'error', runError: message, progress: null });
    }
  },
  cancelRun: () => {
    if (get().runStatus !== 'running') return;
    runId++;
    runWorker.stop();
    set({ runStatus: 'idle', progress: null, runError: null });
    get().setNotice('Run cancelled');
  },
  clearRun: () => {
    runId++;
    get().dropNodeDeltas();
    runWorker.stop();
    set({
      runStatus: 'idle',
      report: null,
      timing: null,
      reportFor: null,
      ranSettings: null,
      runError: null,
      progress: null,
    });
  },
});

/** Counts runs, so a run that was superseded or cleared does not write its result. */
let runId = 0;

/** The worker of the CPU run in progress, ended by Cancel. */
const runWorker = new RunWorkerSlot();

function runInWorker(
  req: RunRequest,
  onProgress: (p: { phase: string; done: number; total: number }) => void,
  onTimed: (done: number, total: number) => void,
): Promise<{ report: CompareReport; timing: Timing }> {
  return runWorker.request(
    req,
    (m) => {
      if (m.type === 'progress') onProgress(m.progress);
      else if (m.type === 'timed') onTimed(m.done, m.total);
      else if (m.type === 'done') return { report: m.report, timing: m.timing };
      return undefined;
    },
    (message) => new RunError('input', message),
  );
}
