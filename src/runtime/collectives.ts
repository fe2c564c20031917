// All-reduce across rank devices, through the host. Whatever the algorithm, every reduced element
// is computed by the same WGSL kernel from the ranks' raw values gathered in rank order, so
// one-shot, two-shot and ring give identical bits, and the sum never depends on which rank owns
// which chunk.
//   one-shot  every rank gathers every peer's whole tensor and reduces all of it: (N−1)·S in per rank
//   two-shot  reduce-scatter (rank r gathers chunk r from all ranks, reduces it) + all-gather:
//             2(N−1)/N·S per rank
//   ring      the same two phases as N−1 neighbour hops each. A textbook ring forwards partial sums,
//             whose order depends on the chunk; here the hops forward the raw chunk copies so the
//             owner sums them in rank order ((N−1)/2·S per rank in the reduce-scatter phase instead
//             of (N−1)/N·S), then the reduced chunks travel the ring.
// The fused all-reduce + RMSNorm runs as one kernel over the gathered rows: one-shot gathers all
// rows; two-shot and ring give each rank a block of rows, then all-gather both outputs.
// Each runs among the ranks of one group of the process group it names (rankMesh.ts), each group
// apart: "rank" below is a rank's place in its group.

import type { TraceEvent } from './backend.ts';
import type { CollectiveStep, Plan } from './plan.ts';
import { asRows, numelOf } from './plan.ts';
import { allReduceWgsl, ALLREDUCE_PARAMS, ALLREDUCE_WG } from '../wgsl/allReduce.ts';
import { grid1d } from '../wgsl/elementwise.ts';
import { encodeNorm, normKernel } from './webgpu/encoders.ts';
import type { RankDevice } from './webgpu/rankDevice.ts';
import { NORM_ROWS_DEFAULT } from '../wgsl/rmsNormRows.ts';
import { groupOfRank, resolveGroup, type RankMesh } from './rankMesh.ts';

export type { CollectiveStep } from './plan.ts';
export type AllReduceAlgorithm = 'ring' | 'one-shot' | 'two-shot';

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

/** Element ranges, one per rank, aligned to 8 elements (16 bytes of bf16) so copies stay word-aligned. */
export function chunks(n: number, ranks: number, align: number): [number, number][] {
  const cs = roundUp(Math.ceil(n / ranks), align);
  return Array.from(
    { length: ranks },
    (_, c) => [Math.min(n, c * cs), Math.min(n, (c + 1) * cs)] as [number, number],
  );
}

/** Rank blocks of the fused all-reduce + norm: two-shot and ring give each rank a block of rows when blocks start on whole words, else one block that every rank normalizes. */
function fusedRowBlocks(
  rows: number,
  cols: number,
  R: number,
  algo: AllReduceAlgorithm,
): { blocked: boolean; blocks: [number, number][] } {
  const rowsPer = algo === 'one-shot' ? rows : Math.ceil(rows / R);
  const blocked = algo !== 'one-shot' && (rowsPer * cols) % 8 === 0 && R > 1;
  const blocks: [number, number][] = blocked
    ? Array.from(
        { length: R },
        (_, c) => [Math.min(rows, c * rowsPer), Math.min(rows, (c + 1) * rowsPer)] as [number, number],
      )
    : [[0, rows]];
  return { blocked, blocks };
}

/**
 * The kernels rank `rank` dispatches for this collective in `runCollective` (compiled before the
 * run): those of its place in its group of the step's process group.
 */
export function collectiveKernels(
  s: CollectiveStep,
  mesh: RankMesh,
  algo: AllReduceAlgorithm,
  rank: number,
  subgroupSize: number,
): string[] {
  const group = groupOfRank(resolveGroup(mesh, s.group).groups, rank);
  return groupCollectiveKernels(s, group.ranks.length, algo, group.index, subgroupSize);
}

/** The kernels the rank at `rank` of a group of R dispatches for this collective. */
export function groupCollectiveKernels(
  s: CollectiveStep,
  R: number,
  algo: AllReduceAlgorithm,
  rank: number,
  subgroupSize: number,
): string[] {
  const d = s.x.dtype;
  if (s.kernel === 'reduce_scatter') return numelOf(s.x.shape) > 0 ? [allReduceWgsl(d)] : [];
  if (s.kernel === 'all_gather') return [];
  const { blocked, parts, cols } = reduceParts(s, R, algo);
  return parts
    .filter(([a, b], c) => b > a && (!blocked || c === rank))
    .map(([a, b]) =>
      s.kernel === 'all_reduce'
        ? allReduceWgsl(d)
        : gatheredNormKernel(
            s,
            { rows: (b - a) / cols, cols, rowStart: a / cols, slotStride: roundUp(b - a, 8) },
            subgroupSize,
          ),
    );
}

