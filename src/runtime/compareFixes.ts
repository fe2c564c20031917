// The original GPT-OSS layer, PR #28841's hoist and the re-land (#30647) side by side: fused
// sites, bytes moved, kernels launched and time, both as the cost model predicts them and as a
// run measures them, with every variant's outputs checked against the original's. The check runs
// each rewritten graph with its fused norms rounded as the unfused pair (fusedNormRounding
// 'as-unfused'), so it is bitwise: the same sums in the same order (the re-land adds exact zeros
// less; the hoist reduces the same elements). Used by `fusionlab compare-fixes` and the app's
// Compare fixes view.

import type { Graph } from '../graph/ir.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { FIXES, FIX_ORDER, type FixId } from '../graph/passes/fixes.ts';
import { graphTotals, type GraphTotals } from '../graph/cost/model.ts';
import { PROFILES } from '../graph/cost/profiles.ts';
import { lookupOp } from '../graph/ops.ts';
import { calledOp } from '../graph/call.ts';
import { compareExact } from './compareOutputs.ts';
import type { OutputComparison } from './compareOutputs.ts';
import type { RunOptions, Trace } from './backend.ts';
import { runGraph } from './index.ts';
import { PRESETS } from './presets.ts';
import { summarise, type Spread } from './timing.ts';
import { firstSiteDrift, type SiteDrift } from './fusedSiteDrift.ts';
import { FUSED_ALLREDUCE_NORM } from '../graph/passes/patternOps.ts';

export interface FixRow {
  id: FixId;
  label: string;
  graph: Graph;
  /** Fused all-reduce + norm sites (and any other fused node). */
  fusions: number;
  /** The cost model on an H200 at the run's token count and ranks. */
  model: GraphTotals;
  measured: {
    /** Nodes that ran a kernel on rank 0 (a node may run several steps: see `steps`). */
    kernels: number;
    steps: number;
    bytes: number;
    /** The busiest rank's time, the median of the timed runs (the Results tab's method). */
    us: number;
    spread: Spread;
    runs: number;
    timing: 'timestamp-query' | 'host' | 'none';
  };
  /** The fused kernel's own change: the first fused site alone, and the outputs against the original. */
  drift: { firstSite: SiteDrift | null; maxUlps: number; maxRel: number };
  /** Outputs against the original graph (unfused), position by position. */
  check: OutputComparison[];
  equal: boolean;
}

export interface FixesReport {
  rows: FixRow[];
  backend: string;
  device: string;
  ranks: number;
  tokens: number;
  profile: string;
}

const fusedNodes = (g: Graph) => g.nodes.filter((n) => lookupOp(calledOp(n))?.kind === 'fused').length;

/** Timed runs of each variant after its warm-up run, as the app's Run does by default. */
export const FIX_TIMED_RUNS = 3;

/**
 * Rank 0's kernels of a run: the nodes that ran one (a fused op or the MoE may run several steps,
 * counted apart), the bytes they read and wrote; and over the timed runs the busiest rank's time.
 */
export function traceTotals(warm: Trace, timed: readonly Trace[]): FixRow['measured'] {
  const ev = warm.events.filter((e) => e.rank === 0 && e.kind === 'kernel');
  const onTimestamps = ev.filter((e) => e.timing === 'timestamp-query');
  const busiest = summarise(timed.length ? timed : [warm]).busiestUs;
  return {
    kernels: new Set(ev.map((e) => e.node)).size,
    steps: ev.length,
    bytes: ev.reduce((a, e) => a + e.bytesRead + e.bytesWritten, 0),
    us: busiest.median,
    spread: busiest,
    runs: timed.length,
    timing: ev.length === 0 ? 'none' : onTimestamps.length === ev.length ? 'timestamp-query' : 'host',
  };
}

/** `layer`: one layer of GPT-OSS as vLLM lowers it (generateSample(…, { layers: 1, tp: ranks })). */
export async function compareFixes(
  layer: Graph,
  opts: RunOptions,
  profileName = 'H200-NVLink',
  timedRuns = FIX_TIMED_RUNS,
): Promise<FixesReport> {
  const profile = PROFILES[profileName]!;
  const tokens = opts.tokens ?? PRESETS[opts.preset].tokens;
  const baseline = await runGraph(layer, opts);
  const rows: FixRow[] = [];
  for (const id of FIX_ORDER) {
    const fix = FIXES[id];
    const g = runPipeline(layer, fix.passes, { worldSize: opts.ranks }).output;
    // The first run compiles and warms up; the timed ones follow it, as in the app's Run.
    const run = await runGraph(g, opts);
    const timed: Trace[] = [];
    for (let i = 0; i < timedRuns; i++) timed.push((await runGraph(g, opts)).trace);
    const asUnfused = await runGraph(g, { ...opts, fusedNormRounding: 'as-unfused' });
    const check = compareExact(baseline, asUnfused);
    const drift = compareExact(baseline, run);
    rows.push({
      id,
      label: fix.label,
      graph: g,
      fusions: fusedNodes(g),
      // The model at the real sizes (the graph's own), at the run's token count.
      model: graphTotals(g, profile, { tp: opts.ranks, tokens }),
      measured: traceTotals(run.trace, timed),
      drift: {
        firstSite: await firstSiteDrift(g, (n) => calledOp(n) === FUSED_ALLREDUCE_NORM, opts, runGraph).catch(
          () => null,
        ),
        maxUlps: Math.max(0, ...drift.map((c) => c.ulps)),
        maxRel: Math.max(0, ...drift.map((c) => c.maxRel)),
      },
      check,
      equal: check.length > 0 && check.every((c) => c.pass),
    });
  }
  return {
    rows,
    backend: baseline.trace.backend,
    device: baseline.trace.device,
    ranks: opts.ranks,
    tokens,
    profile: profile.name,
  };
}
