// The measured effect of a rewrite: the changed nodes' time apart from the rest, called faster or
// slower only when the spreads over the timed runs are apart.

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseFx } from '../../graph/fx/parse.ts';
import { diffGraphs } from '../../graph/diff.ts';
import { runPipeline } from '../../graph/passes/pipeline.ts';
import type { NodeTiming, Timing } from '../../runtime/timing.ts';
import { spreadOf } from '../../runtime/timing.ts';
import { callOf, changedNodes, measuredEffect } from './measuredEffect.ts';

const node = (name: string, rank: number, perRun: number[]): NodeTiming => ({
  node: name,
  op: 'op',
  rank,
  us: spreadOf(perRun),
  perRun,
  bytes: 0,
});
const side = (nodes: NodeTiming[]) => ({
  nodes,
  busiestUs: spreadOf([]),
  clock: 'host' as const,
  medianRun: null,
});

describe('measuredEffect', () => {
  it('takes the changed nodes from the diff: removed and moved before, added, fused and moved after', () => {
    const before = parseFx(
      readFileSync(new URL('../../../fixtures/fx/seed/pr28841-before.fragment.txt', import.meta.url), 'utf8'),
    ).graph;
    const r = runPipeline(before, ['slice-hoist', 'allreduce-rmsnorm'], { worldSize: 4 });
    const c = changedNodes(
      diffGraphs(
        before,
        r.output,
        r.stages.flatMap((s) => s.matches),
      ),
    );
    expect([...c.before].sort()).toEqual(['all_reduce_1', 'auto_functionalized_2', 'slice_1']);
    expect([...c.after].sort()).toEqual(['auto_functionalized', 'slice_1']);
  });

  it('keeps the untouched nodes apart: their drift does not make the rewrite look faster', () => {
    // The rewrite's site costs the same (30 → 29 µs, within its spread); an untouched rotary kernel
    // drifts 200 → 180 µs, which a whole-run total would have called a 10 % speed-up.
    const timing: Timing = {
      runs: 3,
      before: side([
        node('site', 0, [30, 28, 31]),
        node('rotary', 0, [200, 210, 205]),
        node('site', 1, [29, 29, 29]),
      ]),
      after: side([
        node('fused', 0, [29, 30, 28]),
        node('rotary', 0, [180, 182, 185]),
        node('fused', 1, [28, 28, 28]),
      ]),
    };
    const e = measuredEffect(timing, { before: new Set(['site']), after: new Set(['fused']) });
    expect(e.changed.before).toEqual({ median: 30, min: 29, max: 31 });
    expect(e.changed.after).toEqual({ median: 29, min: 28, max: 30 });
    expect(e.changed.call).toBe('within the run-to-run spread');
    expect(e.changed.nodes).toEqual({ before: 1, after: 1 });
    expect(e.rest.call).toBe('faster');
  });

  it('calls a change only when the spreads are apart, and never from one run', () => {
    expect(callOf({ median: 10, min: 9, max: 11 }, { median: 7, min: 6, max: 8 }, 3)).toBe('faster');
    expect(callOf({ median: 10, min: 9, max: 11 }, { median: 13, min: 12, max: 14 }, 3)).toBe('slower');
    expect(callOf({ median: 10, min: 9, max: 11 }, { median: 9, min: 8, max: 10 }, 3)).toBe(
      'within the run-to-run spread',
    );
    expect(callOf({ median: 10, min: 10, max: 10 }, { median: 5, min: 5, max: 5 }, 1)).toBe(
      'one run: no spread',
    );
  });
});
