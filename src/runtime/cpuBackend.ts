// The `cpu` backend: the reference. All ranks run in lockstep on the calling thread; a
// collective sums (or gathers) the tensors of each group of ranks its process group spans, in
// rank order.

import type { Backend, RunOptions, RunResult, TraceEvent } from './backend.ts';
import { DEFAULT_SEED } from './backend.ts';
import type { CollectiveStep, Plan, Step } from './plan.ts';
import { DTYPE_BYTES, kernelCost } from '../graph/opTable.ts';
import { asRows, isCollective, numelOf, outputsOf } from './plan.ts';
import { RunError } from './runError.ts';
import { costRanks, resolveGroup, type RankMesh } from './rankMesh.ts';
import { hostValues, toHostTensor, type HostTensor } from './hostTensor.ts';
import { seedRule, seedStream, seededArray } from './weights.ts';
import { cpuResidualNorm, readView, rounded, type HostArray } from './cpuKernels.ts';
import { cpuStepContext, type CpuStepContext, type CpuSteps } from './cpuStepContext.ts';
import { TENSOR_STEPS } from './cpuTensorSteps.ts';
import { NORM_STEPS } from './cpuNormSteps.ts';
import { QUANT_STEPS } from './cpuQuantSteps.ts';
import { LAYER_STEPS } from './cpuLayerSteps.ts';

export function inputTensorFor(
  step: Extract<Step, { kernel: 'seed' }>,
  plan: Plan,
  inputs: Map<string, HostTensor> | undefined,
): HostTensor | undefined {
  const given = inputs?.get(step.name);
  if (!given) return undefined;
  const st = plan.storages.get(step.out)!;
  if (given.shape.join() !== st.shape.join()) {
    throw new RunError(
      'input',
      `input '${step.name}': shape [${given.shape}] but the run needs [${st.shape}] (preset ${plan.preset.name}, T=${plan.tokens})`,
      { node: step.node },
    );
  }
  return given;
}

export const cpuBackend: Backend = {
  name: 'cpu',
  async run(plan: Plan, opts: RunOptions): Promise<RunResult> {
    const seed = opts.seed ?? DEFAULT_SEED;
    const R = plan.ranks;
    const mem: Map<string, HostArray>[] = Array.from({ length: R }, () => new Map());
    const events: TraceEvent[] = [];
    const t0 = performance.now();
    for (let si = 0; si < plan.steps.length; si++) {
      const s = plan.steps[si];
      opts.onProgress?.({ phase: 'run', done: si, total: plan.steps.length });
      if (isCollective(s)) {
        const start = performance.now();
        const io = runCollective(s, mem, plan.mesh);
        const dur = (performance.now() - start) * 1000;
        for (let r = 0; r < R; r++)
          events.push(ev(r, s, 'kernel', start - t0, dur, io.bytesRead, io.bytesWritten));
      } else {
        for (let r = 0; r < R; r++) {
          const start = performance.now();
          runStep(s, mem[r], plan, r, seed, opts.inputs);
          const outBytes = outputsOf(s).reduce((a, id) => {
            const st = plan.storages.get(id)!;
            return a + st.numel * DTYPE_BYTES[st.dtype];
          }, 0);
          const cost = kernelCost(s, outBytes, costRanks(plan.mesh, s));
          events.push(
            ev(
              r,
              s,
              s.kernel === 'seed' ? 'fed' : 'kernel',
              start - t0,
              (performance.now() - start) * 1000,
              cost.bytesRead,
              cost.bytesWritten,
            ),
          );
        }
      }
      for (const id of plan.freeAfter.get(si) ?? []) for (const m of mem) m.delete(id);
    }
    const outputs = mem.map(
      (m) =>
        new Map(
          plan.outputs.map((o) => [
            o.name,
            toHostTensor(o.view.dtype, o.view.shape, readView(o.view, m.get(o.view.storage)!)),
          ]),
        ),
    );
    return {
      outputs,
      trace: {
        backend: 'cpu',
        device: 'CPU reference (f64 accumulation)',
        ranks: R,
        events: events.filter((e) => e.kind !== 'fed' || e.rank === 0 || true),
        fed: plan.fed,
        notes: [],
      },
    };
  },
};

/**
 * A collective over every rank's memory at once, each group of its process group (rankMesh.ts)
 * apart; what each rank reads and writes, in bytes.
 */
function runCollective(
  s: CollectiveStep,
  mem: Map<string, HostArray>[],
  mesh: RankMesh,
): { bytesRead: number; bytesWritten: number } {
  let io = { bytesRead: 0, bytesWritten: 0 };
  for (const ranks of resolveGroup(mesh, s.group).groups)
    io = runGroupCollective(
      s,
      ranks.map((r) => mem[r]),
    );
  return io;
}

