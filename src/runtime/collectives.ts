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

import type { TraceEvent } from './backend.ts';
import type { CollectiveStep, Plan } from './plan.ts';
import { asRows, numelOf } from './plan.ts';
import { bufferBytes } from '../wgsl/dtype.ts';
import { allReduceWgsl, ALLREDUCE_PARAMS, ALLREDUCE_WG } from '../wgsl/allReduce.ts';
import { grid1d } from '../wgsl/elementwise.ts';
import { encodeNorm, normKernel } from './webgpu/encoders.ts';
import type { RankDevice } from './webgpu/rankDevice.ts';
import { NORM_ROWS_DEFAULT } from '../wgsl/rmsNormRows.ts';

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

/** The kernels rank `rank` dispatches for this collective in `runCollective` (compiled before the run). */
export function collectiveKernels(
  s: CollectiveStep,
  R: number,
  algo: AllReduceAlgorithm,
  rank: number,
  subgroupSize: number,
): string[] {
  const d = s.x.dtype;
  if (s.kernel === 'reduce_scatter') return numelOf(s.x.shape) > 0 ? [allReduceWgsl(d)] : [];
  if (s.kernel === 'all_gather') return [];
  if (s.kernel === 'all_reduce') {
    const n = numelOf(s.x.shape);
    const reduces =
      algo === 'one-shot'
        ? n > 0
        : (() => {
            const [a, b] = chunks(n, R, 8)[rank];
            return b > a;
          })();
    return reduces ? [allReduceWgsl(d)] : [];
  }
  const x = asRows(s.x)!;
  const res = asRows(s.residual)!;
  const { blocked, blocks } = fusedRowBlocks(x.rows, x.cols, R, algo);
  return blocks
    .filter(([r0, r1], c) => r1 > r0 && (!blocked || c === rank))
    .map(
      ([r0, r1]) =>
        normKernel(
          'allreduce',
          d,
          {
            rows: r1 - r0,
            cols: x.cols,
            xOffset: 0,
            xRowStride: x.cols,
            resOffset: res.offset,
            resRowStride: res.rowStride,
            wOffset: s.w.offset,
            rowStart: r0,
            rankSlotStride: roundUp((r1 - r0) * x.cols, 8),
          },
          subgroupSize,
          NORM_ROWS_DEFAULT,
          s.normRounding,
        ).code,
    );
}

