// One rank in worker mode: opens its own device, runs the plan, and meets the other ranks in the
// SharedArrayBuffer for every collective. Entry point of a Node worker thread or a Web Worker.

import type { WorkerReply, WorkerRunMessage } from './rankWorkers.ts';
import { CONTROL_BYTES } from './rankWorkers.ts';
import { executePlan } from './webgpuBackend.ts';
import { RankDevice, openRanks } from './webgpu/rankDevice.ts';
import type { CollectiveStep } from './collectives.ts';
import {
  chunks,
  elementBytes,
  encodeGatheredNorm,
  gatheredNormKernel,
  readAligned,
  submitGatheredSum,
  transferRecorder,
} from './collectives.ts';
import type { TraceEvent } from './backend.ts';
import { asRows, numelOf } from './plan.ts';
import { RunError } from './runError.ts';
import { groupOfRank, resolveGroup } from './rankMesh.ts';
import { allReduceWgsl } from '../wgsl/allReduce.ts';

/** A reusable barrier over R parties in two Int32 words (arrivals, generation). */
function barrier(ctl: Int32Array, parties: number): void {
  const gen = Atomics.load(ctl, 1);
  if (Atomics.add(ctl, 0, 1) === parties - 1) {
    Atomics.store(ctl, 0, 0);
    Atomics.add(ctl, 1, 1);
    Atomics.notify(ctl, 1);
  } else {
    while (Atomics.load(ctl, 1) === gen) Atomics.wait(ctl, 1, gen, 60_000);
  }
}

async function run(m: WorkerRunMessage, post: (r: WorkerReply) => void): Promise<WorkerReply> {
  const { plan, rank, shared, slotBytes } = m;
  const R = plan.ranks;
  const ctl = new Int32Array(shared, 0, 2);
  const slot = (q: number) => new Uint8Array(shared, CONTROL_BYTES + q * slotBytes, slotBytes);
  let gpu: GPU;
  if (typeof navigator !== 'undefined' && navigator.gpu) gpu = navigator.gpu;
  else {
    // Node only: a specifier bundlers do not follow, so the browser build never pulls in Dawn.
    const nodeGpuModule = './nodeGpu.ts';
    gpu = await ((await import(/* @vite-ignore */ nodeGpuModule)) as typeof import('./nodeGpu.ts')).nodeGpu();
  }
  // The device (and the kernels compiled on it) outlives the run: a second run compiles nothing.
  if (
    kept &&
    (kept.lost || kept.rank !== rank || (plan.dtype === 'f16' && !kept.device.features.has('shader-f16')))
  ) {
    kept.destroy();
    kept = null;
  }
  const dev = kept ?? (await openRanks(gpu, 1, { f16: plan.dtype === 'f16' }, rank))[0];
  kept = dev;
  let failed = true;
  try {
    const groupOf = (s: CollectiveStep) => groupOfRank(resolveGroup(plan.mesh, s.group).groups, rank);
    const collective = async (s: CollectiveStep): Promise<TraceEvent[]> =>
      runSharedCollective(s, dev, { world: R, ...groupOf(s) }, m.opts.allreduce, ctl, slot);
    const res = await executePlan(
      plan,
      {
        backend: 'webgpu',
        ranks: R,
        preset: plan.preset.name,
        dtype: plan.dtype,
        allreduce: m.opts.allreduce,
        workers: true,
        seed: m.opts.seed,
        inputs: m.opts.inputs,
        onProgress: (progress) => post({ type: 'progress', rank, progress }),
      },
      [dev],
      collective,
      (s) => {
        const g = groupOf(s);
        return sharedCollectiveKernels(s, g.ranks.length, m.opts.allreduce, g.index, dev.subgroupSize);
      },
    );
    failed = false;
    return {
      type: 'done',
      rank,
      outputs: res.outputs[0],
      events: res.trace.events,
      notes: res.trace.notes,
      device: res.trace.device,
    };
  } finally {
    dev.endRun();
    // A device that failed mid-run is not trusted again.
    if (failed) {
      dev.destroy();
      kept = null;
    }
  }
}

/** This worker's rank device, kept between runs. */
let kept: RankDevice | null = null;

