// Running graphs: plan on the host, then hand the plan to a backend that runs it on every rank.
// `compareRewrite` runs a graph before and after passes on the same seeded inputs.

import type { Graph } from '../graph/ir.ts';
import { buildPlan, type Plan } from './plan.ts';
import { RunError } from './runError.ts';
import type { Backend, BackendName, RunOptions, RunResult, Trace } from './backend.ts';
import { cpuBackend } from './cpuBackend.ts';
import { compareOutputs, type OutputComparison } from './compareOutputs.ts';

export type { BackendName, RunOptions, TraceEvent, Trace, RunResult, Backend, RunProgress } from './backend.ts';
export type { HostTensor } from './hostTensor.ts';
export type { OutputComparison } from './compareOutputs.ts';
export { RunError } from './runError.ts';
export type { Plan } from './plan.ts';

const BACKENDS = new Map<BackendName, () => Promise<Backend>>([
  ['cpu', async () => cpuBackend],
  ['webgpu', async () => (await import('./webgpuBackend.ts')).webgpuBackend],
]);

/** Plug in a backend (the agent client registers 'agent'). */
export function registerBackend(name: BackendName, load: () => Promise<Backend>): void {
  BACKENDS.set(name, load);
}

export function planGraph(g: Graph, opts: Pick<RunOptions, 'preset' | 'dtype' | 'ranks' | 'tokens'>): Plan {
  if (opts.dtype !== 'bf16' && opts.dtype !== 'f32' && opts.dtype !== 'f16') throw new RunError('input', `dtype must be bf16, f32 or f16, got '${opts.dtype}'`);
  return buildPlan(g, { preset: opts.preset, dtype: opts.dtype, ranks: opts.ranks, tokens: opts.tokens });
}

export async function runGraph(g: Graph, opts: RunOptions): Promise<RunResult> {
  const load = BACKENDS.get(opts.backend);
  if (!load) throw new RunError('input', `backend '${opts.backend}' is not available (have: ${[...BACKENDS.keys()].join(', ')})`);
  opts.onProgress?.({ phase: 'plan', done: 0, total: 1 });
  const plan = planGraph(g, opts);
  opts.onProgress?.({ phase: 'plan', done: 1, total: 1 });
  const backend = await load();
  return backend.run(plan, opts);
}

export interface CompareReport { passes: string[]; outputs: OutputComparison[]; before: Trace; after: Trace; ok: boolean }

/** Run `before` and `after` on the same seeded inputs and compare outputs position by position. */
export async function compareGraphs(before: Graph, after: Graph, passes: string[], opts: RunOptions): Promise<CompareReport> {
  const a = await runGraph(before, opts);
  const b = await runGraph(after, opts);
  const FUSED = 'vllm.flashinfer_trtllm_fused_allreduce_norm.default';
  const sites = (g: Graph) => g.nodes.filter((n) => n.op === FUSED || (n.op === 'higher_order.auto_functionalized' && JSON.stringify(n.args[0]).includes('flashinfer_trtllm_fused_allreduce_norm'))).length;
  const outputs = compareOutputs(a, b, sites(after) - sites(before));
  return { passes, outputs, before: a.trace, after: b.trace, ok: outputs.length > 0 && outputs.every((o) => o.pass) };
}

export async function compareRewrite(g: Graph, passes: string[], opts: RunOptions): Promise<CompareReport> {
  const { rewriteForCompare } = await import('./rewriteForCompare.ts');
  return compareGraphs(g, rewriteForCompare(g, passes, opts.ranks), passes, opts);
}