/** The collective among the ranks whose memories `mem` holds, in group-rank order. */
function runGroupCollective(
  s: CollectiveStep,
  mem: Map<string, HostArray>[],
): { bytesRead: number; bytesWritten: number } {
  const R = mem.length;
  const xs = mem.map((m) => readView(s.x, m.get(s.x.storage)!));
  const bytes = xs[0].length * DTYPE_BYTES[s.x.dtype];
  if (s.kernel === 'all_gather') {
    const n = xs[0].length;
    for (let r = 0; r < R; r++) {
      const out = new Float64Array(n * R);
      for (let q = 0; q < R; q++) out.set(xs[q], q * n);
      mem[r].set(s.out, rounded(s.x.dtype, out));
    }
    return { bytesRead: bytes * R, bytesWritten: bytes * R };
  }
  if (s.kernel === 'reduce_scatter') {
    // Rank r keeps rows [r·T/R, (r+1)·T/R) of the sum, summed in rank order as the all-reduce does.
    const len = xs[0].length / R;
    for (let r = 0; r < R; r++) {
      const sum = new Float64Array(len);
      for (let q = 0; q < R; q++) for (let i = 0; i < len; i++) sum[i] += xs[q][r * len + i];
      mem[r].set(s.out, rounded(s.x.dtype, sum));
    }
    return { bytesRead: bytes, bytesWritten: bytes / R };
  }
  const sum = new Float64Array(xs[0].length);
  for (let r = 0; r < R; r++) for (let i = 0; i < sum.length; i++) sum[i] += xs[r][i];
  const ar = rounded(s.x.dtype, sum);
  for (let r = 0; r < R; r++) {
    if (s.kernel === 'all_reduce') mem[r].set(s.out, ar);
    else {
      const rows = asRows(s.x)!;
      const { out, res } = cpuResidualNorm(
        Float64Array.from(ar),
        readView(s.residual, mem[r].get(s.residual.storage)!),
        readView(s.w, mem[r].get(s.w.storage)!),
        rows.rows,
        rows.cols,
        s.eps,
        s.x.dtype,
        s.normRounding !== 'as-unfused',
      );
      mem[r].set(s.out, rounded(s.x.dtype, out));
      mem[r].set(s.residualOut, rounded(s.x.dtype, res));
    }
  }
  return {
    bytesRead: numelOf(s.x.shape) * DTYPE_BYTES[s.x.dtype] * R,
    bytesWritten: numelOf(s.x.shape) * DTYPE_BYTES[s.x.dtype],
  };
}

function ev(
  rank: number,
  s: Step,
  kind: TraceEvent['kind'],
  startMs: number,
  durUs: number,
  bytesRead: number,
  bytesWritten: number,
): TraceEvent {
  return {
    rank,
    node: s.node,
    op: s.op,
    kind,
    start_us: startMs * 1000,
    dur_us: durUs,
    bytesRead,
    bytesWritten,
    timing: 'host',
  };
}

/** A graph input: the tensor the user gave by name, else seeded values of its role. */
function seedStep(s: Extract<Step, { kernel: 'seed' }>, c: CpuStepContext): void {
  const given = inputTensorFor(s, c.plan, c.inputs);
  if (given) {
    c.store(s.out, hostValues(given));
    return;
  }
  const { shape, dtype } = c.out;
  c.mem.set(
    s.out,
    seededArray(
      c.seed,
      seedStream(s.name, s.perRank, c.rank),
      numelOf(shape),
      seedRule(s.role, shape),
      dtype,
      s.range,
    ),
  );
}

/** A step that runs on each rank alone; the collectives run across ranks (runCollective). */
type RankStep = Exclude<Step, CollectiveStep>;

/** Every rank-local kernel's step, from each kernel family's part. */
const CPU_STEPS: CpuSteps<RankStep['kernel']> = {
  seed: seedStep,
  ...TENSOR_STEPS,
  ...NORM_STEPS,
  ...QUANT_STEPS,
  ...LAYER_STEPS,
};

function runStep(
  s: RankStep,
  m: Map<string, HostArray>,
  plan: Plan,
  rank: number,
  seed: number,
  inputs?: Map<string, HostTensor>,
): void {
  const c = cpuStepContext(s, m, plan, rank, seed, inputs);
  (CPU_STEPS[s.kernel] as (s: RankStep, c: CpuStepContext) => void)(s, c);
}
