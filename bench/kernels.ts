// `fusionlab bench kernels [--dtype bf16|f32] [--quick] [--variants] [--torch FILE] [--json FILE]
//   [--moe-layout JSON]` (JSON: MoE GEMV layout fields over the default's, for the main MoE suite)
// `fusionlab bench kernels --bundle` writes dist-bench/kernels.mjs: this suite with every
// dependency inlined but Dawn (`webgpu`), for a GPU host that has Node and Dawn but no node_modules.
// `fusionlab bench kernels --dump-logits FILE` writes the MoE's router logits for
// bench/torch_kernels.py --logits, so both sides route the same tokens to the same experts.
// Every row is timed two ways: kernel time (GPU timestamps around each call's passes, each call its
// own submit, median of repeated calls) and back to back (N calls in one submit, timestamps around
// the batch, ÷ N), each as GB/s and as a share of the copy ceiling measured in the same run (the
// better of our vec4 copy and torch's copy_). --torch FILE sets PyTorch's two timings beside them
// (CUPTI kernel time and CUDA-graph replay time, best of its named compiles). --quick uses small
// sizes, so SwiftShader can run it. --variants first times the layouts of the bf16 norm and MoE
// decode kernels side by side (one GPU session picks the defaults). Beside each norm size: a copy
// of the same byte count, since a small copy does not reach the large-copy ceiling either.
//
// Suites: add + RMSNorm ([T, 2880]); fused all-reduce + RMSNorm over 2 gathered rank buffers
// ([2, T, 2880] → [T, 2880], the kernel alone: the host transfer is not in it); the GPT-OSS-20B
// MoE forward (H 3072, 32 experts, top-4, intermediate 2880 at TP 1), counting the expert weights
// it must stream; GEMM (the addmm kernel).

import { readFileSync, writeFileSync } from 'node:fs';
import { nodeGpu } from '../src/runtime/nodeGpu.ts';
import { openRanks, type RankDevice } from '../src/runtime/webgpu/rankDevice.ts';
import { encodeNorm, encodeStep } from '../src/runtime/webgpu/encoders.ts';
import { seedExpertWeights, encodeMoeDispatch } from '../src/runtime/webgpu/moeEncoders.ts';
import { encodeSeed } from '../src/runtime/webgpu/elementwiseEncoders.ts';
import type { Plan, StorageDType, Step } from '../src/runtime/plan.ts';
import { bufferBytes } from '../src/wgsl/dtype.ts';
import { NORM_ROWS_DEFAULT, type NormRowsConfig } from '../src/wgsl/rmsNormRows.ts';
import type { NormParams } from '../src/wgsl/rmsNorm.ts';
import { MOE_GEMV_DEFAULT, moeGemvTokens, type MoeGemvConfig } from '../src/wgsl/moe.ts';
import { COPY_CEILING_WGSL } from '../src/wgsl/allReduce.ts';
import { grid1d } from '../src/wgsl/elementwise.ts';
import { routeToken } from '../src/runtime/cpuKernels.ts';
import { seededArray, seedRule } from '../src/runtime/weights.ts';
import { bf16UlpDistance, bf16ToF32 } from '../src/runtime/bf16.ts';
import { fnv1a32 } from '../src/runtime/random.ts';
import { PRESETS } from '../src/runtime/presets.ts';
import { flagValue } from './args.ts';
import { bundleSuite } from './bundle.ts';

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
interface TorchSide {
  suite: string;
  kernel: TorchTiming;
  graph: TorchTiming;
  /** Every compile's kernel µs, named. */
  compiles: string;
  /** Bytes the baseline streamed (MoE: its experts' weights), where they differ from ours. */
  bytes: number;
}

const HIDDEN = 2880,
  HPAD = 3072,
  EXPERTS = 32,
  TOPK = 4,
  INTER = 2880;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
};

/** Median time (µs) of each pass of the last timeKernel, for kernels of several dispatches. */
let lastPasses: number[] = [];

/**
 * Median kernel time (µs) of `iters` submissions of `encode`, from timestamp queries. Timings are
 * cleared after the warm-up, so each call counts only its own passes (a step index is reused by
 * every call; without clearing, a call's medians would include earlier calls' passes).
 */
export async function timeKernel(
  dev: RankDevice,
  iters: number,
  encode: (i: number) => void,
): Promise<number> {
  encode(-1); // warm: compile and first touch
  await dev.sync();
  dev.clearTimings();
  const durs: number[] = [];
  const perPass: number[][] = [];
  for (let i = 0; i < iters; i++) {
    dev.stepIndex = i;
    encode(i);
    await dev.sync();
  }
  const times = await dev.kernelTimes();
  for (let i = 0; i < iters; i++) {
    const t = times.get(i);
    if (!t) continue;
    durs.push(t.dur);
    t.passes.forEach((d, j) => (perPass[j] ??= []).push(d));
  }
  dev.clearTimings();
  lastPasses = perPass.map(median);
  return median(durs);
}

/**
 * µs per call of `n` calls encoded back to back into one command buffer and submitted once (GPU
 * timestamps around the batch, divided by n; the median of `reps` batches): what a stream of launches
 * costs with no host round trip between them, beside torch's CUDA-graph replays / calls.
 */
export async function timeLaunches(
  dev: RankDevice,
  n: number,
  reps: number,
  encode: (i: number) => void,
): Promise<number> {
  encode(-1);
  await dev.sync();
  dev.clearTimings();
  for (let r = 0; r < reps; r++) {
    dev.stepIndex = r;
    dev.beginBatch();
    for (let i = 0; i < n; i++) encode(i);
    dev.endBatch();
    await dev.sync();
  }
  const times = await dev.kernelTimes();
  dev.clearTimings();
  return median([...times.values()].map((t) => t.dur)) / n;
}

/**
 * A run of `n` one-dispatch steps as the executor submits them (each step's passes timestamped, the
 * host waiting once at the end), the median of `reps` runs: per step, the GPU span from the first
 * pass's start to the last pass's end ÷ n, the median pass, and the host's wall time ÷ n (encoding,
 * submitting and the wait). `perStepSubmit`: each step submitted as it is encoded, as the executor
 * did before its steps went to the queue in one submit.
 */
