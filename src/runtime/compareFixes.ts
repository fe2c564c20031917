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

export interface FixRow {
  id: FixId;
  label: string;
  graph: Graph;
  /** Fused all-reduce + norm sites (and any other fused node). */
  fusions: number;
  /** The cost model on an H200 at the run's token count and ranks. */
  model: GraphTotals;
  measured: { kernels: number; bytes: number; us: number; timing: 'timestamp-query' | 'host' | 'none' };
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

/** Rank 0's kernel steps of a run: how many, the bytes they read and wrote, their summed time. */
export function traceTotals(t: Trace): FixRow['measured'] {
  const ev = t.events.filter((e) => e.rank === 0 && e.kind === 'kernel');
  const timed = ev.filter((e) => e.timing === 'timestamp-query');
  return {
    kernels: ev.length,
    bytes: ev.reduce((a, e) => a + e.bytesRead + e.bytesWritten, 0),
    us: ev.reduce((a, e) => a + e.dur_us, 0),
    timing: ev.length === 0 ? 'none' : timed.length === ev.length ? 'timestamp-query' : 'host',
  };
}

/** `layer`: one layer of GPT-OSS as vLLM lowers it (generateSample(…, { layers: 1, tp: ranks })). */
export async function compareFixes(
  layer: Graph,
  opts: RunOptions,
  profileName = 'H200-NVLink',
): Promise<FixesReport> {
  const profile = PROFILES[profileName]!;
  const tokens = opts.tokens ?? PRESETS[opts.preset].tokens;
  const baseline = await runGraph(layer, opts);
  const rows: FixRow[] = [];
  for (const id of FIX_ORDER) {
    const fix = FIXES[id];
    const g = runPipeline(layer, fix.passes, { worldSize: opts.ranks }).output;
    const run = await runGraph(g, opts);
    const asUnfused = await runGraph(g, { ...opts, fusedNormRounding: 'as-unfused' });
    const check = compareExact(baseline, asUnfused);
    rows.push({
      id,
      label: fix.label,
      graph: g,
      fusions: fusedNodes(g),
      // The model at the real sizes (the graph's own), at the run's token count.
      model: graphTotals(g, profile, { tp: opts.ranks, tokens }),
      measured: traceTotals(run.trace),
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
