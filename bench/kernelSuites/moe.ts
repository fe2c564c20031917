// The GPT-OSS-20B MoE forward (H 3072, 32 experts, top-4, intermediate 2880 at TP 1; quick: the
// tiny preset's sizes), counting the expert weights it must stream: the main suite with its rows
// beside it (without routing, the previous decode kernels, fresh scratch, other GEMV layouts), and
// the --variants sweep of decode kernels that picks the main suite's.

import { seedExpertWeights, encodeMoeDispatch } from '../../src/runtime/webgpu/moeEncoders.ts';
import type { StorageDType } from '../../src/runtime/plan.ts';
import { bufferBytes } from '../../src/wgsl/dtype.ts';
import { MOE_GEMV_DEFAULT, moeGemvTokens, type MoeGemvConfig } from '../../src/wgsl/moe.ts';
import { routeToken } from '../../src/runtime/cpuKernels.ts';
import { seededArray, seedRule } from '../../src/runtime/weights.ts';
import { fnv1a32 } from '../../src/runtime/random.ts';
import { PRESETS } from '../../src/runtime/presets.ts';
import { lastPassMedians, timeKernel } from '../kernelTiming.ts';
import { EXPERTS, fill, HPAD, INTER, TOPK, type KernelBench, type KernelResult } from './context.ts';
import { maxAbs, maxUlps } from './outputCheck.ts';

export type MoeKernel = MoeGemvConfig | 'tiled';

/** The token counts of the main MoE suite (and of the logits --dump-logits writes). */
export const moeTokenCounts = (quick: boolean) => (quick ? [1, 5, 37] : [1, 4, 16, 64, 256, 1024, 4096]);

/** The router logits of a batch of T, as both sides (ours and bench/torch_kernels.py --logits) route them. */
export const moeLogits = (T: number, dtype: StorageDType) =>
  seededArray(7, fnv1a32('moe.logits'), T * EXPERTS, seedRule('activation', []), dtype);

/** The experts a batch of T routes to (same top-k as the kernel, from the same seeded logits). */
function routedExperts(T: number, dtype: StorageDType): number {
  const l = moeLogits(T, dtype);
  const active = new Set<number>();
  for (let t = 0; t < T; t++)
    for (const e of routeToken(l.subarray(t * EXPERTS, t * EXPERTS + EXPERTS), TOPK).ids) active.add(e);
  return active.size;
}

const passNote = (passes: number[]) =>
  passes.length > 1 ? `; passes ${passes.map((d) => d.toFixed(1)).join(' + ')} µs` : '';

/** The layer's sizes and its seeded expert weights (kept on the device). */
interface MoeLayer {
  H: number;
  I: number;
  weights: ReturnType<typeof seedExpertWeights>;
}

async function moeLayer(ctx: KernelBench): Promise<MoeLayer> {
  const H = ctx.quick ? 48 : HPAD,
    I = ctx.quick ? PRESETS.tiny.intermediate : INTER;
  const weights = seedExpertWeights(ctx.dev, 'moe', 'vllm.moe_forward', {
    layer: 'bench.moe',
    experts: EXPERTS,
    hidden: H,
    interShard: I,
    interFull: I,
    dtype: ctx.dtype,
    seed: 7,
    keep: true,
  });
  await ctx.dev.sync();
  return { H, I, weights };
}

/** One batch of T tokens on the device: what its rows stream and compute, and how to encode it. */
interface MoeBatch {
  T: number;
  H: number;
  out: GPUBuffer;
  /** Experts the batch routes to. */
  active: number;
  /** The routed experts' weights (W13 and W2), the bytes the forward must stream. */
  weightBytes: number;
  flops: number;
  encode(decodeKernel: MoeKernel, freshScratch?: boolean): void;
  /** Runs the batch once with `decodeKernel` and reads back its output's bf16 words. */
  outputWords(decodeKernel: MoeKernel): Promise<Uint16Array>;
}

function moeBatch(ctx: KernelBench, layer: MoeLayer, T: number): MoeBatch {
  const { dev, dtype } = ctx;
  const { H, I, weights } = layer;
  const x = fill(ctx, 'moe.x', T * H),
    logits = fill(ctx, 'moe.logits', T * EXPERTS);
  const out = dev.alloc('moe.out', bufferBytes(dtype, T * H));
  const active = routedExperts(T, dtype);
  const batch: MoeBatch = {
    T,
    H,
    out,
    active,
    weightBytes: active * 3 * I * H * ctx.bp,
    flops: T * TOPK * 2 * 3 * I * H,
    encode: (decodeKernel, freshScratch = false) =>
      encodeMoeDispatch(dev, 'moe', 'vllm.moe_forward', {
        T,
        H,
        E: EXPERTS,
        K: TOPK,
        Is: I,
        dtype,
        logitsDtype: dtype,
        x,
        xOff: 0,
        xRowStride: H,
        logits,
        lOff: 0,
        lRowStride: EXPERTS,
        out,
        weights,
        decodeKernel,
        freshScratch,
      }),
    outputWords: async (decodeKernel) => {
      batch.encode(decodeKernel);
      await dev.sync();
      const r = await dev.read(out, 0, T * H * 2);
      return new Uint16Array(r.buffer, r.byteOffset, T * H);
    },
  };
  return batch;
}