async function timeStepsAsRun(
  dev: RankDevice,
  n: number,
  reps: number,
  perStepSubmit: boolean,
  encode: () => void,
): Promise<{ span: number; pass: number; host: number }> {
  encode();
  await dev.sync();
  dev.clearTimings();
  const spans: number[] = [],
    passes: number[] = [],
    hosts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      dev.stepIndex = i;
      encode();
      if (perStepSubmit) dev.flush();
    }
    await dev.sync();
    hosts.push(((performance.now() - t0) * 1000) / n);
    const times = [...(await dev.kernelTimes()).values()];
    dev.clearTimings();
    const first = Math.min(...times.map((t) => t.start)),
      last = Math.max(...times.map((t) => t.start + t.dur));
    spans.push((last - first) / n);
    passes.push(median(times.map((t) => t.dur)));
  }
  return { span: median(spans), pass: median(passes), host: median(hosts) };
}

/** A kernel that does nothing: the dispatch alone. */
const EMPTY_WGSL = `@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) i: u32) { if (i == 1000u) { dst[0] = 1u; } }`;

/** An FMA-bound kernel: each thread runs a long chain of fused multiply-adds on 4 lanes. */
const FMA_WGSL = `@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  var a = vec4<f32>(f32(g.x) * 1e-7); let b = vec4<f32>(0.999, 0.998, 0.997, 0.996);
  for (var i = 0u; i < 4096u; i++) { a = fma(a, b, vec4<f32>(1e-6)); }
  dst[g.x] = a.x + a.y + a.z + a.w;
}`;

/**
 * The GPU idles at low clocks and raises them only under sustained load; kernels bound by
 * arithmetic (the MoE GEMVs at T ≥ 16) then run up to 3× slower than at full clocks, memory-bound
 * ones hardly at all (H100, 2026-12-06). Before any timing: FMA-bound batches back to back until
 * five in a row are within 1 % of the fastest (at most 15 s), the wall time of each batch by the host.
 */
export async function warmClocks(
  dev: RankDevice,
): Promise<{ first: number; steady: number; seconds: number; batches: number }> {
  const d = dev.device;
  const pipeline = d.createComputePipeline({
    layout: 'auto',
    compute: { module: d.createShaderModule({ code: FMA_WGSL }), entryPoint: 'main' },
  });
  const groups = 1024;
  const dst = d.createBuffer({ size: groups * 256 * 4, usage: GPUBufferUsage.STORAGE });
  const bg = d.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 1, resource: { buffer: dst } }],
  });
  const batch = async (): Promise<number> => {
    const t0 = performance.now();
    const enc = d.createCommandEncoder();
    for (let i = 0; i < 20; i++) {
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(groups);
      pass.end();
    }
    d.queue.submit([enc.finish()]);
    await d.queue.onSubmittedWorkDone();
    return (performance.now() - t0) * 1000;
  };
  const start = performance.now();
  const times: number[] = [await batch()];
  while (performance.now() - start < 15_000) {
    times.push(await batch());
    const best = Math.min(...times);
    const last5 = times.slice(-5);
    if (last5.length === 5 && last5.every((t) => t <= best * 1.01)) break;
  }
  dst.destroy();
  return {
    first: times[0],
    steady: Math.min(...times.slice(-5)),
    seconds: (performance.now() - start) / 1000,
    batches: times.length,
  };
}

export const warmUpLine = (w: Awaited<ReturnType<typeof warmClocks>>) =>
  `clock warm-up: an FMA-bound batch took ${w.first.toFixed(0)} µs at first, ${w.steady.toFixed(0)} µs steady after ${w.seconds.toFixed(1)} s (${w.batches} batches)`;

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

/** Launches per batch: about 3 ms of work, 4 to 200 calls. */
export const launchesFor = (us: number) => Math.max(4, Math.min(200, Math.ceil(3000 / us)));

/**
 * Medians (µs) of timestamped passes, each its own submit and waited for, as timeKernel times our
 * kernels: an empty pass; one dispatch of a one-workgroup kernel with its bind group made once;
 * the same with a fresh meta buffer (mapped at creation) and bind group per pass.
 */
