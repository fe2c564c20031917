// PyTorch's timings beside ours (`--torch FILE`, bench/torch_kernels.py's output): which of its
// suites stands beside each of our rows, the best of its compiles, and its copy_ in the ceiling.

import { readFileSync } from 'node:fs';
import { HPAD, INTER, type KernelBench, type KernelResult } from './context.ts';

/** One row of bench/torch_kernels.py's output. */
interface TorchTiming {
  suite: string;
  T: number;
  /** Kernel time per call (torch.profiler over CUDA-graph replays). */
  us: number;
  /** CUDA-graph replay time per call. */
  graph_us: number;
  compile?: string;
  note?: string;
  /** The grouped-GEMM kernels' share of `us` (Triton MoE). */
  gemm_us?: number;
  /** Experts the baseline's routing touched (MoE). */
  experts?: number;
}

/** The baseline set beside one of our rows: the best kernel time and the best graph time, each with the compile that gave it. */
export interface TorchSide {
  suite: string;
  kernel: TorchTiming;
  graph: TorchTiming;
  /** Every compile's kernel µs, named. */
  compiles: string;
  /** Bytes the baseline streamed (MoE: its experts' weights), where they differ from ours. */
  bytes: number;
}

/** Which baseline suite stands beside ours: the MoE with routing against Triton's grouped GEMM (routing in its graph too), without against per-expert cuBLAS (precomputed). */
const TORCH_SUITE: Record<string, string> = {
  copy: 'copy',
  'add+rmsnorm': 'add+rmsnorm',
  'allreduce+rmsnorm (2 ranks gathered)': 'allreduce+rmsnorm (2 ranks gathered)',
  'moe (expert weights streamed)': 'moe triton grouped GEMM',
  'moe without routing': 'moe per-expert cuBLAS',
  gemm: 'gemm',
};

/** The best kernel time and the best graph time among the baseline's compiles for one of our rows. */
function torchSide(r: KernelResult, torch: TorchTiming[], bp: number): TorchSide | undefined {
  const suite = TORCH_SUITE[r.suite];
  const rows = torch.filter((x) => x.suite === suite && x.T === r.T);
  if (rows.length === 0) return undefined;
  const kernel = rows.reduce((a, b) => (b.us < a.us ? b : a));
  const graph = rows.reduce((a, b) => (b.graph_us < a.graph_us ? b : a));
  const bytes = kernel.experts !== undefined ? kernel.experts * 3 * INTER * HPAD * bp : r.bytes;
  const compiles = rows.map((x) => `${x.compile ?? x.note ?? suite}: ${x.us.toFixed(2)}`).join('; ');
  return { suite, kernel, graph, compiles, bytes };
}

/** The ceiling after the join, and what the header line says of it. */
export interface JoinedCeiling {
  ceiling: number;
  ceilingNote: string;
  /** `torch <version> on <device>`, where the file names them. */
  torchOn: string;
}

/**
 * Sets the baseline beside every row of `ctx.results` and raises the ceiling to torch's copy_
 * where that is faster; each row's share of the ceiling follows. Without a file: our copy alone.
 */
export function joinTorch(ctx: KernelBench, torchFile: string | undefined): JoinedCeiling {
  let ceiling = ctx.ceiling;
  if (!torchFile) return { ceiling, ceilingNote: `vec4 copy ${ceiling.toFixed(1)} GB/s`, torchOn: '' };
  const parsed = JSON.parse(readFileSync(torchFile, 'utf8')) as
    TorchTiming[] | { torch: string; device: string; results: TorchTiming[] };
  const torch = Array.isArray(parsed) ? parsed : parsed.results;
  const torchOn = Array.isArray(parsed) ? '' : `torch ${parsed.torch} on ${parsed.device}`;
  for (const r of ctx.results) r.torch = torchSide(r, torch, ctx.bp);
  const torchCopy = Math.max(
    0,
    ...torch.filter((x) => x.suite === 'copy').map((x) => (2 * x.T) / x.us / 1e3),
  );
  const ceilingNote = `best of our vec4 copy ${ceiling.toFixed(1)} GB/s and torch copy_ ${torchCopy.toFixed(1)} GB/s`;
  ceiling = Math.max(ceiling, torchCopy);
  for (const r of ctx.results) r.ofCeiling = r.gbs / ceiling;
  return { ceiling, ceilingNote, torchOn };
}