/**
 * The element ranges of a collective through the shared slots: one-shot reduces the whole tensor on
 * every rank; two-shot and ring split it into one part per rank (row blocks for the fused norm,
 * when they start on whole words).
 */
function sharedParts(
  s: CollectiveStep,
  R: number,
  algo: string,
): { split: boolean; parts: [number, number][]; cols: number } {
  const n = numelOf(s.x.shape);
  const cols = s.kernel === 'fused_allreduce_norm' ? asRows(s.x)!.cols : 1;
  const rows = n / cols;
  const rowsPer = Math.ceil(rows / R);
  const split = algo !== 'one-shot' && R > 1 && (s.kernel === 'all_reduce' || (rowsPer * cols) % 8 === 0);
  const parts = !split
    ? [[0, n] as [number, number]]
    : s.kernel === 'all_reduce'
      ? chunks(n, R, 8)
      : Array.from(
          { length: R },
          (_, c) =>
            [Math.min(n, c * rowsPer * cols), Math.min(n, (c + 1) * rowsPer * cols)] as [number, number],
        );
  return { split, parts, cols };
}

/** The kernels this rank dispatches for the collective in `runSharedCollective` (compiled before the run). */
function sharedCollectiveKernels(
  s: CollectiveStep,
  R: number,
  algo: string,
  rank: number,
  subgroupSize: number,
): string[] {
  if (s.kernel === 'reduce_scatter') return [allReduceWgsl(s.x.dtype)];
  if (s.kernel === 'all_gather') return [];
  const { split, parts, cols } = sharedParts(s, R, algo);
  const [a, b] = split ? parts[rank] : parts[0];
  if (b <= a) return [];
  if (s.kernel === 'all_reduce') return [allReduceWgsl(s.x.dtype)];
  return [
    gatheredNormKernel(
      s,
      { rows: (b - a) / cols, cols, rowStart: a / cols, slotStride: Math.ceil((b - a) / 8) * 8 },
      subgroupSize,
    ),
  ];
}

/**
 * Where a rank meets the others in a collective: every rank of the world takes part in each
 * barrier (every rank runs every collective step); it reads the slots of its own group's ranks,
 * `ranks` (global ranks, in group-rank order), where it is at `index`.
 */
interface SharedGroup {
  world: number;
  ranks: number[];
  index: number;
}

/**
 * One collective through the shared slots. one-shot: every rank publishes its tensor and reduces
 * all of its group's. two-shot and ring: every rank reduces its chunk (rows, for the fused norm),
 * publishes the result, and copies its group's others' results; in shared memory a ring's hops
 * would only add barriers, so ring moves the same bytes as two-shot here (noted in the trace).
 */
async function runSharedCollective(
  s: CollectiveStep,
  dev: RankDevice,
  group: SharedGroup,
  algo: string,
  ctl: Int32Array,
  slot: (q: number) => Uint8Array,
): Promise<TraceEvent[]> {
  const R = group.ranks.length;
  const W = group.world;
  const peer = (q: number) => slot(group.ranks[q]);
  const bp = elementBytes(s.x.dtype);
  const events: TraceEvent[] = [];
  const transfer = transferRecorder(s, events, performance.now());
  const note = (bytesRead: number, bytesWritten: number, start: number) =>
    transfer(dev.rank, bytesRead, bytesWritten, start);
  const n = numelOf(s.x.shape);
  if (s.kernel === 'reduce_scatter' || s.kernel === 'all_gather')
    return runSharedScatterGather(s, dev, group, ctl, slot, note, bp, n);
  const { split, parts, cols } = sharedParts(s, R, algo);
  const mine = split ? parts[group.index] : parts[0];
  // Publish the whole tensor; each rank reads the part it reduces from every slot.
  let start = performance.now();
  const bytes = await dev.read(dev.buffer(s.x.storage), s.x.offset * bp, n * bp);
  slot(dev.rank).set(bytes);
  note(n * bp, n * bp, start);
  barrier(ctl, W);
  const [a, b] = mine;
  if (b > a) {
    const len = b - a;
    const slotLen = Math.ceil(len / 8) * 8;
    const g = dev.scratch(R * slotLen * bp + 16, `${s.node} gathered`);
    start = performance.now();
    for (let q = 0; q < R; q++) dev.write(g, q * slotLen * bp, peer(q).subarray(a * bp, b * bp));
    note(R * len * bp, R * len * bp, start);
    if (s.kernel === 'all_reduce')
      submitGatheredSum(dev, s, dev.buffer(s.out), g, { len, ranks: R, at: a, slotLen });
    else
      encodeGatheredNorm(dev, s, R, { rows: len / cols, cols, rowStart: a / cols, slotStride: slotLen }, g);
    await dev.sync();
  }
  barrier(ctl, W); // every rank has read the inputs: the slots may be reused
  if (split) {
    const outs = s.kernel === 'all_reduce' ? [s.out] : [s.out, s.residualOut];
    for (const id of outs) {
      start = performance.now();
      if (b > a) slot(dev.rank).set(await dev.read(dev.buffer(id), a * bp, (b - a) * bp), a * bp);
      barrier(ctl, W);
      for (let q = 0; q < R; q++) {
        const [qa, qb] = parts[q];
        if (q !== group.index && qb > qa)
          dev.write(dev.buffer(id), qa * bp, peer(q).subarray(qa * bp, qb * bp));
      }
      note((b - a) * bp, n * bp, start);
      await dev.sync();
      barrier(ctl, W);
    }
  }
  return events;
}