async function passFloor(
  dev: RankDevice,
  iters: number,
): Promise<{ empty: number; dispatch: number; freshMeta: number; freshDst: number }> {
  const d = dev.device;
  d.pushErrorScope('validation');
  const qs = d.createQuerySet({ type: 'timestamp', count: 2 * iters });
  const code = `@group(0) @binding(0) var<storage, read> params: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) i: u32) { if (i == 0u) { dst[0] = params[0] + 1u; } }`;
  const pipeline = d.createComputePipeline({
    layout: 'auto',
    compute: { module: d.createShaderModule({ code }), entryPoint: 'main' },
  });
  const dst = d.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
  const meta0 = d.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
  const bindGroup = (meta: GPUBuffer, target = dst) =>
    d.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: meta } },
        { binding: 1, resource: { buffer: target } },
      ],
    });
  const reused = bindGroup(meta0);
  const resolve = d.createBuffer({
    size: 16 * iters,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const time = async (kind: 'empty' | 'dispatch' | 'freshMeta' | 'freshDst'): Promise<number> => {
    const made: GPUBuffer[] = [];
    for (let i = 0; i < iters; i++) {
      const enc = d.createCommandEncoder();
      const pass = enc.beginComputePass({
        timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
      if (kind !== 'empty') {
        let bg = reused;
        if (kind === 'freshMeta') {
          const m = d.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
          new Uint32Array(m.getMappedRange()).set([i, 0, 0, 0]);
          m.unmap();
          made.push(m);
          bg = bindGroup(m);
        }
        if (kind === 'freshDst') {
          // Never written: WebGPU's zero-fill of it happens at this first use.
          const fresh = d.createBuffer({ size: 1 << 20, usage: GPUBufferUsage.STORAGE });
          made.push(fresh);
          bg = bindGroup(meta0, fresh);
        }
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bg);
        pass.dispatchWorkgroups(1);
      }
      pass.end();
      d.queue.submit([enc.finish()]);
      await d.queue.onSubmittedWorkDone();
    }
    const enc = d.createCommandEncoder();
    enc.resolveQuerySet(qs, 0, 2 * iters, resolve, 0);
    d.queue.submit([enc.finish()]);
    const bytes = await dev.read(resolve, 0, 16 * iters);
    const ts = new BigInt64Array(bytes.buffer, bytes.byteOffset, 2 * iters);
    for (const b of made) b.destroy();
    return median(Array.from({ length: iters }, (_, i) => Number(ts[2 * i + 1] - ts[2 * i]) / 1000));
  };
  const out = {
    empty: await time('empty'),
    dispatch: await time('dispatch'),
    freshMeta: await time('freshMeta'),
    freshDst: await time('freshDst'),
  };
  for (const b of [dst, meta0, resolve]) b.destroy();
  qs.destroy();
  const err = await d.popErrorScope();
  if (err) throw new Error(`bench kernels: the pass-floor passes failed validation: ${err.message}`);
  return out;
}

/** add + RMSNorm over T rows of HIDDEN on one device: bindings out, resOut, x, res, w. */
function encodeAddNorm(
  dev: RankDevice,
  dtype: StorageDType,
  T: number,
  bindings: GPUBuffer[],
  layout: NormRowsConfig | 'legacy',
): void {
  encodeNorm(dev, 'add_rms_norm', 'fused_add_rms_norm', 'add', dtype, normRows(T, 1, 0), bindings, layout);
}

/** The fused all-reduce + RMSNorm over 2 ranks' rows gathered `slot` elements apart on this device. */
function encodeGatheredNorm(
  dev: RankDevice,
  dtype: StorageDType,
  T: number,
  slot: number,
  bindings: GPUBuffer[],
  layout: NormRowsConfig | 'legacy',
): void {
  encodeNorm(
    dev,
    'allreduce_norm',
    'fused_allreduce_norm',
    'allreduce',
    dtype,
    normRows(T, 2, slot),
    bindings,
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

function fill(
  dev: RankDevice,
  id: string,
  dtype: StorageDType,
  n: number,
  name: string,
  role: 'activation' | 'norm-weight' = 'activation',
): GPUBuffer {
  const b = dev.alloc(id, bufferBytes(dtype, n));
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

export async function bench(argv: string[]): Promise<number> {
  if (argv.includes('--bundle')) return bundleSuite('kernels');
  const dtype = (flagValue(argv, '--dtype') ?? 'bf16') as StorageDType;
  if (dtype !== 'bf16' && dtype !== 'f32') {
    process.stderr.write(`fusionlab bench kernels: --dtype takes bf16 | f32\n`);
    return 2;
  }
  const quick = argv.includes('--quick');
  const torchFile = flagValue(argv, '--torch');
  const jsonFile = flagValue(argv, '--json');
  const bp = dtype === 'bf16' ? 2 : 4;
  /** The experts a batch of T routes to (same top-k as the kernel, from the same seeded logits). */
  const routedExperts = (T: number): number => {
    const l = seededArray(7, fnv1a32('moe.logits'), T * EXPERTS, seedRule('activation', []), dtype);
    const active = new Set<number>();
    for (let t = 0; t < T; t++)
      for (const e of routeToken(l.subarray(t * EXPERTS, t * EXPERTS + EXPERTS), TOPK).ids) active.add(e);
    return active.size;
  };
  const moeTs = quick ? [1, 5, 37] : [1, 4, 16, 64, 256, 1024, 4096];
  const logitsFile = flagValue(argv, '--dump-logits');
  if (logitsFile) {
    // The logits our MoE routes, for bench/torch_kernels.py --logits: both sides then touch the same experts.
    const byT = Object.fromEntries(
      moeTs.map((T) => [
        T,
        Array.from(seededArray(7, fnv1a32('moe.logits'), T * EXPERTS, seedRule('activation', []), dtype)),
      ]),
    );
    writeFileSync(logitsFile, JSON.stringify(byT));
    process.stdout.write(`wrote the MoE logits for T = ${moeTs.join(', ')} to ${logitsFile}\n`);
    return 0;
  }
  const gpu = await nodeGpu();
  const [dev] = await openRanks(gpu, 1, { f16: false });
  // What the adapter offers beyond core WebGPU (subgroups, subgroup matrices), for the JSON and the log.
  const probe = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  const probeInfo = probe?.info as
    (GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number }) | undefined;
  const adapterFeatures = probe ? [...probe.features].sort() : [];
  const subgroupSizes = probeInfo ? [probeInfo.subgroupMinSize, probeInfo.subgroupMaxSize] : [];
  process.stdout.write(
    `adapter features: ${adapterFeatures.join(', ')}; subgroup sizes ${subgroupSizes.join('–')}\n`,
  );
  if (!dev.timestamps) {
    process.stderr.write(
      'fusionlab bench kernels: the adapter has no timestamp-query; kernel times cannot be measured\n',
    );
    return 2;
  }
  if (!quick) process.stdout.write(`${warmUpLine(await warmClocks(dev))}\n`);
  const iters = quick ? 3 : 20;
  const results: KernelResult[] = [];
  const limit = Math.min(dev.device.limits.maxStorageBufferBindingSize, dev.device.limits.maxBufferSize);

  // The ceiling: the best of vec4 copies at a few sizes (read + write bytes).
  let ceiling = 0;
  for (const mib of quick ? [4, 16] : [64, 256, 1024]) {
    const bytes = Math.min(mib * 2 ** 20, Math.floor(limit / 16) * 16);
    const src = dev.alloc('copy.src', bytes),
      dst = dev.alloc('copy.dst', bytes);
    const us = await timeKernel(dev, iters, () =>
      dev.submit('copy', 'copy', (_e, pass) =>
        pass(COPY_CEILING_WGSL, [src, dst], null, grid1d(bytes / 16, 256)),
      ),
    );
    dev.endRun();
    const gbs = (2 * bytes) / us / 1e3;
    ceiling = Math.max(ceiling, gbs);
    results.push({ suite: 'copy', T: bytes, us, bytes: 2 * bytes, flops: 0, gbs, gflops: 0, ofCeiling: 0 });
  }
  // The fixed cost of a timed pass: one workgroup copying 16 B through RankDevice.submit, as every
  // kernel here is timed, then the same pass taken apart (timestamps alone, a reused bind group).
  {
    const src = dev.alloc('copy.src', 16),
      dst = dev.alloc('copy.dst', 16);
    const us = await timeKernel(dev, iters, () =>
      dev.submit('copy', 'copy', (_e, pass) => pass(COPY_CEILING_WGSL, [src, dst], null, grid1d(1, 256))),
    );
    const floorRow = (T: number, us: number, note: string) =>
      results.push({ suite: 'pass floor', T, us, bytes: 0, flops: 0, gbs: 0, gflops: 0, ofCeiling: 0, note });
    const b2b = await timeLaunches(dev, 200, quick ? 2 : 5, () =>
      dev.submit('copy', 'copy', (_e, pass) => pass(COPY_CEILING_WGSL, [src, dst], null, grid1d(1, 256))),
    );
    dev.endRun();
    floorRow(1, us, 'RankDevice.submit: 16 B copy, one workgroup (meta buffer and bind group cached)');
    results[results.length - 1].b2b_us = b2b;
    const parts = await passFloor(dev, iters);
    floorRow(2, parts.empty, 'an empty compute pass: its two timestamps alone');
    floorRow(3, parts.dispatch, 'one one-workgroup dispatch, pipeline and bind group reused');
    floorRow(
      4,
      parts.freshMeta,
      'the same with a meta buffer mapped at creation and a bind group per pass (RankDevice.submit before caching)',
    );
    floorRow(
      7,
      parts.freshDst,
      'the same writing a fresh, never-written 1 MiB buffer: WebGPU zero-fills it at this first use (scratch before workspaces)',
    );
    // A run's steps through the executor's path: one submit per step (before) against one for all.
    const steps = 64;
    const stepSrc = dev.alloc('step.src', 16),
      stepDst = dev.alloc('step.dst', 16);
    for (const [kernel, code, bindings] of [
      ['empty kernel', EMPTY_WGSL, [stepDst]],
      ['16 B copy', COPY_CEILING_WGSL, [stepSrc, stepDst]],
    ] as const) {
      for (const perStep of [true, false]) {
        const t = await timeStepsAsRun(dev, steps, quick ? 2 : 7, perStep, () =>
          dev.submit('step', 'step', (_e, pass) => pass(code, [...bindings], null, grid1d(1, 256))),
        );
        floorRow(
          perStep ? 5 : 6,
          t.span,
          `${steps} steps of one ${kernel} as the executor runs them, ${perStep ? 'each step its own submit (before)' : 'all in one submit (after)'}: GPU span ÷ steps; median pass ${t.pass.toFixed(1)} µs, host wall ${t.host.toFixed(1)} µs per step`,
        );
      }
    }
    dev.endRun();
  }
  for (const r of results) r.ofCeiling = r.gbs / ceiling;
  const add = (r: Omit<KernelResult, 'gbs' | 'gflops' | 'ofCeiling'>) =>
    results.push({
      ...r,
      gbs: r.bytes / r.us / 1e3,
      gflops: r.flops / r.us / 1e3,
      ofCeiling: r.bytes / r.us / 1e3 / ceiling,
    });
  /** Kernel time (each call its own submit, timestamps around its passes) and µs per call back to back. */
  const timeBoth = async (
    kernelIters: number,
    encode: (i: number) => void,
  ): Promise<{ us: number; b2b: number; passes: number[] }> => {
    const us = await timeKernel(dev, kernelIters, encode);
    const passes = lastPasses;
    const b2b = await timeLaunches(dev, quick ? 3 : launchesFor(us), quick ? 2 : 5, encode);
    return { us, b2b, passes };
  };
  /** GB/s of a vec4 copy moving `moved` bytes (read + write), the same traffic as a kernel. */
  const sameSizeCopy = async (moved: number): Promise<number> => {
    const bytes = Math.max(16, Math.floor(moved / 2 / 16) * 16);
    const src = dev.alloc('copy.src', bytes),
      dst = dev.alloc('copy.dst', bytes);
    const us = await timeKernel(dev, iters, () =>
      dev.submit('copy', 'copy', (_e, pass) =>
        pass(COPY_CEILING_WGSL, [src, dst], null, grid1d(bytes / 16, 256)),
      ),
    );
    dev.endRun();
    return (2 * bytes) / us / 1e3;
  };
  const label = (c: NormRowsConfig | 'legacy') =>
    c === 'legacy'
      ? 'legacy 1 row/wg'
      : `${c.tpr}×${c.rpw}${c.cap ? ` cap ${c.cap}` : ''}${c.pipeline ? ' prefetch' : ''}`;

  /** bf16 words of the first and last `rows` rows of a [T, cols] buffer (what a broken layout would get wrong first). */
  const edgeRows = async (b: GPUBuffer, T: number, cols: number, rows = 256): Promise<Uint16Array> => {
    const k = Math.min(rows, T),
      bytes = k * cols * 2;
    const head = await dev.read(b, 0, bytes),
      tail = await dev.read(b, (T - k) * cols * 2, bytes);
    const out = new Uint16Array(2 * k * cols);
    out.set(new Uint16Array(head.buffer, head.byteOffset, k * cols), 0);
    out.set(new Uint16Array(tail.buffer, tail.byteOffset, k * cols), k * cols);
    return out;
  };
  /** Largest distance in bf16 ulps between two outputs: each layout is checked against the first on the device itself. */
  const maxUlps = (a: Uint16Array, b: Uint16Array) => {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, bf16UlpDistance(a[i], b[i]));
    return m;
  };
  const maxAbs = (a: Uint16Array, b: Uint16Array) => {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(bf16ToF32(a[i]) - bf16ToF32(b[i])));
    return m;
  };

  // Layouts the main suites use: the defaults, or with --variants the fastest of those timed here.
  const normPick: Record<'add' | 'allreduce', NormRowsConfig | 'legacy'> = {
    add: NORM_ROWS_DEFAULT,
    allreduce: NORM_ROWS_DEFAULT,
  };
  // --moe-layout '{"fma":true,…}': GEMV layout fields over the default's, for the main MoE suite.
  const layoutFlag = flagValue(argv, '--moe-layout');
  let moePick: MoeGemvConfig | 'tiled' = layoutFlag
    ? { ...MOE_GEMV_DEFAULT, ...(JSON.parse(layoutFlag) as Partial<MoeGemvConfig>) }
    : MOE_GEMV_DEFAULT;
  const passNote = () =>
    lastPasses.length > 1 ? `; passes ${lastPasses.map((d) => d.toFixed(1)).join(' + ')} µs` : '';

  if (argv.includes('--variants') && dtype === 'bf16') {
    const layouts: (NormRowsConfig | 'legacy')[] = [
      'legacy',
      { tpr: 192, rpw: 1, cap: 0, pipeline: false },
      { tpr: 128, rpw: 2, cap: 0, pipeline: false },
      ...[528, 1056, 2112].map((cap) => ({ tpr: 192, rpw: 1, cap, pipeline: true })),
      { tpr: 128, rpw: 2, cap: 528, pipeline: true },
      { tpr: 96, rpw: 2, cap: 0, pipeline: false },
      { tpr: 96, rpw: 2, cap: 1056, pipeline: true },
      { tpr: 64, rpw: 4, cap: 0, pipeline: false },
      { tpr: 32, rpw: 8, cap: 0, pipeline: false },
      { tpr: 180, rpw: 1, cap: 0, pipeline: false },
      { tpr: 180, rpw: 1, cap: 1056, pipeline: true },
      { tpr: 120, rpw: 1, cap: 0, pipeline: false },
    ];
    for (const T of quick ? [64] : [4096, 16384]) {
      const n = T * HIDDEN;
      const x = fill(dev, 'x', dtype, n, 'x'),
        res = fill(dev, 'res', dtype, n, 'res'),
        w = fill(dev, 'w', dtype, HIDDEN, 'w', 'norm-weight');
      const out = dev.alloc('out', bufferBytes(dtype, n)),
        resOut = dev.alloc('resOut', bufferBytes(dtype, n));
      const slot = Math.ceil(n / 8) * 8;
      const g = fill(dev, 'gathered', dtype, 2 * slot, 'gathered');
      const best = { add: Infinity, allreduce: Infinity };
      const encodeAdd = (lay: NormRowsConfig | 'legacy') =>
        encodeAddNorm(dev, dtype, T, [out, resOut, x, res, w], lay);
      const encodeAr = (lay: NormRowsConfig | 'legacy') =>
        encodeGatheredNorm(dev, dtype, T, slot, [out, resOut, g, res, w], lay);
      // Every layout is timed back to back first and checked afterwards: host-side checks between
      // timings leave the GPU idle, and on an H200 later timings then came out several times slower.
      const rows: { lay: NormRowsConfig | 'legacy'; add: KernelResult; ar: KernelResult }[] = [];
      for (const lay of layouts) {
        let us = await timeKernel(dev, iters, () => encodeAdd(lay));
        if (T === 16384 && us < best.add) {
          best.add = us;
          normPick.add = lay;
        }
        add({
          suite: 'variant add+rmsnorm',
          T,
          us,
          bytes: (4 * n + HIDDEN) * bp,
          flops: 5 * n,
          note: label(lay),
        });
        const addRow = results[results.length - 1];
        us = await timeKernel(dev, iters, () => encodeAr(lay));
        if (T === 16384 && us < best.allreduce) {
          best.allreduce = us;
          normPick.allreduce = lay;
        }
        add({
          suite: 'variant allreduce+rmsnorm',
          T,
          us,
          bytes: (5 * n + HIDDEN) * bp,
          flops: 6 * n,
          note: label(lay),
        });
        rows.push({ lay, add: addRow, ar: results[results.length - 1] });
      }
      let firstAdd: Uint16Array[] | null = null,
        firstAr: Uint16Array[] | null = null;
      for (const r of rows) {
        encodeAdd(r.lay);
        await dev.sync();
        const gotAdd = [await edgeRows(out, T, HIDDEN), await edgeRows(resOut, T, HIDDEN)];
        firstAdd ??= gotAdd;
        r.add.note += `; vs first: out ≤ ${maxUlps(gotAdd[0], firstAdd[0])} ulp, residual ≤ ${maxUlps(gotAdd[1], firstAdd[1])} ulp`;
        encodeAr(r.lay);
        await dev.sync();
        const gotAr = [await edgeRows(out, T, HIDDEN), await edgeRows(resOut, T, HIDDEN)];
        firstAr ??= gotAr;
        r.ar.note += `; vs first: out ≤ ${maxUlps(gotAr[0], firstAr[0])} ulp, residual ≤ ${maxUlps(gotAr[1], firstAr[1])} ulp`;
      }
      dev.endRun();
    }
    const H = quick ? 48 : HPAD,
      I = quick ? PRESETS.tiny.intermediate : INTER;
    const weights = seedExpertWeights(dev, 'moe', 'vllm.moe_forward', {
      layer: 'bench.moe',
      experts: EXPERTS,
      hidden: H,
      interShard: I,
      interFull: I,
      dtype,
      seed: 7,
      keep: true,
    });
    await dev.sync();
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
    const kernels: (MoeGemvConfig | 'tiled')[] = [
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
    // Each kernel's time over the fastest at the same T, summed over the decode sizes: the pick is the smallest sum.
    const slowdown = new Map<MoeGemvConfig | 'tiled', number>();
    for (const T of quick ? [1, 5] : [1, 4, 16, 64]) {
      const timed: [MoeGemvConfig | 'tiled', number][] = [];
      const x = fill(dev, 'moe.x', dtype, T * H, 'moe.x'),
        logits = fill(dev, 'moe.logits', dtype, T * EXPERTS, 'moe.logits');
      const out = dev.alloc('moe.out', bufferBytes(dtype, T * H));
      const weightBytes = routedExperts(T) * 3 * I * H * bp;
      const encode = (k: MoeGemvConfig | 'tiled') =>
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
          decodeKernel: k,
        });
      const rows: [MoeGemvConfig | 'tiled', KernelResult][] = [];
      for (const k of kernels) {
        const us = await timeKernel(dev, quick ? 2 : 10, () => encode(k));
        timed.push([k, us]);
        add({
          suite: 'variant moe',
          T,
          us,
          bytes: weightBytes,
          flops: T * TOPK * 2 * 3 * I * H,
          note:
            (k === 'tiled'
              ? 'tiled 8 tokens × 16 rows'
              : `gemv ${k.groups}×32 thr, rows ${k.rows1}/${k.rows2}, tm ${moeGemvTokens(T, TOPK, EXPERTS, k)}${k.unroll > 1 ? `, unroll ${k.unroll}` : ''}${k.route1 ? '' : ', 3-pass routing'}${k.foldRoute ? ', routing folded' : ''}`) +
            passNote(),
        });
        rows.push([k, results[results.length - 1]]);
      }
      let first: Uint16Array | null = null;
      for (const [k, r] of rows) {
        encode(k);
        await dev.sync();
        const bytes = await dev.read(out, 0, T * H * 2);
        const got = new Uint16Array(bytes.buffer, bytes.byteOffset, T * H);
        first ??= got;
        r.note += `; vs first: max |Δ| ${maxAbs(got, first).toPrecision(2)} (${maxUlps(got, first)} ulp)`;
      }
      for (const id of ['moe.x', 'moe.logits', 'moe.out']) dev.free(id);
      const fastest = Math.min(...timed.map(([, us]) => us));
      for (const [k, us] of timed) slowdown.set(k, (slowdown.get(k) ?? 0) + us / fastest);
    }
    dev.endRun();
    moePick = [...slowdown.entries()].sort((a, b) => a[1] - b[1])[0][0];
    const moeLabel = moePick === 'tiled' ? 'tiled' : JSON.stringify(moePick);
    process.stdout.write(
      `picked by --variants: add+rmsnorm ${label(normPick.add)}, allreduce+rmsnorm ${label(normPick.allreduce)}, moe decode ${moeLabel}\n`,
    );
  }

  // add + RMSNorm and the fused all-reduce + RMSNorm (2 ranks' rows gathered on this device).
  const normTs = quick ? [1, 7, 64] : [1, 16, 128, 1024, 4096, 16384];
  for (const T of normTs) {
    const n = T * HIDDEN;
    const x = fill(dev, 'x', dtype, n, 'x'),
      res = fill(dev, 'res', dtype, n, 'res'),
      w = fill(dev, 'w', dtype, HIDDEN, 'w', 'norm-weight');
    const out = dev.alloc('out', bufferBytes(dtype, n)),
      resOut = dev.alloc('resOut', bufferBytes(dtype, n));
    let t = await timeBoth(iters, () => encodeAddNorm(dev, dtype, T, [out, resOut, x, res, w], normPick.add));
    add({
      suite: 'add+rmsnorm',
      T,
      us: t.us,
      b2b_us: t.b2b,
      bytes: (4 * n + HIDDEN) * bp,
      flops: 5 * n,
      note: label(normPick.add),
    });
    const slot = Math.ceil(n / 8) * 8;
    const g = fill(dev, 'gathered', dtype, 2 * slot, 'gathered');
    t = await timeBoth(iters, () =>
      encodeGatheredNorm(dev, dtype, T, slot, [out, resOut, g, res, w], normPick.allreduce),
    );
    add({
      suite: 'allreduce+rmsnorm (2 ranks gathered)',
      T,
      us: t.us,
      b2b_us: t.b2b,
      bytes: (5 * n + HIDDEN) * bp,
      flops: 6 * n,
      note: label(normPick.allreduce),
    });
    dev.endRun();
    // The same traffic as a plain copy: the fair ceiling for a kernel of this size, printed beside the large-copy one.
    const [addRow, arRow] = results.slice(-2);
    for (const r of [addRow, arRow]) {
      const copy = await sameSizeCopy(r.bytes);
      r.note = `${r.note}; same-size copy ${copy.toFixed(0)} GB/s, ${((100 * r.gbs) / copy).toFixed(1)} % of it`;
    }
  }

  // add + RMSNorm layouts at T = 4096 and 16384, each timed both ways (all timed first, then each
  // checked against the first on the device): how many rows are in flight per wave of the SMs is
  // what changes between them (192 threads: 10 workgroups an SM; 180: 11; 120: 17; 64 × 4 rows: 8).
  if (dtype === 'bf16') {
    const layouts: NormRowsConfig[] = [
      NORM_ROWS_DEFAULT,
      { tpr: 180, rpw: 1, cap: 0, pipeline: false },
      { tpr: 120, rpw: 1, cap: 0, pipeline: false },
      { tpr: 128, rpw: 2, cap: 0, pipeline: false },
      { tpr: 96, rpw: 2, cap: 0, pipeline: false },
      { tpr: 64, rpw: 4, cap: 0, pipeline: false },
      { tpr: 180, rpw: 1, cap: 1452, pipeline: true },
      { tpr: 120, rpw: 1, cap: 2244, pipeline: true },
    ];
    for (const T of quick ? [64] : [4096, 16384]) {
      const n = T * HIDDEN;
      const x = fill(dev, 'x', dtype, n, 'x'),
        res = fill(dev, 'res', dtype, n, 'res'),
        w = fill(dev, 'w', dtype, HIDDEN, 'w', 'norm-weight');
      const out = dev.alloc('out', bufferBytes(dtype, n)),
        resOut = dev.alloc('resOut', bufferBytes(dtype, n));
      const rows: { lay: NormRowsConfig; row: KernelResult }[] = [];
      for (const lay of layouts) {
        const t = await timeBoth(iters, () => encodeAddNorm(dev, dtype, T, [out, resOut, x, res, w], lay));
        add({
          suite: 'add+rmsnorm layout',
          T,
          us: t.us,
          b2b_us: t.b2b,
          bytes: (4 * n + HIDDEN) * bp,
          flops: 5 * n,
          note: label(lay),
        });
        rows.push({ lay, row: results[results.length - 1] });
      }
      let first: Uint16Array[] | null = null;
      for (const r of rows) {
        encodeAddNorm(dev, dtype, T, [out, resOut, x, res, w], r.lay);
        await dev.sync();
        const got = [await edgeRows(out, T, HIDDEN), await edgeRows(resOut, T, HIDDEN)];
        first ??= got;
        r.row.note += `; vs first: out ≤ ${maxUlps(got[0], first[0])} ulp, residual ≤ ${maxUlps(got[1], first[1])} ulp`;
      }
      dev.endRun();
    }
  }

  // MoE forward at GPT-OSS-20B layer dims (TP 1); quick: the tiny preset's sizes.
  const H = quick ? 48 : HPAD,
    E = EXPERTS,
    I = quick ? PRESETS.tiny.intermediate : INTER;
  const weights = seedExpertWeights(dev, 'moe', 'vllm.moe_forward', {
    layer: 'bench.moe',
    experts: E,
    hidden: H,
    interShard: I,
    interFull: I,
    dtype,
    seed: 7,
    keep: true,
  });
  await dev.sync();
  for (const T of moeTs) {
    const x = fill(dev, 'moe.x', dtype, T * H, 'moe.x'),
      logits = fill(dev, 'moe.logits', dtype, T * E, 'moe.logits');
    const out = dev.alloc('moe.out', bufferBytes(dtype, T * H));
    const encode = (decodeKernel: MoeGemvConfig | 'tiled', freshScratch = false) =>
      encodeMoeDispatch(dev, 'moe', 'vllm.moe_forward', {
        T,
        H,
        E,
        K: TOPK,
        Is: I,
        dtype,
        logitsDtype: dtype,
        x,
        xOff: 0,
        xRowStride: H,
        logits,
        lOff: 0,
        lRowStride: E,
        out,
        weights,
        decodeKernel,
        freshScratch,
      });
    const t = await timeBoth(quick ? 2 : 10, () => encode(moePick));
    const active = routedExperts(T);
    const weightBytes = active * 3 * I * H * bp;
    add({
      suite: 'moe (expert weights streamed)',
      T,
      us: t.us,
      b2b_us: t.b2b,
      bytes: weightBytes,
      flops: T * TOPK * 2 * 3 * I * H,
      note: `${active} experts${layoutFlag ? `; layout ${layoutFlag}` : ''}${passNote()}`,
    });
    // Without the routing pass (its first), for the baseline whose routing is precomputed.
    // Its last three passes are W13, W2 and combine; the ones before them route (none: routing folded into W13's).
    if (t.passes.length >= 3)
      add({
        suite: 'moe without routing',
        T,
        us: t.passes.slice(-3).reduce((a, b) => a + b, 0),
        bytes: weightBytes,
        flops: T * TOPK * 2 * 3 * I * H,
        note: `${active} experts; our passes after routing, kernel time only${t.passes.length === 3 ? ' (routing folded into the W13 pass: included)' : ''}`,
      });
    // The decode kernels as they were before routing folded into W13 at T = 1.
    if (moePick !== 'tiled' && T <= 64 && !quick) {
      const before = await timeBoth(10, () => encode({ ...moePick, foldRoute: false }));
      add({
        suite: 'moe, previous decode kernels',
        T,
        us: before.us,
        b2b_us: before.b2b,
        bytes: weightBytes,
        flops: T * TOPK * 2 * 3 * I * H,
        note: `${active} experts; routing pass; passes ${before.passes.map((d) => d.toFixed(1)).join(' + ')} µs`,
      });
    }
    // The same kernels with fresh intermediates every call, as before they were workspaces: WebGPU
    // zero-fills a fresh buffer on its first use (Dawn on Vulkan inside the pass that binds it:
    // pass floor row 7); RankDevice now clears them before the pass, so the kernel times should
    // match the workspaces' and only the back-to-back time carries the fills.
    if (moePick !== 'tiled' && T <= 64 && !quick) {
      const fresh = await timeBoth(10, () => encode(moePick, true));
      add({
        suite: 'moe, fresh scratch',
        T,
        us: fresh.us,
        b2b_us: fresh.b2b,
        bytes: weightBytes,
        flops: T * TOPK * 2 * 3 * I * H,
        note: `${active} experts; route, weights, act and y_k made per call, zero-filled before the passes; passes ${fresh.passes.map((d) => d.toFixed(1)).join(' + ')} µs`,
      });
    }
    // Other GEMV layouts beside the default, timed the same way in the same loop, each checked
    // bitwise against the default's output on the device (every layout sums in the same order).
    if (moePick !== 'tiled' && T <= 64 && dtype === 'bf16') {
      const pick = moePick;
      const outWords = async (cfg: MoeGemvConfig): Promise<Uint16Array> => {
        encode(cfg);
        await dev.sync();
        const b = await dev.read(out, 0, T * H * 2);
        return new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + T * H * 2));
      };
      // The default's output, and with `fma` the default's with fma (another summation order).
      const wants = new Map<boolean, Uint16Array>();
      for (const more of MOE_LAYOUTS) {
        const cfg = { ...pick, ...more };
        const lt = await timeBoth(quick ? 2 : 10, () => encode(cfg));
        const got = await outWords(cfg);
        if (!wants.has(cfg.fma)) wants.set(cfg.fma, await outWords({ ...pick, fma: cfg.fma }));
        const want = wants.get(cfg.fma) as Uint16Array;
        const diff = got.reduce((c, w, i) => c + (w !== want[i] ? 1 : 0), 0);
        add({
          suite: 'moe layout',
          layout: more,
          T,
          us: lt.us,
          b2b_us: lt.b2b,
          bytes: weightBytes,
          flops: T * TOPK * 2 * 3 * I * H,
          note: `${moeLayoutLabel(more)}, tm ${moeGemvTokens(T, TOPK, E, cfg)}; ${diff === 0 ? 'bitwise' : `${diff} words differ from`} the default${cfg.fma !== pick.fma ? ` with fma ${cfg.fma}` : ''}`,
        });
      }
    }
    for (const id of ['moe.x', 'moe.logits', 'moe.out']) dev.free(id);
  }
  dev.endRun();

  // GEMM: the addmm kernel, [M, K] · [N, K]ᵀ (a Linear layer).
  for (const [M, N, K] of quick
    ? [[37, 29, 83]]
    : [
        [64, 2880, 2880],
        [2048, 2880, 2880],
        [4096, 5120, 2880],
      ]) {
    const a = fill(dev, 'a', dtype, M * K, 'a'),
      b = fill(dev, 'b', dtype, N * K, 'b');
    dev.alloc('c', bufferBytes(dtype, M * N));
    void a;
    void b;
    const view = (storage: string, shape: number[], strides: number[]) => ({
      storage,
      dtype,
      offset: 0,
      shape,
      strides,
    });
    const step = {
      kernel: 'gemm',
      node: 'gemm',
      op: 'aten.mm.default',
      a: view('a', [M, K], [K, 1]),
      b: view('b', [K, N], [1, K]),
      bias: null,
      alpha: 1,
      beta: 0,
      out: 'c',
    } as Step;
    const plan = {
      storages: new Map([['c', { id: 'c', dtype, shape: [M, N], numel: M * N }]]),
    } as unknown as Plan;
    const t = await timeBoth(iters, () => encodeStep(step, dev, plan, 0));
    add({
      suite: 'gemm',
      T: M,
      us: t.us,
      b2b_us: t.b2b,
      bytes: (M * K + N * K + M * N) * bp,
      flops: 2 * M * N * K,
      note: `${M}×${N}×${K}`,
    });
    dev.endRun();
  }

  let ceilingNote = `vec4 copy ${ceiling.toFixed(1)} GB/s`;
  let torchOn = '';
  if (torchFile) {
    const parsed = JSON.parse(readFileSync(torchFile, 'utf8')) as
      TorchTiming[] | { torch: string; device: string; results: TorchTiming[] };
    const torch = Array.isArray(parsed) ? parsed : parsed.results;
    if (!Array.isArray(parsed)) torchOn = `torch ${parsed.torch} on ${parsed.device}`;
    for (const r of results) r.torch = torchSide(r, torch, bp);
    const torchCopy = Math.max(
      0,
      ...torch.filter((x) => x.suite === 'copy').map((x) => (2 * x.T) / x.us / 1e3),
    );
    ceilingNote = `best of our vec4 copy ${ceiling.toFixed(1)} GB/s and torch copy_ ${torchCopy.toFixed(1)} GB/s`;
    ceiling = Math.max(ceiling, torchCopy);
    for (const r of results) r.ofCeiling = r.gbs / ceiling;
  }
  const device = dev.adapterName;
  dev.destroy();
  process.stdout.write(
    `kernels on ${device}, ${dtype}; ceiling: ${ceilingNote} (read + write)${torchOn ? `; ${torchOn}` : ''}${quick ? ' [--quick sizes]' : ''}\n` +
      "kernel: timestamps around each call's passes (torch: CUPTI kernel time in CUDA-graph replays); " +
      'b2b: µs per call of N calls in one submit (torch: graph replay / calls); % of the ceiling for each; ' +
      'ours/torch: kernel/kernel and b2b/graph, MoE per byte each side streamed\n',
  );
  process.stdout.write(formatTable(results, ceiling, !!torchFile));
  if (jsonFile)
    writeFileSync(
      jsonFile,
      JSON.stringify(
        { device, dtype, ceiling_gbs: ceiling, adapterFeatures, subgroupSizes, results },
        null,
        1,
      ),
    );
  return 0;
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

