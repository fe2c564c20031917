// The timing method on real CPU runs of the PR fragment: N timed runs per side after a warm-up,
// per node and per rank (never summed over ranks), medians inside their spread.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { rewriteForCompare } from './rewriteForCompare.ts';
import { spreadOf, summarise, timeGraphs } from './timing.ts';
import type { Trace } from './backend.ts';

const fragment = () =>
  parseFx(
    readFileSync(new URL('../../fixtures/fx/seed/pr28841-before.fragment.txt', import.meta.url), 'utf8'),
  ).graph;

describe('timing a rewrite', () => {
  it('median and spread', () => {
    expect(spreadOf([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5 });
    expect(spreadOf([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4 });
  });

  it('keeps each rank apart and takes the median over runs, not the sum', () => {
    const ev = (rank: number, dur: number) => ({
      rank,
      node: 'mm',
      op: 'aten.mm.default',
      kind: 'kernel' as const,
      start_us: 0,
      dur_us: dur,
      bytesRead: 10,
      bytesWritten: 6,
      timing: 'host' as const,
    });
    const trace = (durs: number[]): Trace => ({
      backend: 'cpu',
      device: 'cpu',
      ranks: 2,
      events: durs.map((d, r) => ev(r, d)),
      fed: [],
      notes: [],
    });
    const s = summarise([trace([10, 100]), trace([30, 300]), trace([20, 200])]);
    const row = (rank: number, perRun: number[], us: { median: number; min: number; max: number }) => ({
      node: 'mm',
      op: 'aten.mm.default',
      rank,
      us,
      perRun,
      bytes: 16,
    });
    expect(s.nodes).toEqual([
      row(0, [10, 30, 20], { median: 20, min: 10, max: 30 }),
      row(1, [100, 300, 200], { median: 200, min: 100, max: 300 }),
    ]);
    expect(s.busiestUs).toEqual({ median: 200, min: 100, max: 300 });
    expect(s.clock).toBe('host');
    // The timeline's run: the third (busiest rank 200 µs, the median), not the first.
    expect(s.medianRun?.index).toBe(2);
  });

  it('times the PR fragment before and after on two CPU ranks', async () => {
    const g = fragment();
    const after = rewriteForCompare(g, ['slice-hoist', 'allreduce-rmsnorm'], 2);
    const seen: number[] = [];
    const t = await timeGraphs(
      g,
      after,
      { backend: 'cpu', ranks: 2, preset: 'tiny', dtype: 'bf16', allreduce: 'one-shot', workers: false },
      3,
      false,
      (d) => seen.push(d),
    );
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.runs).toBe(3);
    expect(new Set(t.before.nodes.map((n) => n.rank))).toEqual(new Set([0, 1]));
    for (const n of [...t.before.nodes, ...t.after.nodes])
      expect(n.us.min <= n.us.median && n.us.median <= n.us.max).toBe(true);
    expect(
      t.after.nodes.some(
        (n) => n.op.includes('fused_allreduce_norm') || n.node.startsWith('auto_functionalized'),
      ),
    ).toBe(true);
    await expect(
      timeGraphs(
        g,
        after,
        { backend: 'cpu', ranks: 2, preset: 'tiny', dtype: 'bf16', allreduce: 'one-shot', workers: false },
        0,
      ),
    ).rejects.toThrow('timed runs must be a whole number ≥ 1, got 0');
  });
});
