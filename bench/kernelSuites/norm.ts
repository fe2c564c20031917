// add + RMSNorm ([T, 2880]) and the fused all-reduce + RMSNorm over 2 ranks' rows gathered on this
// device ([2, T, 2880] → [T, 2880], the kernel alone: the host transfer is not in it): the main
// suite, the add + RMSNorm layouts at large T, and the --variants sweep that picks the layouts.

import { encodeNorm } from '../../src/runtime/webgpu/encoders.ts';
import { bufferBytes } from '../../src/wgsl/dtype.ts';
import { NORM_ROWS_DEFAULT, type NormRowsConfig } from '../../src/wgsl/rmsNormRows.ts';
import type { NormParams } from '../../src/wgsl/rmsNorm.ts';
import { timeKernel } from '../kernelTiming.ts';
import {
  fill,
  HIDDEN,
  type BothTimes,
  type KernelBench,
  type KernelResult,
  type KernelRig,
} from './context.ts';
import { edgeRows, maxUlps } from './outputCheck.ts';

type NormLayout = NormRowsConfig | 'legacy';

/** The layouts the main norm suite runs: the defaults, or with --variants the fastest of those timed there. */
export type NormPick = Record<'add' | 'allreduce', NormLayout>;

export const NORM_DEFAULTS: NormPick = { add: NORM_ROWS_DEFAULT, allreduce: NORM_ROWS_DEFAULT };

export const normLayoutLabel = (c: NormLayout) =>
  c === 'legacy'
    ? 'legacy 1 row/wg'
    : `${c.tpr}×${c.rpw}${c.cap ? ` cap ${c.cap}` : ''}${c.pipeline ? ' prefetch' : ''}`;

/** One norm size's buffers: x, res, w seeded; out and resOut written by the kernels. */
interface NormBuffers {
  T: number;
  n: number;
  x: GPUBuffer;
  res: GPUBuffer;
  w: GPUBuffer;
  out: GPUBuffer;
  resOut: GPUBuffer;
}

function normBuffers(rig: KernelRig, T: number): NormBuffers {
  const { dev, dtype } = rig;
  const n = T * HIDDEN;
  const x = fill(rig, 'x', n),
    res = fill(rig, 'res', n),
    w = fill(rig, 'w', HIDDEN, 'norm-weight');
  const out = dev.alloc('out', bufferBytes(dtype, n)),
    resOut = dev.alloc('resOut', bufferBytes(dtype, n));
  return { T, n, x, res, w, out, resOut };
}

/** 2 ranks' x rows gathered `slot` elements apart, for the fused all-reduce + RMSNorm. */
interface Gathered {
  g: GPUBuffer;
  slot: number;
}

function gathered(rig: KernelRig, n: number): Gathered {
  const slot = Math.ceil(n / 8) * 8;
  return { g: fill(rig, 'gathered', 2 * slot), slot };
}

/** Bytes (x, res, out, resOut and w) and flops of add + RMSNorm over n elements. */
const addNormTraffic = (rig: KernelRig, n: number) => ({ bytes: (4 * n + HIDDEN) * rig.bp, flops: 5 * n });
/** The same for the all-reduce + RMSNorm, which reads 2 ranks' x. */
const gatheredNormTraffic = (rig: KernelRig, n: number) => ({
  bytes: (5 * n + HIDDEN) * rig.bp,
  flops: 6 * n,
});

/** add + RMSNorm over T rows of HIDDEN on one device: bindings out, resOut, x, res, w. */
function encodeAddNorm(rig: KernelRig, b: NormBuffers, layout: NormLayout): void {
  const bindings = [b.out, b.resOut, b.x, b.res, b.w];
  encodeNorm(
    rig.dev,
    'add_rms_norm',
    'fused_add_rms_norm',
    'add',
    rig.dtype,
    normRows(b.T, 1, 0),
    bindings,
    layout,
  );
}