function formatTable(results: KernelResult[], ceiling: number, withTorch: boolean): string {
  const pct = (bytes: number, us: number | undefined) =>
    us && bytes ? `${((100 * bytes) / us / 1e3 / ceiling).toFixed(1)}%` : '-';
  const f = (x: number | undefined, d = 1) => (x === undefined ? '-' : x.toFixed(d));
  const cols: [string, number][] = [
    ['suite', 38],
    ['T', 11],
    ['kernel µs', 11],
    ['b2b µs', 10],
    ['GB/s', 9],
    ['% kernel', 9],
    ['% b2b', 8],
  ];
  if (withTorch)
    cols.push(['torch kern', 11], ['torch graph', 12], ['% torch', 8], ['kern ratio', 11], ['b2b ratio', 10]);
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(cols[i][1]) : c.padStart(cols[i][1]))).join('');
  let out = `${line(cols.map(([c]) => c))}  note\n`;
  for (const r of results) {
    const cells = [
      r.suite,
      String(r.T),
      f(r.us),
      f(r.b2b_us),
      f(r.gbs),
      pct(r.bytes, r.us),
      pct(r.bytes, r.b2b_us),
    ];
    let note = r.note ?? '';
    if (withTorch) {
      const t = r.torch;
      // Time per byte streamed on each side: equal to the time ratio where both move the same bytes.
      const ratio = (ours: number | undefined, theirs: number | undefined) =>
        t && ours && theirs ? ((ours / r.bytes) * t.bytes) / theirs : undefined;
      cells.push(
        f(t?.kernel.us, 2),
        f(t?.graph.graph_us, 2),
        t ? pct(t.bytes, t.kernel.us) : '-',
        f(ratio(r.us, t?.kernel.us), 2),
        f(ratio(r.b2b_us, t?.graph.graph_us), 2),
      );
      if (t) {
        note += `${note ? '; ' : ''}torch kernel: ${t.kernel.compile ?? t.suite}, graph: ${t.graph.compile ?? t.suite}`;
        if (t.bytes !== r.bytes)
          note += `; torch streamed ${(t.bytes / 1e6).toFixed(1)} MB, ours ${(r.bytes / 1e6).toFixed(1)}`;
        if (t.kernel.gemm_us !== undefined) note += `; its grouped GEMMs ${t.kernel.gemm_us.toFixed(2)} µs`;
      }
    }
    out += `${line(cells)}  ${note}\n`;
  }
  return out;
}
