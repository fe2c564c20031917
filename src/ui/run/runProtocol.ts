// The contract between the page and the run worker: the CPU reference runs there, off the page's
// thread, so a long run leaves the app responsive and can be cancelled by ending the worker.

import type { Graph } from '../../graph/ir.ts';
import type { CompareReport, RunOptions, RunProgress } from '../../runtime/index.ts';
import type { Timing } from '../../runtime/timing.ts';

export interface RunRequest {
  type: 'run';
  before: Graph;
  after: Graph;
  passes: string[];
  settings: Omit<RunOptions, 'onProgress' | 'gpu'>;
  timedRuns: number;
}

export type RunReply =
  | { type: 'progress'; progress: RunProgress }
  | { type: 'timed'; done: number; total: number }
  | { type: 'done'; report: CompareReport; timing: Timing }
  | { type: 'error'; message: string };