/** The fused all-reduce + RMSNorm over 2 ranks' rows gathered `slot` elements apart on this device. */
function encodeGatheredNorm(rig: KernelRig, b: NormBuffers, gr: Gathered, layout: NormLayout): void {
  encodeNorm(
    rig.dev,
    'allreduce_norm',
    'fused_allreduce_norm',
    'allreduce',
    rig.dtype,
    normRows(b.T, 2, gr.slot),
    [b.out, b.resOut, gr.g, b.res, b.w],
    layout,
  );
}

/** Norm parameters for T contiguous rows of HIDDEN, starting at offset 0. */
function normRows(T: number, ranks: number, rankSlotStride: number): NormParams {
  return {
    rows: T,
    cols: HIDDEN,
    xOffset: 0,
    xRowStride: HIDDEN,
    resOffset: 0,
    resRowStride: HIDDEN,
    wOffset: 0,
    eps: 1e-5,
    ranks,
    rowStart: 0,
    rankSlotStride,
  };
}

/** Runs `encode` once and reads back the edge rows of out and resOut. */
async function normOutputs(rig: KernelRig, b: NormBuffers, encode: () => void): Promise<Uint16Array[]> {
  encode();
  await rig.dev.sync();
  return [await edgeRows(rig.dev, b.out, b.T, HIDDEN), await edgeRows(rig.dev, b.resOut, b.T, HIDDEN)];
}

const vsFirstNote = (got: Uint16Array[], first: Uint16Array[]) =>
  `; vs first: out ≤ ${maxUlps(got[0], first[0])} ulp, residual ≤ ${maxUlps(got[1], first[1])} ulp`;

/** A row timed both ways, noting its layout. */
function timedRow(
  ctx: KernelBench,
  suite: string,
  b: NormBuffers,
  t: BothTimes,
  traffic: { bytes: number; flops: number },
  lay: NormLayout,
): KernelResult {
  return ctx.add({ suite, T: b.T, us: t.us, b2b_us: t.b2b, ...traffic, note: normLayoutLabel(lay) });
}

/** add + RMSNorm and the fused all-reduce + RMSNorm, each beside a copy of the same traffic. */
export async function normSuite(ctx: KernelBench, pick: NormPick): Promise<void> {
  for (const T of ctx.quick ? [1, 7, 64] : [1, 16, 128, 1024, 4096, 16384]) {
    const b = normBuffers(ctx, T);
    const addTimes = await ctx.timeBoth(ctx.iters, () => encodeAddNorm(ctx, b, pick.add));
    const addRow = timedRow(ctx, 'add+rmsnorm', b, addTimes, addNormTraffic(ctx, b.n), pick.add);
    const gr = gathered(ctx, b.n);
    const arTimes = await ctx.timeBoth(ctx.iters, () => encodeGatheredNorm(ctx, b, gr, pick.allreduce));
    const arSuite = 'allreduce+rmsnorm (2 ranks gathered)';
    const arRow = timedRow(ctx, arSuite, b, arTimes, gatheredNormTraffic(ctx, b.n), pick.allreduce);
    ctx.dev.endRun();
    // The same traffic as a plain copy: the fair ceiling for a kernel of this size, printed beside the large-copy one.
    for (const r of [addRow, arRow]) {
      const copy = await ctx.sameSizeCopy(r.bytes);
      r.note = `${r.note}; same-size copy ${copy.toFixed(0)} GB/s, ${((100 * r.gbs) / copy).toFixed(1)} % of it`;
    }
  }
}

/** `tpr` threads a row, `rpw` rows a workgroup; `cap` > 0: a grid-stride loop over at most `cap` workgroups, each prefetching its next row. */
const rowsLayout = (tpr: number, rpw: number, cap = 0): NormRowsConfig => ({
  tpr,
  rpw,
  cap,
  pipeline: cap > 0,
});

/** add + RMSNorm layouts timed in `normLayoutSuite`, the default first. */
const NORM_LAYOUTS: NormRowsConfig[] = [
  NORM_ROWS_DEFAULT,
  rowsLayout(180, 1),
  rowsLayout(120, 1),
  rowsLayout(128, 2),
  rowsLayout(96, 2),
  rowsLayout(64, 4),
  rowsLayout(180, 1, 1452),
  rowsLayout(120, 1, 2244),
];

