// The one name of a run, shown wherever its numbers are (Run, Results, Timeline, Cost model,
// Compare fixes), so two tabs never show two runs or two methods without saying so.

import type { Timing } from '../../runtime/timing.ts';
import type { RunSettings } from '../store/runSlice.ts';

/** How every tab's times are taken (runtime/timing.ts): the medians of N runs after a warm-up. */
export function timingMethod(runs: number): string {
  return `median of ${runs} timed run${runs === 1 ? '' : 's'} after a warm-up`;
}

/** `run 2: cpu, 2 ranks, tiny · median of 3 timed runs after a warm-up` */
export function runCaption(run: { number: number; settings: RunSettings; timing: Timing | null }): string {
  const { backend, ranks, preset } = run.settings;
  const method = run.timing ? ` · ${timingMethod(run.timing.runs)}` : '';
  return `run ${run.number}: ${backend}, ${ranks} rank${ranks === 1 ? '' : 's'}, ${preset}${method}`;
}