type ReducingStep = Extract<CollectiveStep, { kernel: 'all_reduce' | 'fused_allreduce_norm' }>;

/**
 * The element ranges an all-reduce (rows, for the fused norm) is reduced in, `cols` elements a
 * row: blocked, range c belongs to rank c and is all-gathered after; else every rank reduces each.
 */
function reduceParts(
  s: ReducingStep,
  R: number,
  algo: AllReduceAlgorithm,
): { blocked: boolean; parts: [number, number][]; cols: number } {
  if (s.kernel === 'all_reduce') {
    const n = numelOf(s.x.shape);
    return algo === 'one-shot'
      ? { blocked: false, parts: [[0, n]], cols: 1 }
      : { blocked: true, parts: chunks(n, R, 8), cols: 1 };
  }
  const x = asRows(s.x)!;
  const { blocked, blocks } = fusedRowBlocks(x.rows, x.cols, R, algo);
  return { blocked, parts: blocks.map(([r0, r1]) => [r0 * x.cols, r1 * x.cols]), cols: x.cols };
}

/** Bytes per element as a collective stores it: bf16 and f16 two to a 4-byte word. */
export const elementBytes = (d: CollectiveStep['x']['dtype']): number => (d === 'f32' || d === 'i32' ? 4 : 2);

/** Records one host copy of a collective: who read and wrote how many bytes, from `start` until now. */
export type Transfer = (rank: number, bytesRead: number, bytesWritten: number, start: number) => void;

/** A Transfer that appends collective `s`'s copies to `events` as 'transfer' events timed from `t0`. */
export function transferRecorder(s: CollectiveStep, events: TraceEvent[], t0: number): Transfer {
  return (rank, bytesRead, bytesWritten, start) => {
    events.push({
      rank,
      node: s.node,
      op: s.op,
      kind: 'transfer',
      start_us: (start - t0) * 1000,
      dur_us: (performance.now() - start) * 1000,
      bytesRead,
      bytesWritten,
      timing: 'host',
    });
  };
}

/**
 * Sums the R ranks' copies of `len` elements, gathered `slotLen` elements apart in `g`, into
 * elements [at, at + len) of `out` — the all-reduce's one kernel, so every path gives the same bits.
 */
export function submitGatheredSum(
  dev: RankDevice,
  s: CollectiveStep,
  out: GPUBuffer,
  g: GPUBuffer,
  chunk: { len: number; ranks: number; at: number; slotLen: number },
): void {
  const meta = ALLREDUCE_PARAMS.words({
    n: chunk.len,
    ranks: chunk.ranks,
    outOffset: chunk.at,
    slotStride: chunk.slotLen,
  });
  dev.submit(s.node, s.op, (_e, pass) =>
    pass(allReduceWgsl(s.x.dtype), [out, g], meta, grid1d(Math.ceil(chunk.len / 2), ALLREDUCE_WG)),
  );
}

type FusedNormStep = Extract<CollectiveStep, { kernel: 'fused_allreduce_norm' }>;

/** Rows [rowStart, rowStart + rows) of a [*, cols] tensor, each rank's copy `slotStride` elements after the previous one. */
export interface GatheredRows {
  rows: number;
  cols: number;
  rowStart: number;
  slotStride: number;
}

function gatheredNormParams(s: FusedNormStep, g: GatheredRows) {
  const res = asRows(s.residual)!;
  return {
    rows: g.rows,
    cols: g.cols,
    xOffset: 0,
    xRowStride: g.cols,
    resOffset: res.offset,
    resRowStride: res.rowStride,
    wOffset: s.w.offset,
    rowStart: g.rowStart,
    rankSlotStride: g.slotStride,
  };
}

/** The fused all-reduce + residual + RMSNorm kernel over gathered rows (its source, compiled before the run). */
export function gatheredNormKernel(s: FusedNormStep, g: GatheredRows, subgroupSize: number): string {
  return normKernel(
    'allreduce',
    s.x.dtype,
    gatheredNormParams(s, g),
    subgroupSize,
    NORM_ROWS_DEFAULT,
    s.normRounding,
  ).code;
}

