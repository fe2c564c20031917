// The CPU reference's collectives: all ranks' memories at once, each group of ranks the step's
// process group spans (rankMesh.ts) apart, its tensors summed or gathered in group-rank order.

import { DTYPE_BYTES } from '../graph/opTable.ts';
import type { CollectiveStep, StorageDType } from './plan.ts';
import { asRows } from './plan.ts';
import { resolveGroup, type RankMesh } from './rankMesh.ts';
import { cpuResidualNorm, readView, rounded, type HostArray } from './cpuKernels.ts';

/** What each rank of a collective reads and writes, in bytes. */
export interface CollectiveBytes {
  bytesRead: number;
  bytesWritten: number;
}

/**
 * One kind of collective among the ranks whose memories `mem` holds, in group-rank order; `xs`
 * their values of `s.x`, `bytes` the size of one of them.
 */
type GroupCollective<K extends CollectiveStep['kernel']> = (
  s: Extract<CollectiveStep, { kernel: K }>,
  xs: Float64Array[],
  mem: Map<string, HostArray>[],
  bytes: number,
) => CollectiveBytes;

/** The ranks' values summed element by element in rank order, rounded to `dtype`. */
function rankOrderSum(xs: Float64Array[], dtype: StorageDType): HostArray {
  const sum = new Float64Array(xs[0].length);
  for (const x of xs) for (let i = 0; i < sum.length; i++) sum[i] += x[i];
  return rounded(dtype, sum);
}

const GROUP_COLLECTIVES: { [K in CollectiveStep['kernel']]: GroupCollective<K> } = {
  all_gather: (s, xs, mem, bytes) => {
    const R = mem.length;
    const n = xs[0].length;
    for (let r = 0; r < R; r++) {
      const out = new Float64Array(n * R);
      for (let q = 0; q < R; q++) out.set(xs[q], q * n);
      mem[r].set(s.out, rounded(s.x.dtype, out));
    }
    return { bytesRead: bytes * R, bytesWritten: bytes * R };
  },
  reduce_scatter: (s, xs, mem, bytes) => {
    // Rank r keeps rows [r·T/R, (r+1)·T/R) of the sum, summed in rank order as the all-reduce does.
    const R = mem.length;
    const len = xs[0].length / R;
    for (let r = 0; r < R; r++) {
      const sum = new Float64Array(len);
      for (let q = 0; q < R; q++) for (let i = 0; i < len; i++) sum[i] += xs[q][r * len + i];
      mem[r].set(s.out, rounded(s.x.dtype, sum));
    }
    return { bytesRead: bytes, bytesWritten: bytes / R };
  },
  all_reduce: (s, xs, mem, bytes) => {
    const ar = rankOrderSum(xs, s.x.dtype);
    for (const m of mem) m.set(s.out, ar);
    return { bytesRead: bytes * mem.length, bytesWritten: bytes };
  },
  fused_allreduce_norm: (s, xs, mem, bytes) => {
    const ar = rankOrderSum(xs, s.x.dtype);
    const rows = asRows(s.x)!;
    for (const m of mem) {
      const { out, res } = cpuResidualNorm(
        Float64Array.from(ar),
        readView(s.residual, m.get(s.residual.storage)!),
        readView(s.w, m.get(s.w.storage)!),
        rows.rows,
        rows.cols,
        s.eps,
        s.x.dtype,
        s.normRounding !== 'as-unfused',
      );
      m.set(s.out, rounded(s.x.dtype, out));
      m.set(s.residualOut, rounded(s.x.dtype, res));
    }
    return { bytesRead: bytes * mem.length, bytesWritten: bytes };
  },
};

/** A collective over every rank's memory at once, each group of its process group apart. */
export function runCollective(
  s: CollectiveStep,
  mem: Map<string, HostArray>[],
  mesh: RankMesh,
): CollectiveBytes {
  let io = { bytesRead: 0, bytesWritten: 0 };
  for (const ranks of resolveGroup(mesh, s.group).groups) {
    const groupMem = ranks.map((r) => mem[r]);
    const xs = groupMem.map((m) => readView(s.x, m.get(s.x.storage)!));
    const run = GROUP_COLLECTIVES[s.kernel] as GroupCollective<CollectiveStep['kernel']>;
    io = run(s, xs, groupMem, xs[0].length * DTYPE_BYTES[s.x.dtype]);
  }
  return io;
}