export async function runCollective(
  s: CollectiveStep,
  ranks: RankDevice[],
  algo: AllReduceAlgorithm,
  plan: Plan,
): Promise<TraceEvent[]> {
  const R = ranks.length;
  const d = s.x.dtype;
  const bp = d === 'f32' || d === 'i32' ? 4 : 2;
  const events: TraceEvent[] = [];
  const t0 = performance.now();
  const transfer = (rank: number, bytesRead: number, bytesWritten: number, start: number) =>
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
  const xOff = s.x.offset * bp; // contiguous, 8-element aligned (the planner copies otherwise)

  if (s.kernel === 'reduce_scatter' || s.kernel === 'all_gather') {
    // Sequence parallelism's pair: rank c's share is rows [c·T/R, (c+1)·T/R), len elements. A
    // share need not start on a 4-byte boundary (bf16, odd widths): every rank's whole tensor is
    // read once and the shares are cut on the host; each output is written whole.
    const n = numelOf(s.x.shape);
    const len = s.kernel === 'reduce_scatter' ? n / R : n;
    let start = performance.now();
    const whole = await Promise.all(
      ranks.map(async (r, q) => {
        await r.sync();
        const bytes = await readAligned(r, r.buffer(s.x.storage), xOff, n * bp);
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
        ranks[c].submit(s.node, s.op, (_e, pass) =>
          pass(
            allReduceWgsl(d),
            [ranks[c].buffer(s.out), g],
            ALLREDUCE_PARAMS.words({ n: len, ranks: R, outOffset: 0, slotStride: slot }),
            grid1d(Math.ceil(len / 2), ALLREDUCE_WG),
          ),
        );
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
    for (const r of ranks) await r.sync();
    return events;
  }

  if (s.kernel === 'all_reduce') {
    const n = numelOf(s.x.shape);
    const parts = algo === 'one-shot' ? [[0, n] as [number, number]] : chunks(n, R, 8);
    // Which ranks reduce which chunk: one-shot every rank reduces everything; else rank c reduces chunk c.
    const reducers = (c: number) => (algo === 'one-shot' ? ranks.map((_, i) => i) : [c]);
    for (let c = 0; c < parts.length; c++) {
      const [a, b] = parts[c];
      if (b <= a) continue;
      const len = b - a;
      const slot = roundUp(len, 8);
      // Gather: the chunk's raw copies from every rank, in rank order (ring: hop by hop from rank c+1).
      const start = performance.now();
      const copies = await gatherChunk(
        ranks,
        (q) => ranks[q].buffer(s.x.storage),
        xOff + a * bp,
        len * bp,
        algo === 'ring' ? c : -1,
        transfer,
      );
      for (const r of reducers(c)) {
        const g = ranks[r].scratch(R * slot * bp, `${s.node} gathered`);
        copies.forEach((bytes, q) => ranks[r].write(g, q * slot * bp, bytes));
        const meta = ALLREDUCE_PARAMS.words({ n: len, ranks: R, outOffset: a, slotStride: slot });
        ranks[r].submit(s.node, s.op, (_e, pass) =>
          pass(allReduceWgsl(d), [ranks[r].buffer(s.out), g], meta, grid1d(Math.ceil(len / 2), ALLREDUCE_WG)),
        );
        transfer(r, 0, R * len * bp, start);
      }
      if (algo !== 'one-shot') await allGather(ranks, c, s.out, a * bp, len * bp, algo === 'ring', transfer);
    }
    for (const r of ranks) await r.sync();
    return events;
  }

  // Fused all-reduce + residual + RMSNorm.
  const x = asRows(s.x)!;
  const res = asRows(s.residual)!;
  // Row blocks must start on whole words; otherwise every rank normalizes every row (one-shot).
  const { blocked, blocks } = fusedRowBlocks(x.rows, x.cols, R, algo);
  for (let c = 0; c < blocks.length; c++) {
    const [r0, r1] = blocks[c];
    if (r1 <= r0) continue;
    const rows = r1 - r0;
    const len = rows * x.cols;
    const slot = roundUp(len, 8);
    const start = performance.now();
    const copies = await gatherChunk(
      ranks,
      (q) => ranks[q].buffer(s.x.storage),
      xOff + r0 * x.cols * bp,
      len * bp,
      algo === 'ring' && blocked ? c : -1,
      transfer,
    );
    for (const r of blocked ? [c] : ranks.map((_, i) => i)) {
      const g = ranks[r].scratch(R * slot * bp + 16, `${s.node} gathered`);
      copies.forEach((bytes, q) => ranks[r].write(g, q * slot * bp, bytes));
      encodeNorm(
        ranks[r],
        s.node,
        s.op,
        'allreduce',
        d,
        {
          rows,
          cols: x.cols,
          xOffset: 0,
          xRowStride: x.cols,
          resOffset: res.offset,
          resRowStride: res.rowStride,
          wOffset: s.w.offset,
          eps: s.eps,
          ranks: R,
          rowStart: r0,
          rankSlotStride: slot,
        },
        [
          ranks[r].buffer(s.out),
          ranks[r].buffer(s.residualOut),
          g,
          ranks[r].buffer(s.residual.storage),
          ranks[r].buffer(s.w.storage),
        ],
        NORM_ROWS_DEFAULT,
        s.normRounding,
      );
      transfer(r, 0, R * len * bp, start);
    }
    if (blocked) {
      await allGather(ranks, c, s.out, r0 * x.cols * bp, len * bp, algo === 'ring', transfer);
      await allGather(ranks, c, s.residualOut, r0 * x.cols * bp, len * bp, algo === 'ring', transfer);
    }
  }
  for (const r of ranks) await r.sync();
  void plan;
  void bufferBytes;
  return events;
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
  transfer: (rank: number, read: number, written: number, start: number) => void,
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
  transfer: (rank: number, read: number, written: number, start: number) => void,
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
