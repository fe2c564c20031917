import type { StateCreator } from 'zustand';
import { diffGraphs } from '../../graph/diff.ts';
import type { CompareReport } from '../../runtime/index.ts';
import { nodeDeltas } from '../../runtime/nodeDeltas.ts';
import type { DeltasRequest } from '../run/runProtocol.ts';
import { RunWorkerSlot } from '../run/runWorker.ts';
import type { OverlayMetric, RankChoice } from '../graph/overlay.ts';
import { reportIsStale, type RunSettings } from './runSlice.ts';
import type { AppState } from './index.ts';

/** |after − before| per node, recomputed on the CPU reference for one report (see runtime/nodeDeltas.ts). */
export interface NodeDeltas {
  report: CompareReport;
  status: 'computing' | 'done' | 'error';
  /** 0..1 while computing. */
  fraction?: number;
  /** By after-node. */
  after: ReadonlyMap<string, number>;
  /** The same values by before-node, through the diff's pairs. */
  before: ReadonlyMap<string, number>;
  /**
   * after-node → the before-node its value was compared with (the diff's `counterparts`:
   * provenance only), and back; a node in neither has no counterpart and no |Δ|.
   */
  counterparts: { after: ReadonlyMap<string, string>; before: ReadonlyMap<string, string> };
  error?: string;
}

export interface OverlaySlice {
  /** What the graph views' node fills show, in every pane. */
  overlayMetric: OverlayMetric;
  /** Which rank's times and bytes the fills show. */
  overlayRank: RankChoice;
  nodeDeltas: NodeDeltas | null;
  setOverlayMetric(m: OverlayMetric): void;
  setOverlayRank(r: RankChoice): void;
  /** Starts the |Δ| values for the current report, unless they are there or on their way. */
  computeNodeDeltas(): void;
  /** Drops the |Δ| values and stops their computation (the run they belong to is gone). */
  dropNodeDeltas(): void;
}

/**
 * Per metric, why it cannot be shown now (null: it can). Never old numbers on a new graph: a
 * cleared run leaves nothing, a stale one (other steps or gates) is refused until it runs again.
 * Bytes fall back to the cost model, so they are always there.
 */
export function overlayUnavailable(
  s: Pick<AppState, 'report' | 'timing' | 'base' | 'steps' | 'cursor' | 'gates' | 'reportFor'> &
    Partial<Pick<AppState, 'profilerTrace'>>,
): Record<OverlayMetric, string | null> {
  const run = !s.report
    ? 'Run the comparison first (Run tab)'
    : reportIsStale(s)
      ? 'The last run was of other steps or gates: run the comparison again'
      : null;
  return {
    kind: null,
    // A profiler trace the user loaded is a measured time of its own (timeSource).
    time: s.profilerTrace ? null : (run ?? (s.timing ? null : 'The run has no timed runs')),
    bytes: null,
    delta: run ?? (s.cursor === 0 ? 'Apply a rewrite first: there is no after graph' : null),
  };
}

/**
 * Where measured times come from: the user's profiler trace when one is loaded (its kernels
 * matched to the graph, kernelOverlay.ts), else fusionlab's own last run.
 */
export function timeSource(s: Partial<Pick<AppState, 'profilerTrace'>>): 'trace' | 'run' {
  return s.profilerTrace ? 'trace' : 'run';
}

/** The metric the views show: the chosen one while it can be shown, else kind. */
export function shownOverlay(s: Parameters<typeof overlayUnavailable>[0] & Pick<AppState, 'overlayMetric'>) {
  return overlayUnavailable(s)[s.overlayMetric] === null ? s.overlayMetric : 'kind';
}

/** The worker computing |Δ| now; a newer request ends it. */
const deltasWorker = new RunWorkerSlot();

function deltasInWorker(req: DeltasRequest, onFraction: (f: number) => void): Promise<Map<string, number>> {
  return deltasWorker.request(req, (m) => {
    if (m.type === 'deltas-progress') onFraction(m.fraction);
    else if (m.type === 'deltas') return new Map(m.deltas);
    return undefined;
  });
}

export const createOverlaySlice: StateCreator<AppState, [], [], OverlaySlice> = (set, get) => ({
  overlayMetric: 'kind',
  overlayRank: 'max',
  nodeDeltas: null,
  setOverlayMetric: (overlayMetric) => {
    set({ overlayMetric });
    if (overlayMetric === 'delta') get().computeNodeDeltas();
    // Another choice stops a computation nobody waits for any more.
    else if (get().nodeDeltas?.status === 'computing') get().dropNodeDeltas();
  },
  setOverlayRank: (overlayRank) => set({ overlayRank }),
  dropNodeDeltas: () => {
    deltasWorker.stop();
    if (get().nodeDeltas) set({ nodeDeltas: null });
  },
  computeNodeDeltas: () => {
    const s = get();
    const { report, ranSettings } = s;
    if (!report || !ranSettings || overlayUnavailable(s).delta !== null) return;
    if (s.nodeDeltas?.report === report && s.nodeDeltas.status !== 'error') return;
    const before = s.stages[0].graph,
      after = s.stages[s.cursor].graph;
    const diff = diffGraphs(
      before,
      after,
      s.stages.slice(1, s.cursor + 1).flatMap((st) => st.matches),
    );
    const empty = new Map<string, number>();
    const counterparts = { after: diff.counterparts, before: diff.counterpartsBefore };
    set({ nodeDeltas: { report, status: 'computing', after: empty, before: empty, counterparts } });
    const settings: Omit<RunSettings, 'backend' | 'workers'> = {
      ranks: ranSettings.ranks,
      preset: ranSettings.preset,
      dtype: ranSettings.dtype,
      allreduce: ranSettings.allreduce,
      seed: ranSettings.seed,
      tokens: ranSettings.tokens,
    };
    const onFraction = (fraction: number) => {
      const d = get().nodeDeltas;
      if (d?.report === report && d.status === 'computing') set({ nodeDeltas: { ...d, fraction } });
    };
    const values =
      typeof Worker !== 'undefined'
        ? deltasInWorker(
            {
              type: 'deltas',
              before,
              after,
              afterToBefore: [...diff.counterparts],
              settings: { ...settings, backend: 'cpu', workers: false },
            },
            onFraction,
          )
        : nodeDeltas(before, after, diff.counterparts, settings, onFraction);
    values.then(
      (byAfter) => {
        if (get().nodeDeltas?.report !== report) return;
        const byBefore = new Map<string, number>();
        for (const [a, v] of byAfter) byBefore.set(diff.counterparts.get(a)!, v);
        set({ nodeDeltas: { report, status: 'done', after: byAfter, before: byBefore, counterparts } });
      },
      (e: unknown) => {
        if (get().nodeDeltas?.report !== report) return;
        set({
          nodeDeltas: {
            report,
            status: 'error',
            after: empty,
            before: empty,
            counterparts,
            error: e instanceof Error ? e.message : String(e),
          },
        });
      },
    );
  },
});
