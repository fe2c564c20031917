// The measured effect of a rewrite: the time of the nodes the rewrite changed (what it removed,
// moved, added or fused, collectives included), apart from the time of the nodes it never touched.
// A whole-run total mixes both, and the untouched part (a RoPE cache fed, attention) moves from run
// to run by more than a fused site saves; so a change is called only where the changed nodes'
// spreads over the timed runs do not overlap.

import type { GraphDiff } from '../../graph/diff.ts';
import { spreadOf, type SideTiming, type Spread, type Timing } from '../../runtime/timing.ts';

/** faster / slower: the spreads are apart; within: they overlap; one run: no spread to judge by. */
export type EffectCall = 'faster' | 'slower' | 'within the run-to-run spread' | 'one run: no spread';

export interface EffectPart {
  /** Timed nodes on each side (per rank, counted once). */
  nodes: { before: number; after: number };
  /** Per timed run, the busiest rank's sum over these nodes; summarised. */
  before: Spread;
  after: Spread;
  call: EffectCall;
}

export interface MeasuredEffect {
  runs: number;
  /** The nodes the rewrite changed. */
  changed: EffectPart;
  /** Every other node: what the rewrite did not touch, shown apart. */
  rest: EffectPart;
}

/** Which nodes each side's changed part holds: the diff's marks (rewired nodes run the same kernel). */
export function changedNodes(diff: GraphDiff): { before: Set<string>; after: Set<string> } {
  const pick = (m: Map<string, string>, kinds: string[]) =>
    new Set([...m].filter(([, c]) => kinds.includes(c)).map(([n]) => n));
  return {
    before: pick(diff.before, ['removed', 'moved']),
    after: pick(diff.after, ['added', 'fused', 'moved']),
  };
}

/** Per timed run, the largest per-rank sum of `keep`'s nodes. */
function busiestSum(side: SideTiming, runs: number, keep: (node: string) => boolean) {
  const perRank = new Map<number, number[]>();
  let nodes = 0;
  for (const t of side.nodes) {
    if (!keep(t.node)) continue;
    if (t.rank === 0) nodes++;
    let sums = perRank.get(t.rank);
    if (!sums) perRank.set(t.rank, (sums = new Array<number>(runs).fill(0)));
    t.perRun.forEach((us, i) => (sums![i] += us));
  }
  const series = Array.from({ length: runs }, (_, i) =>
    Math.max(0, ...[...perRank.values()].map((s) => s[i])),
  );
  return { nodes, spread: spreadOf(series) };
}

export function callOf(before: Spread, after: Spread, runs: number): EffectCall {
  if (runs < 2) return 'one run: no spread';
  if (after.max < before.min) return 'faster';
  if (after.min > before.max) return 'slower';
  return 'within the run-to-run spread';
}

function part(timing: Timing, inBefore: (n: string) => boolean, inAfter: (n: string) => boolean): EffectPart {
  const b = busiestSum(timing.before, timing.runs, inBefore);
  const a = busiestSum(timing.after, timing.runs, inAfter);
  return {
    nodes: { before: b.nodes, after: a.nodes },
    before: b.spread,
    after: a.spread,
    call: callOf(b.spread, a.spread, timing.runs),
  };
}

export function measuredEffect(
  timing: Timing,
  changed: { before: ReadonlySet<string>; after: ReadonlySet<string> },
): MeasuredEffect {
  return {
    runs: timing.runs,
    changed: part(
      timing,
      (n) => changed.before.has(n),
      (n) => changed.after.has(n),
    ),
    rest: part(
      timing,
      (n) => !changed.before.has(n),
      (n) => !changed.after.has(n),
    ),
  };
}
