// How the kernel benches time the GPU: kernel time from timestamp queries (each call its own
// submit), back-to-back launches in one submit, a run of steps as the executor submits them, and
// the clock warm-up before any of it. bench/kernels.ts re-exports what bench/fusions.ts uses.

import type { RankDevice } from '../src/runtime/webgpu/rankDevice.ts';
import { COPY_CEILING_WGSL } from '../src/wgsl/allReduce.ts';
import { grid1d } from '../src/wgsl/elementwise.ts';

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
};

/** Median time (µs) of each pass of the last timeKernel, for kernels of several dispatches. */
let lastPasses: number[] = [];

/** The per-pass medians of the last timeKernel call. */
export const lastPassMedians = (): number[] => lastPasses;

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
export async function timeStepsAsRun(
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

/** Launches per batch: about 3 ms of work, 4 to 200 calls. */
export const launchesFor = (us: number) => Math.max(4, Math.min(200, Math.ceil(3000 / us)));

/** Kernel time (µs) of the ceiling's vec4 copy of `bytes` bytes, its buffers freed after. */
export async function timeCopy(dev: RankDevice, iters: number, bytes: number): Promise<number> {
  const src = dev.alloc('copy.src', bytes),
    dst = dev.alloc('copy.dst', bytes);
  const us = await timeKernel(dev, iters, () =>
    dev.submit('copy', 'copy', (_e, pass) =>
      pass(COPY_CEILING_WGSL, [src, dst], null, grid1d(bytes / 16, 256)),
    ),
  );
  dev.endRun();
  return us;
}
