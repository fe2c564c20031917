// The "Why didn't it fire?" panel's groups: every pass's refusals in the shown graph, one group
// per pass in the pass list's (pipeline) order, leaving out the all-reduce fusion (the panel's
// own list) and the entries that only say a site would fuse.

import type { Diagnostic } from '../../graph/passes/pipeline.ts';
import { PASS_DESCRIPTIONS, type PassName } from '../../graph/passes/pipeline.ts';

/** The pass whose refusals are the panel's all-reduce list itself. */
export const ALL_REDUCE_FUSION: PassName = 'allreduce-rmsnorm';

/** An all-reduce the fusion pass would take as it stands is not a "why not". */
export function isFusable(d: Diagnostic): boolean {
  return d.blocker === undefined && d.fix === `run ${ALL_REDUCE_FUSION}`;
}

export function refusalsByPass(
  passWhy: Record<string, Diagnostic[]>,
): { pass: PassName; refused: Diagnostic[] }[] {
  return (Object.keys(PASS_DESCRIPTIONS) as PassName[])
    .filter((pass) => pass !== ALL_REDUCE_FUSION)
    .map((pass) => ({ pass, refused: (passWhy[pass] ?? []).filter((d) => !isFusable(d)) }))
    .filter((g) => g.refused.length > 0);
}
