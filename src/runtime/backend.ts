// What every backend implements, and the shared run types. A backend takes a plan (built once,
// on the host) and runs it on every rank.

import type { FusedNormRounding, Plan } from './plan.ts';
import type { HostTensor } from './hostTensor.ts';

export type BackendName = 'webgpu' | 'cpu' | 'agent';

export interface RunProgress {
  phase: 'plan' | 'compile' | 'upload' | 'run' | 'download';
  done: number;
  total: number;
}

export interface RunOptions {
  backend: BackendName;
  /** The TP group's size. */
  ranks: number;
  /**
   * The data-parallel size (default 1, src/runtime/rankMesh.ts): the run simulates dp × ranks
   * ranks, laid out as vLLM lays them (TP innermost), and 'dp:0' collectives span dp of them.
   */
  dp?: number;
  preset: 'tiny' | 'layer';
  dtype: 'bf16' | 'f32' | 'f16';
  allreduce: 'ring' | 'one-shot' | 'two-shot';
  workers: boolean;
  seed?: number;
  /** Binds the symbolic token dim; default per preset. */
  tokens?: number;
  inputs?: Map<string, HostTensor>;
  onProgress?: (p: RunProgress) => void;
  /** The fused all-reduce + norm's rounding; default 'once' (the agent runs only 'once'). */
  fusedNormRounding?: FusedNormRounding;
  /**
   * Plan as for this backend (default: `backend`): 'agent' feeds the kernels the native worker
   * lacks, so the CPU reference can check an agent run node for node.
   */
  planFor?: BackendName;
  /** navigator.gpu or Dawn's. */
  gpu?: GPU;
}

/** A small run: the tiny preset on 2 ranks, bf16, one-shot all-reduce, on one thread (tests, compare-fixes). */
export const TINY_RUN = {
  ranks: 2,
  preset: 'tiny',
  dtype: 'bf16',
  allreduce: 'one-shot',
  workers: false,
} as const satisfies Omit<RunOptions, 'backend'>;

export interface TraceEvent {
  rank: number;
  node: string;
  op: string;
  kind: 'kernel' | 'transfer' | 'fed';
  start_us: number;
  dur_us: number;
  bytesRead: number;
  bytesWritten: number;
  timing: 'timestamp-query' | 'host' | 'cuda-event';
}

export interface Trace {
  backend: string;
  /** Adapter / GPU name. */
  device: string;
  ranks: number;
  events: TraceEvent[];
  /** Nodes fed from seeded inputs (no kernel, e.g. attention). */
  fed: string[];
  notes: string[];
}

export interface RunResult {
  /** Per rank: output name → tensor. */
  outputs: Map<string, HostTensor>[];
  trace: Trace;
}

export interface Backend {
  readonly name: BackendName;
  /** Run the plan on every rank. Throws RunError. */
  run(plan: Plan, opts: RunOptions): Promise<RunResult>;
}

export const DEFAULT_SEED = 0x5eed;
