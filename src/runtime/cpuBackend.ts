// The `cpu` backend: the reference. All ranks run in lockstep on the calling thread; a
// collective sums (or gathers) the tensors of each group of ranks its process group spans, in
// rank order.

import type { Backend, RunOptions, RunResult, TraceEvent } from './backend.ts';
import { DEFAULT_SEED } from './backend.ts';
import type { CollectiveStep, Plan, Step } from './plan.ts';
import { DTYPE_BYTES, kernelCost } from '../graph/opTable.ts';
import { isCollective, numelOf, outputsOf } from './plan.ts';
import { RunError } from './runError.ts';
import { costRanks } from './rankMesh.ts';
import { hostValues, toHostTensor, type HostTensor } from './hostTensor.ts';
import { seedRule, seedStream, seededArray } from './weights.ts';
import { readView, type HostArray } from './cpuKernels.ts';
import { runCollective } from './cpuCollectives.ts';
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
        events,
        fed: plan.fed,
        notes: [],
      },
    };
  },
};

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
