// The contract between the page and the run worker: the CPU reference runs there, off the page's
// thread, so a long run leaves the app responsive and can be cancelled by ending the worker.

import type { Graph } from '../../graph/ir.ts';
import type { CompareReport, RunOptions, RunProgress } from '../../runtime/index.ts';
import type { Timing } from '../../runtime/timing.ts';
import type { ProfilerTrace } from '../../graph/artifacts/profilerTrace.ts';

export interface RunRequest {
  type: 'run';
  before: Graph;
  after: Graph;
  passes: string[];
  settings: Omit<RunOptions, 'onProgress' | 'gpu'>;
  timedRuns: number;
}

/** Every node's value before and after, on the CPU reference, for the |Δ| overlay (runtime/nodeDeltas.ts). */
export interface DeltasRequest {
  type: 'deltas';
  before: Graph;
  after: Graph;
  /** The diff's after-name → before-name pairs. */
  afterToBefore: [string, string][];
  settings: Omit<RunOptions, 'onProgress' | 'gpu'>;
}

/** A torch.profiler trace read as a stream off the page's thread (graph/artifacts/profilerTrace.ts). */
export interface TraceRequest {
  type: 'trace';
  file: Blob;
}

export type RunReply =
  | { type: 'progress'; progress: RunProgress }
  | { type: 'timed'; done: number; total: number }
  | { type: 'done'; report: CompareReport; timing: Timing }
  | { type: 'deltas'; deltas: [string, number][] }
  | { type: 'deltas-progress'; fraction: number }
  | { type: 'trace-progress'; read: number; total: number }
  | { type: 'trace'; trace: ProfilerTrace }
  | { type: 'error'; message: string };