const freeBatch = (ctx: KernelBench) => {
  for (const id of ['moe.x', 'moe.logits', 'moe.out']) ctx.dev.free(id);
};

/** The main MoE suite with `pick` as its decode kernel; `layoutFlag`: the --moe-layout JSON it came from. */
export async function moeSuite(
  ctx: KernelBench,
  pick: MoeKernel,
  layoutFlag: string | undefined,
): Promise<void> {
  const layer = await moeLayer(ctx);
  for (const T of moeTokenCounts(ctx.quick)) {
    const b = moeBatch(ctx, layer, T);
    const t = await ctx.timeBoth(ctx.quick ? 2 : 10, () => b.encode(pick));
    ctx.add({
      suite: 'moe (expert weights streamed)',
      T,
      us: t.us,
      b2b_us: t.b2b,
      bytes: b.weightBytes,
      flops: b.flops,
      note: `${b.active} experts${layoutFlag ? `; layout ${layoutFlag}` : ''}${passNote(t.passes)}`,
    });
    // Without the routing pass (its first), for the baseline whose routing is precomputed.
    // Its last three passes are W13, W2 and combine; the ones before them route (none: routing folded into W13's).
    if (t.passes.length >= 3)
      ctx.add({
        suite: 'moe without routing',
        T,
        us: t.passes.slice(-3).reduce((a, c) => a + c, 0),
        bytes: b.weightBytes,
        flops: b.flops,
        note: `${b.active} experts; our passes after routing, kernel time only${t.passes.length === 3 ? ' (routing folded into the W13 pass: included)' : ''}`,
      });
    if (pick !== 'tiled' && T <= 64 && !ctx.quick) await moeEarlierRows(ctx, b, pick);
    if (pick !== 'tiled' && T <= 64 && ctx.dtype === 'bf16') await moeLayoutRows(ctx, b, pick);
    freeBatch(ctx);
  }
  ctx.dev.endRun();
}

/** The decode kernels as they were before two changes, each beside the current ones. */
async function moeEarlierRows(ctx: KernelBench, b: MoeBatch, pick: MoeGemvConfig): Promise<void> {
  // Before routing folded into W13 at T = 1.
  const before = await ctx.timeBoth(10, () => b.encode({ ...pick, foldRoute: false }));
  ctx.add({
    suite: 'moe, previous decode kernels',
    T: b.T,
    us: before.us,
    b2b_us: before.b2b,
    bytes: b.weightBytes,
    flops: b.flops,
    note: `${b.active} experts; routing pass; passes ${before.passes.map((d) => d.toFixed(1)).join(' + ')} µs`,
  });
  // Fresh intermediates every call, as before they were workspaces: WebGPU zero-fills a fresh
  // buffer on its first use (Dawn on Vulkan inside the pass that binds it: pass floor row 7);
  // RankDevice now clears them before the pass, so the kernel times should match the workspaces'
  // and only the back-to-back time carries the fills.
  const fresh = await ctx.timeBoth(10, () => b.encode(pick, true));
  ctx.add({
    suite: 'moe, fresh scratch',
    T: b.T,
    us: fresh.us,
    b2b_us: fresh.b2b,
    bytes: b.weightBytes,
    flops: b.flops,
    note: `${b.active} experts; route, weights, act and y_k made per call, zero-filled before the passes; passes ${fresh.passes.map((d) => d.toFixed(1)).join(' + ')} µs`,
  });
}

/** GEMV layouts timed beside the MoE default at decode sizes (`moe layout` rows). */
const MOE_LAYOUTS: Partial<MoeGemvConfig>[] = [
  { maxTm: 2 },
  { maxTm: 8 },
  { groups: 8 },
  { groups: 2 },
  { maxTm: 2, groups: 8 },
  { unroll: 2 },
  { prefetch: true },
  { fullTiles: false },
  { fma: false },
  { rows1: 8, rows2: 8 },
  { rows2: 8 },
  { rows2: 2 },
];

const moeLayoutLabel = (m: Partial<MoeGemvConfig>) =>
  Object.entries(m)
    .filter(([k]) => k !== 'tm')
    .map(([k, v]) => (v === true ? k : `${k} ${v}`))
    .join(', ');

/**
 * Other GEMV layouts beside the pick, timed the same way in the same loop, each checked bitwise
 * against the pick's output on the device (every layout sums in the same order).
 */