/**
 * add + RMSNorm layouts at T = 4096 and 16384 (bf16), each timed both ways (all timed first, then
 * each checked against the first on the device): how many rows are in flight per wave of the SMs is
 * what changes between them (192 threads: 10 workgroups an SM; 180: 11; 120: 17; 64 × 4 rows: 8).
 */
export async function normLayoutSuite(ctx: KernelBench): Promise<void> {
  for (const T of ctx.quick ? [64] : [4096, 16384]) {
    const b = normBuffers(ctx, T);
    const rows: { lay: NormRowsConfig; row: KernelResult }[] = [];
    for (const lay of NORM_LAYOUTS) {
      const t = await ctx.timeBoth(ctx.iters, () => encodeAddNorm(ctx, b, lay));
      const row = timedRow(ctx, 'add+rmsnorm layout', b, t, addNormTraffic(ctx, b.n), lay);
      rows.push({ lay, row });
    }
    let first: Uint16Array[] | null = null;
    for (const r of rows) {
      const got = await normOutputs(ctx, b, () => encodeAddNorm(ctx, b, r.lay));
      first ??= got;
      r.row.note += vsFirstNote(got, first);
    }
    ctx.dev.endRun();
  }
}

/** Layouts of both norm kernels timed side by side by --variants. */
const NORM_VARIANT_LAYOUTS: NormLayout[] = [
  'legacy',
  rowsLayout(192, 1),
  rowsLayout(128, 2),
  ...[528, 1056, 2112].map((cap) => rowsLayout(192, 1, cap)),
  rowsLayout(128, 2, 528),
  rowsLayout(96, 2),
  rowsLayout(96, 2, 1056),
  rowsLayout(64, 4),
  rowsLayout(32, 8),
  rowsLayout(180, 1),
  rowsLayout(180, 1, 1056),
  rowsLayout(120, 1),
];

/**
 * --variants: every layout of both norm kernels by kernel time (`variant …` rows), each checked
 * against the first layout's output; the fastest at T = 16384 becomes the main suite's pick.
 */
export async function normVariants(ctx: KernelBench): Promise<NormPick> {
  const pick = { ...NORM_DEFAULTS };
  for (const T of ctx.quick ? [64] : [4096, 16384]) {
    const b = normBuffers(ctx, T);
    const gr = gathered(ctx, b.n);
    const best = { add: Infinity, allreduce: Infinity };
    const kernels: Record<keyof NormPick, { suite: string; encode: (lay: NormLayout) => void }> = {
      add: { suite: 'variant add+rmsnorm', encode: (lay) => encodeAddNorm(ctx, b, lay) },
      allreduce: { suite: 'variant allreduce+rmsnorm', encode: (lay) => encodeGatheredNorm(ctx, b, gr, lay) },
    };
    const traffic = { add: addNormTraffic(ctx, b.n), allreduce: gatheredNormTraffic(ctx, b.n) };
    // Every layout is timed back to back first and checked afterwards (outputCheck.ts says why).
    const rows: { lay: NormLayout; k: keyof NormPick; row: KernelResult }[] = [];
    for (const lay of NORM_VARIANT_LAYOUTS)
      for (const k of ['add', 'allreduce'] as const) {
        const us = await timeKernel(ctx.dev, ctx.iters, () => kernels[k].encode(lay));
        if (T === 16384 && us < best[k]) {
          best[k] = us;
          pick[k] = lay;
        }
        const row = ctx.add({ suite: kernels[k].suite, T, us, ...traffic[k], note: normLayoutLabel(lay) });
        rows.push({ lay, k, row });
      }
    const first: Partial<Record<keyof NormPick, Uint16Array[]>> = {};
    for (const r of rows) {
      const got = await normOutputs(ctx, b, () => kernels[r.k].encode(r.lay));
      r.row.note += vsFirstNote(got, (first[r.k] ??= got));
    }
    ctx.dev.endRun();
  }
  return pick;
}
