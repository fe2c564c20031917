// The status bar's work line: which jobs are going, how far the whole job is, and about how long
// is left; a run's fraction covers its comparison and its timed runs, never going back.

import { describe, expect, it } from 'vitest';
import { busyJobs, busyText, etaText } from './BusyStatus.tsx';
import { runPhaseShare } from '../store/runSlice.ts';

describe('busy status', () => {
  it('lists the run, the |Δ| values and the pipeline work, each with its fraction', () => {
    const report = {} as never;
    expect(
      busyJobs({
        runStatus: 'running',
        progress: { phase: 'timed run 2/3 (before)', fraction: 0.5, overall: 0.6 },
        nodeDeltas: null,
        work: { label: 'Laying out', fraction: null },
        report: null,
      }),
    ).toEqual([
      { id: 'run', label: 'Running before & after: timed run 2/3 (before)', fraction: 0.6 },
      { id: 'work', label: 'Laying out', fraction: null },
    ]);
    const deltas = {
      report,
      status: 'computing' as const,
      fraction: 0.25,
      after: new Map(),
      before: new Map(),
    };
    expect(
      busyJobs({
        runStatus: 'done',
        progress: null,
        nodeDeltas: { ...deltas, counterparts: { after: new Map(), before: new Map() } },
        work: null,
        report,
      }),
    ).toEqual([{ id: 'deltas', label: '|Δ| on the CPU reference', fraction: 0.25 }]);
  });

  it('says about how long is left once the rate is known', () => {
    expect(etaText(2000, 0.5)).toBeNull();
    expect(etaText(10_000, 0)).toBeNull();
    expect(etaText(10_000, 0.5)).toBe('about 10 s left');
    expect(etaText(60_000, 0.25)).toBe('about 3 min left');
    expect(etaText(60_000, 0.001)).toBe('about 17 h left');
    expect(busyText({ id: 'run', label: 'Running before & after: running 3/9', fraction: 0.4 }, 4000)).toBe(
      'Running before & after: running 3/9 · 40 % · about 6 s left',
    );
    // Long work moves visibly: a decimal below 10 %.
    expect(busyText({ id: 'deltas', label: '|Δ| on the CPU reference', fraction: 0.0009 }, 1000)).toBe(
      '|Δ| on the CPU reference · 0.0 %',
    );
    expect(busyText({ id: 'deltas', label: '|Δ| on the CPU reference', fraction: 0.054 }, 1000)).toBe(
      '|Δ| on the CPU reference · 5.4 %',
    );
  });

  it("a run's fraction: the comparison's three graph runs, then the timed runs, in equal shares", () => {
    const runs = 3;
    const seq = [
      runPhaseShare(runs, { graph: 0, within: 0 }),
      runPhaseShare(runs, { graph: 0, within: 0.5 }),
      runPhaseShare(runs, { graph: 2, within: 1 }),
      runPhaseShare(runs, { timed: 0 }),
      runPhaseShare(runs, { timed: 3 }),
      runPhaseShare(runs, { timed: 6 }),
    ];
    expect(seq).toEqual([0, 0.5 / 9, 3 / 9, 3 / 9, 6 / 9, 1]);
    // A rerun counted past the comparison's three never overtakes the timed runs' share.
    expect(runPhaseShare(runs, { graph: 5, within: 1 })).toBe(3 / 9);
  });
});