/** That kernel on `dev`, reading the ranks' copies from `gathered`. */
export function encodeGatheredNorm(
  dev: RankDevice,
  s: FusedNormStep,
  ranks: number,
  g: GatheredRows,
  gathered: GPUBuffer,
): void {
  encodeNorm(
    dev,
    s.node,
    s.op,
    'allreduce',
    s.x.dtype,
    { ...gatheredNormParams(s, g), eps: s.eps, ranks },
    [
      dev.buffer(s.out),
      dev.buffer(s.residualOut),
      gathered,
      dev.buffer(s.residual.storage),
      dev.buffer(s.w.storage),
    ],
    NORM_ROWS_DEFAULT,
    s.normRounding,
  );
}

/**
 * Collective `s` on every rank: each group of the ranks its process group spans (rankMesh.ts) runs
 * it among its own devices, in group-rank order, one group after another.
 */
export async function runCollective(
  s: CollectiveStep,
  ranks: RankDevice[],
  algo: AllReduceAlgorithm,
  plan: Plan,
): Promise<TraceEvent[]> {
  const events: TraceEvent[] = [];
  for (const group of resolveGroup(plan.mesh, s.group).groups) {
    const devices = group.map((r) => ranks[r]);
    const recorded = transferRecorder(s, events, performance.now());
    const transfer: Transfer = (q, ...rest) => recorded(devices[q].rank, ...rest);
    if (s.kernel === 'reduce_scatter' || s.kernel === 'all_gather')
      await scatterOrGather(s, devices, transfer);
    else await reduceByParts(s, devices, algo, transfer);
  }
  for (const r of ranks) await r.sync();
  return events;
}

/**
 * Sequence parallelism's pair: rank c's share is rows [c·T/R, (c+1)·T/R), len elements. A share
 * need not start on a 4-byte boundary (bf16, odd widths): every rank's whole tensor is read once
 * and the shares are cut on the host; each output is written whole.
 */
async function scatterOrGather(
  s: Extract<CollectiveStep, { kernel: 'reduce_scatter' | 'all_gather' }>,
  ranks: RankDevice[],
  transfer: Transfer,
): Promise<void> {
  const R = ranks.length;
  const bp = elementBytes(s.x.dtype);
  const n = numelOf(s.x.shape);
  const len = s.kernel === 'reduce_scatter' ? n / R : n;
  let start = performance.now();
  const whole = await Promise.all(
    ranks.map(async (r, q) => {
      await r.sync();
      const bytes = await readAligned(r, r.buffer(s.x.storage), s.x.offset * bp, n * bp);
      transfer(q, n * bp, 0, start);
      return bytes;
    }),
  );
  if (s.kernel === 'reduce_scatter') {
    const slot = roundUp(len, 8);
    for (let c = 0; c < R; c++) {
      // Chunk c's raw copies, in rank order, reduced on its owner by the all-reduce's kernel: the same bits.
      start = performance.now();
      const g = ranks[c].scratch(R * slot * bp, `${s.node} gathered`);
      whole.forEach((bytes, q) =>
        ranks[c].write(g, q * slot * bp, bytes.subarray(c * len * bp, (c + 1) * len * bp)),
      );
      submitGatheredSum(ranks[c], s, ranks[c].buffer(s.out), g, { len, ranks: R, at: 0, slotLen: slot });
      transfer(c, 0, R * len * bp, start);
    }
  } else {
    // Every rank's shard in rank order, written whole to every rank's output.
    const out = new Uint8Array(R * n * bp);
    whole.forEach((bytes, q) => out.set(bytes, q * n * bp));
    for (let q = 0; q < R; q++) {
      start = performance.now();
      ranks[q].write(ranks[q].buffer(s.out), 0, out);
      transfer(q, 0, (R - 1) * n * bp, start);
    }
  }
}

/**
 * all_reduce and the fused all-reduce + residual + RMSNorm: each part gathered from every rank onto
 * its reducers and reduced there by one kernel (the sum, or the fused norm over the part's rows);
 * a part one rank reduced is then all-gathered from it (ring: hop by hop).
 */
