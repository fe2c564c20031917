// The one way the app measures a rewrite's effect: after a warm-up run of each graph (which
// compiles the kernels and is never timed), N runs alternating before and after; per node and per
// rank the median and the spread (min–max) of those N, and per side the busiest rank's total.
// Alternating keeps a drift of the machine (another process, a clock change) from landing on
// one side only.

import type { Graph } from '../graph/ir.ts';
import type { RunOptions, Trace, TraceEvent } from './backend.ts';
import { runGraph } from './index.ts';

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface NodeTiming {
  node: string;
  op: string;
  rank: number;
  us: Spread;
  /** Its time in each timed run, in run order: sums over a set of nodes take their spread from these. */
  perRun: number[];
  /** Bytes read and written by the node on this rank (the same every run). */
  bytes: number;
}

export interface SideTiming {
  nodes: NodeTiming[];
  /** Busy time of the busiest rank (kernels and transfers), per run, summarised. */
  busiestUs: Spread;
  /** How the times were taken: GPU timestamps, host timers or CUDA events. */
  clock: TraceEvent['timing'] | 'mixed' | 'none';
  /**
   * The timed run whose busiest rank took the median time (the lower middle of an even count),
   * by its index among the timed runs: the one run a timeline shows for these numbers.
   */
  medianRun: { index: number; trace: Trace } | null;
}

export interface Timing {
  /** Timed runs per side, after one warm-up run each. */
  runs: number;
  before: SideTiming;
  after: SideTiming;
}

export function spreadOf(values: readonly number[]): Spread {
  if (values.length === 0) return { median: 0, min: 0, max: 0 };
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return { median: v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2, min: v[0], max: v[v.length - 1] };
}

/** Busy time per rank of one run: kernels and transfers, fed inputs left out. */
export function busyByRank(events: readonly TraceEvent[]): Map<number, number> {
  const busy = new Map<number, number>();
  for (const e of events) if (e.kind !== 'fed') busy.set(e.rank, (busy.get(e.rank) ?? 0) + e.dur_us);
  return busy;
}

/** Summarises N traces of one graph: per (node, rank) the spread of its summed event time per run. */
export function summarise(traces: readonly Trace[]): SideTiming {
  const perKey = new Map<string, { node: string; op: string; rank: number; us: number[]; bytes: number }>();
  const clocks = new Set<TraceEvent['timing']>();
  for (const t of traces) {
    const thisRun = new Map<string, number>();
    for (const e of t.events) {
      if (e.kind === 'fed') continue;
      clocks.add(e.timing);
      const key = `${e.rank}\u0000${e.node}`;
      let row = perKey.get(key);
      if (!row) perKey.set(key, (row = { node: e.node, op: e.op, rank: e.rank, us: [], bytes: 0 }));
      thisRun.set(key, (thisRun.get(key) ?? 0) + e.dur_us);
      // Bytes do not change between runs: count them once.
      if (t === traces[0]) row.bytes += e.bytesRead + e.bytesWritten;
    }
    for (const [key, us] of thisRun) perKey.get(key)!.us.push(us);
  }
  const busiest = traces.map((t) => Math.max(0, ...busyByRank(t.events).values()));
  const order = busiest.map((_, i) => i).sort((a, b) => busiest[a] - busiest[b] || a - b);
  const mid = order[(order.length - 1) >> 1];
  return {
    nodes: [...perKey.values()].map((r) => ({
      node: r.node,
      op: r.op,
      rank: r.rank,
      us: spreadOf(r.us),
      perRun: r.us,
      bytes: r.bytes,
    })),
    busiestUs: spreadOf(busiest),
    clock: clocks.size === 0 ? 'none' : clocks.size === 1 ? [...clocks][0] : 'mixed',
    medianRun: mid === undefined ? null : { index: mid, trace: traces[mid] },
  };
}

/**
 * Times `before` and `after` the one way (see the top of the file). `warm` says the warm-up runs
 * already happened (the comparison's own runs, on the same devices); otherwise they run here.
 */
export async function timeGraphs(
  before: Graph,
  after: Graph,
  opts: RunOptions,
  runs: number,
  warm = false,
  onRun?: (done: number, total: number) => void,
): Promise<Timing> {
  if (!Number.isInteger(runs) || runs < 1)
    throw new RangeError(`timed runs must be a whole number ≥ 1, got ${runs}`);
  const quiet = { ...opts, onProgress: undefined };
  if (!warm) {
    await runGraph(before, quiet);
    await runGraph(after, quiet);
  }
  const b: Trace[] = [],
    a: Trace[] = [];
  for (let i = 0; i < runs; i++) {
    b.push((await runGraph(before, quiet)).trace);
    onRun?.(2 * i + 1, 2 * runs);
    a.push((await runGraph(after, quiet)).trace);
    onRun?.(2 * i + 2, 2 * runs);
  }
  return { runs, before: summarise(b), after: summarise(a) };
}
