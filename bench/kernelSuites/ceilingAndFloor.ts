// What every kernel is measured against: the copy ceiling (the best of vec4 copies at a few sizes)
// and the pass floor (the fixed cost of a timed pass, taken apart, and of a run of steps as the
// executor submits them).

import { COPY_CEILING_WGSL } from '../../src/wgsl/allReduce.ts';
import { grid1d } from '../../src/wgsl/elementwise.ts';
import type { RankDevice } from '../../src/runtime/webgpu/rankDevice.ts';
import { median, timeCopy, timeKernel, timeLaunches, timeStepsAsRun } from '../kernelTiming.ts';
import type { KernelResult, KernelRig } from './context.ts';

/** The ceiling (GB/s, read + write bytes): the best of vec4 copies at a few sizes, each a `copy` row. */
export async function copyCeiling(rig: KernelRig): Promise<number> {
  const { dev, quick, results } = rig;
  const limit = Math.min(dev.device.limits.maxStorageBufferBindingSize, dev.device.limits.maxBufferSize);
  let ceiling = 0;
  for (const mib of quick ? [4, 16] : [64, 256, 1024]) {
    const bytes = Math.min(mib * 2 ** 20, Math.floor(limit / 16) * 16);
    const us = await timeCopy(dev, rig.iters, bytes);
    const gbs = (2 * bytes) / us / 1e3;
    ceiling = Math.max(ceiling, gbs);
    results.push({ suite: 'copy', T: bytes, us, bytes: 2 * bytes, flops: 0, gbs, gflops: 0, ofCeiling: 0 });
  }
  return ceiling;
}

/** A `pass floor` row: a fixed cost, no bytes. */
function floorRow(rig: KernelRig, T: number, us: number, note: string): KernelResult {
  const row = { suite: 'pass floor', T, us, bytes: 0, flops: 0, gbs: 0, gflops: 0, ofCeiling: 0, note };
  rig.results.push(row);
  return row;
}

/**
 * The fixed cost of a timed pass: one workgroup copying 16 B through RankDevice.submit, as every
 * kernel here is timed, then the same pass taken apart (timestamps alone, a reused bind group),
 * then a run's steps through the executor's path.
 */
export async function passFloorSuite(rig: KernelRig): Promise<void> {
  const { dev, quick, iters } = rig;
  const src = dev.alloc('copy.src', 16),
    dst = dev.alloc('copy.dst', 16);
  const copy16 = () =>
    dev.submit('copy', 'copy', (_e, pass) => pass(COPY_CEILING_WGSL, [src, dst], null, grid1d(1, 256)));
  const us = await timeKernel(dev, iters, copy16);
  const b2b = await timeLaunches(dev, 200, quick ? 2 : 5, copy16);
  dev.endRun();
  const submitRow = floorRow(
    rig,
    1,
    us,
    'RankDevice.submit: 16 B copy, one workgroup (meta buffer and bind group cached)',
  );
  submitRow.b2b_us = b2b;
  const parts = await passFloor(dev, iters);
  floorRow(rig, 2, parts.empty, 'an empty compute pass: its two timestamps alone');
  floorRow(rig, 3, parts.dispatch, 'one one-workgroup dispatch, pipeline and bind group reused');
  floorRow(
    rig,
    4,
    parts.freshMeta,
    'the same with a meta buffer mapped at creation and a bind group per pass (RankDevice.submit before caching)',
  );
  floorRow(
    rig,
    7,
    parts.freshDst,
    'the same writing a fresh, never-written 1 MiB buffer: WebGPU zero-fills it at this first use (scratch before workspaces)',
  );
  await stepRunRows(rig);
}

/** A kernel that does nothing: the dispatch alone. */
const EMPTY_WGSL = `@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) i: u32) { if (i == 1000u) { dst[0] = 1u; } }`;

/** A run's steps through the executor's path: one submit per step (before) against one for all. */
async function stepRunRows(rig: KernelRig): Promise<void> {
  const { dev, quick } = rig;
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
        rig,
        perStep ? 5 : 6,
        t.span,
        `${steps} steps of one ${kernel} as the executor runs them, ${perStep ? 'each step its own submit (before)' : 'all in one submit (after)'}: GPU span ÷ steps; median pass ${t.pass.toFixed(1)} µs, host wall ${t.host.toFixed(1)} µs per step`,
      );
    }
  }
  dev.endRun();
}

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