async function reduceByParts(
  s: ReducingStep,
  ranks: RankDevice[],
  algo: AllReduceAlgorithm,
  transfer: Transfer,
): Promise<void> {
  const R = ranks.length;
  const bp = elementBytes(s.x.dtype);
  const { blocked, parts, cols } = reduceParts(s, R, algo);
  const outputs = s.kernel === 'all_reduce' ? [s.out] : [s.out, s.residualOut];
  for (let c = 0; c < parts.length; c++) {
    const [a, b] = parts[c];
    if (b <= a) continue;
    const len = b - a;
    const gather = {
      at: a,
      len,
      ringFrom: algo === 'ring' && blocked ? c : -1,
      reducers: blocked ? [c] : ranks.map((_, i) => i),
      slackBytes: s.kernel === 'all_reduce' ? 0 : 16,
    };
    await gatherOnto(s, ranks, transfer, gather, (dev, g, slotLen) =>
      s.kernel === 'all_reduce'
        ? submitGatheredSum(dev, s, dev.buffer(s.out), g, { len, ranks: R, at: a, slotLen })
        : encodeGatheredNorm(
            dev,
            s,
            R,
            { rows: len / cols, cols, rowStart: a / cols, slotStride: slotLen },
            g,
          ),
    );
    if (blocked)
      for (const id of outputs) await allGather(ranks, c, id, a * bp, len * bp, algo === 'ring', transfer);
  }
}

/**
 * Elements [at, at + len) of x from every rank, in rank order (hop by hop around the ring after
 * rank `ringFrom`, or each read directly when it is -1), copied onto each of `reducers` into a
 * scratch buffer `slotLen` elements a rank (plus `slackBytes`), where `reduce` dispatches its kernel.
 */
async function gatherOnto(
  s: CollectiveStep,
  ranks: RankDevice[],
  transfer: Transfer,
  chunk: { at: number; len: number; ringFrom: number; reducers: number[]; slackBytes: number },
  reduce: (dev: RankDevice, g: GPUBuffer, slotLen: number) => void,
): Promise<void> {
  const R = ranks.length;
  const bp = elementBytes(s.x.dtype);
  const slot = roundUp(chunk.len, 8);
  const start = performance.now();
  const copies = await gatherChunk(
    ranks,
    (q) => ranks[q].buffer(s.x.storage),
    (s.x.offset + chunk.at) * bp,
    chunk.len * bp,
    chunk.ringFrom,
    transfer,
  );
  for (const r of chunk.reducers) {
    const g = ranks[r].scratch(R * slot * bp + chunk.slackBytes, `${s.node} gathered`);
    copies.forEach((bytes, q) => ranks[r].write(g, q * slot * bp, bytes));
    reduce(ranks[r], g, slot);
    transfer(r, 0, R * chunk.len * bp, start);
  }
}

/** Bytes [off, off+len) of a buffer, read from the 4-byte boundary below `off` (buffer copies need it). */
export async function readAligned(
  r: RankDevice,
  buf: GPUBuffer,
  off: number,
  len: number,
): Promise<Uint8Array> {
  const lo = off - (off % 4);
  const bytes = await r.read(buf, lo, len + (off - lo));
  return bytes.subarray(off - lo, off - lo + len);
}

/**
 * Every rank's copy of bytes [off, off+len) of a buffer, in rank order. With `ringFrom` = c the
 * copies are collected hop by hop around the ring starting at rank c+1 and ending at c, the packet
 * growing by one copy per hop; otherwise each rank's copy is read directly.
 */
async function gatherChunk(
  ranks: RankDevice[],
  bufOf: (q: number) => GPUBuffer,
  off: number,
  len: number,
  ringFrom: number,
  transfer: Transfer,
): Promise<Uint8Array[]> {
  const R = ranks.length;
  const copies: Uint8Array[] = new Array(R);
  if (ringFrom < 0) {
    const start = performance.now();
    await Promise.all(
      ranks.map(async (r, q) => {
        copies[q] = await r.read(bufOf(q), off, len);
        transfer(q, len, 0, start);
      }),
    );
    return copies;
  }
  for (let hop = 1; hop <= R; hop++) {
    const q = (ringFrom + hop) % R;
    const start = performance.now();
    copies[q] = await ranks[q].read(bufOf(q), off, len);
    // The packet leaving rank q holds `hop` copies (the owner keeps the last one).
    transfer(q, len, hop < R ? hop * len : 0, start);
  }
  return copies;
}

/** Rank `owner`'s bytes [off, off+len) of storage `id` copied to every other rank (ring: hop by hop). */
async function allGather(
  ranks: RankDevice[],
  owner: number,
  id: string,
  off: number,
  len: number,
  ring: boolean,
  transfer: Transfer,
): Promise<void> {
  const R = ranks.length;
  await ranks[owner].sync();
  const start = performance.now();
  const bytes = await ranks[owner].read(ranks[owner].buffer(id), off, len);
  transfer(owner, len, 0, start);
  for (let hop = 1; hop < R; hop++) {
    const q = ring ? (owner + hop) % R : (owner + hop) % R;
    const t = performance.now();
    ranks[q].write(ranks[q].buffer(id), off, bytes);
    transfer(q, 0, len, t);
  }
}