async function moeLayoutRows(ctx: KernelBench, b: MoeBatch, pick: MoeGemvConfig): Promise<void> {
  // The default's output, and with `fma` the default's with fma (another summation order).
  const wants = new Map<boolean, Uint16Array>();
  for (const more of MOE_LAYOUTS) {
    const cfg = { ...pick, ...more };
    const lt = await ctx.timeBoth(ctx.quick ? 2 : 10, () => b.encode(cfg));
    const got = await b.outputWords(cfg);
    if (!wants.has(cfg.fma)) wants.set(cfg.fma, await b.outputWords({ ...pick, fma: cfg.fma }));
    const want = wants.get(cfg.fma) as Uint16Array;
    const diff = got.reduce((c, w, i) => c + (w !== want[i] ? 1 : 0), 0);
    ctx.add({
      suite: 'moe layout',
      layout: more,
      T: b.T,
      us: lt.us,
      b2b_us: lt.b2b,
      bytes: b.weightBytes,
      flops: b.flops,
      note: `${moeLayoutLabel(more)}, tm ${moeGemvTokens(b.T, TOPK, EXPERTS, cfg)}; ${diff === 0 ? 'bitwise' : `${diff} words differ from`} the default${cfg.fma !== pick.fma ? ` with fma ${cfg.fma}` : ''}`,
    });
  }
}

/** A GEMV decode kernel of the sweep: the fields it names over a plain baseline. */
const gv = (
  groups: number,
  rows1: number,
  rows2: number,
  maxTm = 8,
  more: Partial<MoeGemvConfig> = {},
): MoeGemvConfig => ({
  groups,
  rows1,
  rows2,
  maxTm,
  tm: 0,
  route1: true,
  unroll: 1,
  foldRoute: false,
  prefetch: false,
  fullTiles: false,
  fma: false,
  stageX: false,
  ...more,
});

/** The decode kernels --variants times side by side, the tiled kernel and the default first. */
const MOE_VARIANT_KERNELS: MoeKernel[] = [
  'tiled',
  MOE_GEMV_DEFAULT,
  gv(8, 4, 4, 8, { route1: false }),
  gv(4, 4, 4),
  gv(8, 8, 8),
  gv(4, 8, 8),
  gv(8, 4, 2),
  gv(2, 4, 4),
  gv(8, 4, 4, 8, { unroll: 2 }),
  gv(4, 4, 4, 8, { unroll: 2 }),
  gv(8, 4, 2, 8, { unroll: 4 }),
  gv(8, 4, 4, 16),
  gv(4, 4, 2, 16),
  gv(8, 4, 4, 16, { unroll: 2 }),
  gv(8, 4, 4, 8, { tm: 8 }),
  gv(2, 4, 2, 8, { unroll: 2 }),
  gv(8, 8, 4),
  gv(8, 4, 2, 8, { foldRoute: true }),
  gv(8, 8, 4, 16),
  gv(4, 8, 4, 16),
  gv(8, 8, 8, 16),
];

const variantLabel = (T: number, k: MoeKernel) =>
  k === 'tiled'
    ? 'tiled 8 tokens × 16 rows'
    : `gemv ${k.groups}×32 thr, rows ${k.rows1}/${k.rows2}, tm ${moeGemvTokens(T, TOPK, EXPERTS, k)}${k.unroll > 1 ? `, unroll ${k.unroll}` : ''}${k.route1 ? '' : ', 3-pass routing'}${k.foldRoute ? ', routing folded' : ''}`;

/**
 * --variants: every decode kernel by kernel time at the decode sizes (`variant moe` rows), each
 * checked against the first kernel's output. The pick: each kernel's time over the fastest at the
 * same T, summed over the decode sizes, the smallest sum.
 */
export async function moeVariants(ctx: KernelBench): Promise<MoeKernel> {
  const layer = await moeLayer(ctx);
  const slowdown = new Map<MoeKernel, number>();
  for (const T of ctx.quick ? [1, 5] : [1, 4, 16, 64]) {
    const b = moeBatch(ctx, layer, T);
    // Every kernel is timed back to back first and checked afterwards (outputCheck.ts says why).
    const rows: [MoeKernel, KernelResult][] = [];
    for (const k of MOE_VARIANT_KERNELS) {
      const us = await timeKernel(ctx.dev, ctx.quick ? 2 : 10, () => b.encode(k));
      const row = ctx.add({
        suite: 'variant moe',
        T,
        us,
        bytes: b.weightBytes,
        flops: b.flops,
        note: variantLabel(T, k) + passNote(lastPassMedians()),
      });
      rows.push([k, row]);
    }
    let first: Uint16Array | null = null;
    for (const [k, r] of rows) {
      const got = await b.outputWords(k);
      first ??= got;
      r.note += `; vs first: max |Δ| ${maxAbs(got, first).toPrecision(2)} (${maxUlps(got, first)} ulp)`;
    }
    freeBatch(ctx);
    const fastest = Math.min(...rows.map(([, r]) => r.us));
    for (const [k, r] of rows) slowdown.set(k, (slowdown.get(k) ?? 0) + r.us / fastest);
  }
  ctx.dev.endRun();
  return [...slowdown.entries()].sort((a, c) => a[1] - c[1])[0][0];
}
