// What every suite of `fusionlab bench kernels` shares: one device and dtype, one list of rows, and
// (once the copy ceiling is measured) the ways a row is timed and added against that ceiling.

import type { RankDevice } from '../../src/runtime/webgpu/rankDevice.ts';
import { encodeSeed } from '../../src/runtime/webgpu/elementwiseEncoders.ts';
import type { StorageDType } from '../../src/runtime/plan.ts';
import { bufferBytes } from '../../src/wgsl/dtype.ts';
import type { MoeGemvConfig } from '../../src/wgsl/moe.ts';
import { seedRule } from '../../src/runtime/weights.ts';
import { fnv1a32 } from '../../src/runtime/random.ts';
import { lastPassMedians, launchesFor, timeCopy, timeKernel, timeLaunches } from '../kernelTiming.ts';
import type { TorchSide } from './torch.ts';

export interface KernelResult {
  suite: string;
  T: number;
  us: number;
  bytes: number;
  flops: number;
  gbs: number;
  gflops: number;
  ofCeiling: number;
  /** µs per call of N calls encoded back to back in one submit (GPU timestamps around the batch / N). */
  b2b_us?: number;
  torch?: TorchSide;
  note?: string;
  /** `moe layout` rows: the GEMV layout fields set beside the default's. */
  layout?: Partial<MoeGemvConfig>;
}

/** A row as a suite measures it: its rates against the ceiling follow from bytes, flops and us. */
export type KernelRow = Omit<KernelResult, 'gbs' | 'gflops' | 'ofCeiling'>;

/** Kernel time and back-to-back time of one encode, with the kernel time's per-pass medians. */
export interface BothTimes {
  us: number;
  b2b: number;
  passes: number[];
}

/** What the suites before the ceiling (the ceiling itself, the pass floor) need. */
export interface KernelRig {
  dev: RankDevice;
  dtype: StorageDType;
  /** Bytes per element of `dtype`. */
  bp: number;
  /** Small sizes and few iterations, so SwiftShader can run it. */
  quick: boolean;
  /** Timed calls per kernel-time median. */
  iters: number;
  results: KernelResult[];
}

/** The rig once the copy ceiling of this run is known: every suite after it takes this. */
export interface KernelBench extends KernelRig {
  /** GB/s of the best large vec4 copy in this run (read + write). */
  ceiling: number;
  /** Appends a row with its GB/s, GFLOP/s and share of the ceiling; returns it. */
  add(r: KernelRow): KernelResult;
  /** Kernel time (each call its own submit, timestamps around its passes) and µs per call back to back. */
  timeBoth(kernelIters: number, encode: (i: number) => void): Promise<BothTimes>;
  /** GB/s of a vec4 copy moving `moved` bytes (read + write), the same traffic as a kernel. */
  sameSizeCopy(moved: number): Promise<number>;
}

/** Layer sizes of the suites: the GPT-OSS-20B hidden size, its padded MoE width, experts, top-k, intermediate (TP 1). */
export const HIDDEN = 2880,
  HPAD = 3072,
  EXPERTS = 32,
  TOPK = 4,
  INTER = 2880;

export function kernelBench(rig: KernelRig, ceiling: number): KernelBench {
  const { dev, quick, results } = rig;
  return {
    ...rig,
    ceiling,
    add: (r) => {
      const row: KernelResult = {
        ...r,
        gbs: r.bytes / r.us / 1e3,
        gflops: r.flops / r.us / 1e3,
        ofCeiling: r.bytes / r.us / 1e3 / ceiling,
      };
      results.push(row);
      return row;
    },
    timeBoth: async (kernelIters, encode) => {
      const us = await timeKernel(dev, kernelIters, encode);
      const passes = lastPassMedians();
      const b2b = await timeLaunches(dev, quick ? 3 : launchesFor(us), quick ? 2 : 5, encode);
      return { us, b2b, passes };
    },
    sameSizeCopy: async (moved) => {
      const bytes = Math.max(16, Math.floor(moved / 2 / 16) * 16);
      return (2 * bytes) / (await timeCopy(dev, rig.iters, bytes)) / 1e3;
    },
  };
}

/** A buffer of `n` seeded elements (stream named `name`, as the CPU reference seeds it). */
export function fill(
  rig: KernelRig,
  name: string,
  n: number,
  role: 'activation' | 'norm-weight' = 'activation',
): GPUBuffer {
  const { dev, dtype } = rig;
  const b = dev.alloc(name, bufferBytes(dtype, n));
  const rule = seedRule(role, [n]);
  encodeSeed(dev, 'fill', 'seed', b, dtype, n, {
    seed: 7,
    stream: fnv1a32(name),
    scale: rule.scale,
    offset: rule.offset,
    range: 0,
  });
  return b;
}