/**
 * Sequence parallelism's pair through the shared slots. reduce_scatter: every rank publishes its
 * tensor and reduces its own rows from every slot, in rank order (the all-reduce's kernel, so the
 * bits match it). all_gather: every rank publishes its shard and copies every slot into its rows.
 */
async function runSharedScatterGather(
  s: Extract<CollectiveStep, { kernel: 'reduce_scatter' | 'all_gather' }>,
  dev: RankDevice,
  group: SharedGroup,
  ctl: Int32Array,
  slot: (q: number) => Uint8Array,
  note: (read: number, written: number, start: number) => void,
  bp: number,
  n: number,
): Promise<TraceEvent[]> {
  const R = group.ranks.length;
  const peer = (q: number) => slot(group.ranks[q]);
  let start = performance.now();
  slot(dev.rank).set(await readAligned(dev, dev.buffer(s.x.storage), s.x.offset * bp, n * bp));
  note(n * bp, n * bp, start);
  barrier(ctl, group.world);
  start = performance.now();
  if (s.kernel === 'reduce_scatter') {
    const len = n / R,
      a = group.index * len;
    const slotLen = Math.ceil(len / 8) * 8;
    const g = dev.scratch(R * slotLen * bp + 16, `${s.node} gathered`);
    for (let q = 0; q < R; q++) dev.write(g, q * slotLen * bp, peer(q).subarray(a * bp, (a + len) * bp));
    submitGatheredSum(dev, s, dev.buffer(s.out), g, { len, ranks: R, at: 0, slotLen });
    note(R * len * bp, R * len * bp, start);
  } else {
    // The shards assembled on the host and written whole (a shard may not start on a 4-byte boundary).
    const out = new Uint8Array(R * n * bp);
    for (let q = 0; q < R; q++) out.set(peer(q).subarray(0, n * bp), q * n * bp);
    dev.write(dev.buffer(s.out), 0, out);
    note(R * n * bp, R * n * bp, start);
  }
  await dev.sync();
  barrier(ctl, group.world); // every rank has read the slots: they may be reused
  return [];
}

const reply = (post: (r: WorkerReply) => void) => async (m: WorkerRunMessage) => {
  try {
    post(await run(m, post));
  } catch (e) {
    const err = e instanceof RunError ? e : new RunError('validation', String((e as Error)?.message ?? e));
    post({ type: 'error', rank: m.rank, kind: err.kind, message: err.message, node: err.node, op: err.op });
  }
};

if (
  typeof process !== 'undefined' &&
  process.versions?.node &&
  typeof window === 'undefined' &&
  typeof WorkerGlobalScope === 'undefined'
) {
  const { parentPort } = await import('node:worker_threads');
  if (parentPort) {
    const port = parentPort;
    port.on(
      'message',
      reply((r) => port.postMessage(r)),
    );
  }
} else {
  const scope = self as unknown as {
    onmessage: ((e: MessageEvent) => void) | null;
    postMessage(m: unknown): void;
  };
  scope.onmessage = (e) => void reply((r) => scope.postMessage(r))(e.data as WorkerRunMessage);
}
