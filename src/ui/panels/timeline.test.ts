import { describe, expect, it } from 'vitest';
import { formatMicros } from './Timeline.tsx';
import { formatMicrosRange } from '../units.ts';
import { parseTraceFile, resolveWrappedOps, shownRun } from './TimelinePanel.tsx';
import { summarise } from '../../runtime/timing.ts';
import type { Trace } from '../../runtime/backend.ts';
import { importGraph } from '../../graph/formats.ts';
import { runPipeline } from '../../graph/passes/pipeline.ts';
import { PR_BEFORE, repoText } from '../testFixtures.ts';

const recorded = repoText('e2e/fixtures/trace-pr28841-tp2.json');

describe('timeline', () => {
  it('labels the axis in µs, ms or s by magnitude', () => {
    expect(formatMicros(0)).toBe('0');
    expect(formatMicros(250)).toBe('250 µs');
    expect(formatMicros(1500)).toBe('1.5 ms');
    expect(formatMicros(2_500_000)).toBe('2.5 s');
  });

  it('reads a trace recorded by a WebGPU run of the PR fragment', () => {
    const raw = parseTraceFile(recorded, 'trace-pr28841-tp2.json');
    expect(new Set(raw.before.events.map((e) => e.rank))).toEqual(new Set([0, 1]));
    // The trace names auto_functionalized; the graphs say which op each wraps.
    const before = importGraph(PR_BEFORE).graph;
    const after = runPipeline(before, ['slice-hoist', 'allreduce-rmsnorm'], { worldSize: 2 }).output;
    const t = resolveWrappedOps(raw, before, after);
    const ops = (side: 'before' | 'after') =>
      new Set(t[side].events.filter((e) => e.kind !== 'fed').map((e) => e.op));
    expect(ops('before')).toEqual(
      new Set(['vllm.moe_forward.default', 'vllm.all_reduce.default', '_C.fused_add_rms_norm.default']),
    );
    expect(ops('after')).toEqual(
      new Set(['vllm.moe_forward.default', 'vllm.flashinfer_trtllm_fused_allreduce_norm.default']),
    );
  });

  it('names the side, event and field that a bad trace file gets wrong', () => {
    expect(() => parseTraceFile('{"before": {"events": []}}', 'x.json')).toThrow(
      'x.json: after.events is missing',
    );
    const bad = JSON.stringify({
      before: { events: [] },
      after: { events: [{ rank: 0, node: 'a', op: 'b', kind: 'kernel', start_us: '3', dur_us: 1 }] },
    });
    expect(() => parseTraceFile(bad, 'y.json')).toThrow('y.json: after.events[0].start_us is not a number');
    expect(() => parseTraceFile('{', 'z.json')).toThrow(/^z\.json: not JSON/);
  });

  it('shows the median timed run of each side, names it, and sums the fed-input time', () => {
    const trace = (busy: number, fed: number): Trace => ({
      backend: 'cpu',
      device: 'cpu',
      ranks: 1,
      events: [
        {
          rank: 0,
          node: 'x',
          op: 'fed',
          kind: 'fed',
          start_us: 0,
          dur_us: fed,
          bytesRead: 0,
          bytesWritten: 0,
          timing: 'host',
        },
        {
          rank: 0,
          node: 'mm',
          op: 'aten.mm.default',
          kind: 'kernel',
          start_us: fed,
          dur_us: busy,
          bytesRead: 0,
          bytesWritten: 0,
          timing: 'host',
        },
      ],
      fed: ['x'],
      notes: [],
    });
    const timing = {
      runs: 3,
      before: summarise([trace(30, 5), trace(10, 5), trace(20, 5)]),
      after: summarise([trace(9, 4), trace(7, 4), trace(8, 4)]),
    };
    const shown = shownRun(timing, 'run 1: cpu, 1 rank, tiny')!;
    expect(shown.label).toBe(
      'run 1: cpu, 1 rank, tiny · showing the median run of each side (before: timed run 3 of 3, after: timed run 3 of 3)',
    );
    expect(shown.traces.before.events.find((e) => e.kind === 'kernel')!.dur_us).toBe(20);
    expect(shown.fed).toEqual({ before: 5, after: 4 });
  });
});

describe('durations as the app prints them (units.ts)', () => {
  it('a 16-second run reads in seconds, and a spread keeps one unit where both ends share it', () => {
    expect(formatMicros(16100213.3)).toBe('16.1 s');
    expect(formatMicrosRange({ min: 1_520_000, max: 1_610_000 })).toBe('1.52–1.61 s');
    expect(formatMicrosRange({ min: 900, max: 1_200 })).toBe('900 µs–1.2 ms');
  });
});
