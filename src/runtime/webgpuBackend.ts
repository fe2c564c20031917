// The `webgpu` backend: one GPUDevice per rank, each from its own requestAdapter(). Every step is
// encoded and submitted per rank inside an error scope, so a validation error names its node.
// Collectives move data between ranks through the host (see collectives.ts). Kernel times come
// from timestamp queries where the adapter has them.

import type { Backend, RunOptions, RunProgress, RunResult, TraceEvent } from './backend.ts';
import { DEFAULT_SEED } from './backend.ts';
import type { FusedNormRounding, Plan, Step, View, StorageDType } from './plan.ts';
import { assertNever } from '../graph/opTable.ts';
import { asRows, broadcastStrides, numelOf } from './plan.ts';
import { RunError } from './runError.ts';
import { toHostTensor, hostValues, type HostTensor } from './hostTensor.ts';
import { readView } from './cpuKernels.ts';
import { bf16ToF32, f16ToF32 } from './bf16.ts';
import { seedRule, seedStream, expertTensors } from './weights.ts';
import { inputTensorFor } from './cpuBackend.ts';
import { bufferBytes } from '../wgsl/dtype.ts';
import { bf16Bits } from './bf16.ts';
import { elementwiseMeta, elementwiseWgsl, f32Bits, grid1d, MAX_DIMS, ELEMENTWISE_WG } from '../wgsl/elementwise.ts';
import { gemmWgsl, GEMM_TILE } from '../wgsl/gemm.ts';
import { rmsNormWgsl, normVector, type NormMode } from '../wgsl/rmsNorm.ts';
import { rmsNormRowsWgsl, normRowsGrid, NORM_ROWS_DEFAULT, type NormRowsConfig } from '../wgsl/rmsNormRows.ts';
import { moeRouteWgsl, MOE_SCAN_WGSL, MOE_SCATTER_WGSL, moeGemmWgsl, moeDecodeGemmWgsl, moeCombineWgsl, moeGemvWgsl, moeGemvTokens, useMoeGemv, moeRoute1Wgsl, MOE_ROUTE1_MAX_E, MOE_ROUTE1_MAX_PAIRS, MOE_GEMV_DEFAULT, type MoeGemvConfig, routeWords, moeTileCapacity, useDecodeKernels, MOE_TN, MOE_TM, MOE_DECODE_TM, MOE_DECODE_ROWS, MOE_MAX_K } from '../wgsl/moe.ts';
import { runCollective, collectiveKernels, type CollectiveStep } from './collectives.ts';
import { PRESETS } from './presets.ts';

const MAX_QUERIES = 4096;

/** One rank's device and what it holds during a run. */
export class RankDevice {
  readonly buffers = new Map<string, GPUBuffer>();
  readonly pipelines = new Map<string, GPUComputePipeline>();
  lost: string | null = null;
  currentNode = '';
  private querySet: GPUQuerySet | null = null;
  private queries = 0;
  /** Per pass: the step it belongs to, its two query slots. */
  readonly passes: { step: number; q: number }[] = [];
  private pendingErrors: { node: string; op: string; p: Promise<GPUError | null> }[] = [];
  private transient: GPUBuffer[] = [];
  stepIndex = -1;

  /** The device's subgroup size where it has the `subgroups` feature and one fixed size, else 0 (kernels then reduce through workgroup memory). */
  subgroupSize = 0;

  constructor(readonly rank: number, readonly device: GPUDevice, readonly adapterName: string, readonly timestamps: boolean) {
    device.lost.then((info) => { this.lost = info.message || info.reason || 'lost'; });
    if (timestamps) this.querySet = device.createQuerySet({ type: 'timestamp', count: MAX_QUERIES });
  }

  buffer(id: string): GPUBuffer {
    const b = this.buffers.get(id);
    if (!b) throw new Error(`rank ${this.rank}: storage ${id} is not allocated`);
    return b;
  }

  alloc(id: string, bytes: number): GPUBuffer {
    const b = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label: id });
    this.buffers.set(id, b);
    return b;
  }

  scratch(bytes: number, label: string): GPUBuffer {
    const b = this.device.createBuffer({ size: Math.max(16, bytes), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label });
    this.transient.push(b);
    return b;
  }

  free(id: string): void {
    this.buffers.get(id)?.destroy();
    this.buffers.delete(id);
  }

  pipeline(code: string): GPUComputePipeline {
    let p = this.pipelines.get(code);
    if (!p) {
      const module = this.device.createShaderModule({ code });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(code, p);
    }
    return p;
  }

  /** Compile a kernel ahead of its first dispatch (the step loop then finds it in `pipelines`). */
  async compile(code: string): Promise<void> {
    if (this.pipelines.has(code)) return;
    // A WGSL error rejects the pipeline; the scope keeps it from also surfacing as an uncaptured error.
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code });
    const pending = this.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    void this.device.popErrorScope();
    pending.catch(() => undefined); // when the device is lost first, nobody awaits it
    const p = await Promise.race([pending, this.device.lost.then(() => null)]);
    if (!p) throw new Error(`rank ${this.rank}'s device was lost`);
    this.pipelines.set(code, p);
  }

  /** Encode and submit one step's dispatches, inside error scopes. */
  submit(node: string, op: string, encode: (enc: GPUCommandEncoder, pass: (code: string, bindings: (GPUBuffer | null)[], meta: Uint32Array | null, grid: [number, number, number?]) => void) => void): void {
    this.currentNode = node;
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    const enc = this.device.createCommandEncoder({ label: node });
    encode(enc, (code, bindings, meta, grid) => {
      const pipeline = this.pipeline(code);
      const entries: GPUBindGroupEntry[] = [];
      if (meta) {
        const mb = this.device.createBuffer({ size: Math.max(16, meta.byteLength), usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
        new Uint32Array(mb.getMappedRange()).set(meta);
        mb.unmap();
        this.transient.push(mb);
        entries.push({ binding: 0, resource: { buffer: mb } });
      }
      bindings.forEach((b, i) => { if (b) entries.push({ binding: i + 1, resource: { buffer: b } }); });
      const bg = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      let timestampWrites: GPUComputePassTimestampWrites | undefined;
      if (this.querySet && this.queries + 2 <= MAX_QUERIES) {
        timestampWrites = { querySet: this.querySet, beginningOfPassWriteIndex: this.queries, endOfPassWriteIndex: this.queries + 1 };
        this.passes.push({ step: this.stepIndex, q: this.queries });
        this.queries += 2;
      }
      const pass = enc.beginComputePass({ label: node, timestampWrites });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(grid[0], grid[1], grid[2] ?? 1);
      pass.end();
    });
    this.device.queue.submit([enc.finish()]);
    const validation = this.device.popErrorScope();
    const oom = this.device.popErrorScope();
    this.pendingErrors.push({ node, op, p: validation }, { node, op, p: oom });
  }

  /** Wait for submitted work; throw RunError for the first failed step or a lost device. */
  async sync(): Promise<void> {
    const pending = this.pendingErrors;
    this.pendingErrors = [];
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.device.lost]);
    for (const e of pending) {
      const err = await e.p;
      if (err) throw new RunError('validation', `node ${e.node} (${e.op}) on rank ${this.rank}: ${err.message.split('\n')[0]}`, { node: e.node, op: e.op });
    }
    if (this.lost) throw new RunError('device-lost', `rank ${this.rank}'s device was lost while running node ${this.currentNode}: ${this.lost}. The next run opens new devices.`, { node: this.currentNode });
    for (const b of this.transient) b.destroy();
    this.transient = [];
  }

  async read(buf: GPUBuffer, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    const size = Math.ceil(byteLength / 4) * 4;
    const staging = this.device.createBuffer({ size: Math.max(4, size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    if (size > 0) enc.copyBufferToBuffer(buf, byteOffset, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = new Uint8Array(staging.getMappedRange().slice(0, byteLength));
    staging.unmap();
    staging.destroy();
    return out;
  }

  write(buf: GPUBuffer, byteOffset: number, data: Uint8Array): void {
    // writeBuffer takes no SharedArrayBuffer views (worker mode's slots): copy them out first.
    if (!(data.buffer instanceof ArrayBuffer)) data = new Uint8Array(data);
    const size = Math.floor(data.byteLength / 4) * 4;
    if (size > 0) this.device.queue.writeBuffer(buf, byteOffset, data.buffer, data.byteOffset, size);
    if (size < data.byteLength) {
      const tail = new Uint8Array(4);
      tail.set(data.subarray(size));
      this.device.queue.writeBuffer(buf, byteOffset + size, tail);
    }
  }

  /** Forget the timestamps recorded so far (a benchmark times one kernel at a time with the same step indices). */
  clearTimings(): void {
    this.passes.length = 0;
    this.queries = 0;
  }

  /** Kernel time per step index, from timestamp queries; `passes`: each pass's own time, in submission order. */
  async kernelTimes(): Promise<Map<number, { start: number; dur: number; passes: number[] }>> {
    const out = new Map<number, { start: number; dur: number; passes: number[] }>();
    if (!this.querySet || this.queries === 0) return out;
    const resolve = this.device.createBuffer({ size: this.queries * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const enc = this.device.createCommandEncoder();
    enc.resolveQuerySet(this.querySet, 0, this.queries, resolve, 0);
    this.device.queue.submit([enc.finish()]);
    const bytes = await this.read(resolve, 0, this.queries * 8);
    resolve.destroy();
    const ts = new BigInt64Array(bytes.buffer, bytes.byteOffset, this.queries);
    const t0 = ts[0];
    for (const p of this.passes) {
      const start = Number(ts[p.q] - t0) / 1000;
      const dur = Math.max(0, Number(ts[p.q + 1] - ts[p.q]) / 1000);
      const have = out.get(p.step);
      if (have) { have.dur += dur; have.passes.push(dur); } else out.set(p.step, { start, dur, passes: [dur] });
    }
    return out;
  }

  /** Release what one run allocated; the device and its compiled pipelines stay for the next run. */
  endRun(): void {
    for (const b of this.buffers.values()) b.destroy();
    this.buffers.clear();
    for (const b of this.transient) b.destroy();
    this.transient = [];
    this.pendingErrors = [];
    this.passes.length = 0;
    this.queries = 0;
    this.stepIndex = -1;
  }

  destroy(): void {
    this.endRun();
    this.querySet?.destroy();
    this.device.destroy();
  }
}

/** Open one device per rank, each from its own adapter, asking for the adapter's highest limits. */
export async function openRanks(gpu: GPU, ranks: number, opts: { f16: boolean }, firstRank = 0): Promise<RankDevice[]> {
  const out: RankDevice[] = [];
  for (let r = firstRank; r < firstRank + ranks; r++) {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new RunError('limits', `no WebGPU adapter for rank ${r} (of ${ranks}); use --backend cpu`);
    if (opts.f16 && !adapter.features.has('shader-f16')) {
      throw new RunError('limits', `dtype f16 needs the adapter feature shader-f16, which ${adapterName(adapter)} does not have; use --dtype bf16 or f32`);
    }
    const features: GPUFeatureName[] = [];
    if (adapter.features.has('timestamp-query')) features.push('timestamp-query');
    if (opts.f16) features.push('shader-f16');
    // Subgroup reductions need one known size (NVIDIA 32, SwiftShader 4); a range (8–32, 32–64) gets the workgroup-memory kernels.
    const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
    const sg = adapter.features.has('subgroups') && info.subgroupMinSize && info.subgroupMinSize === info.subgroupMaxSize ? info.subgroupMinSize : 0;
    if (sg) features.push('subgroups' as GPUFeatureName);
    const L = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures: features,
      requiredLimits: {
        maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
        maxBufferSize: L.maxBufferSize,
        maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
        maxStorageBuffersPerShaderStage: Math.min(L.maxStorageBuffersPerShaderStage, 10),
        maxComputeWorkgroupsPerDimension: L.maxComputeWorkgroupsPerDimension,
      },
    });
    const dev = new RankDevice(r, device, adapterName(adapter), features.includes('timestamp-query'));
    dev.subgroupSize = sg;
    out.push(dev);
  }
  return out;
}

/**
 * Stands in for a rank while the step encoders run with no GPU work, to list the kernels a plan
 * dispatches on that rank (the same code paths pick them, so the list cannot drift from the run).
 */
class KernelRecorder extends RankDevice {
  /** WGSL → the first node that dispatches it. */
  readonly kernels = new Map<string, { node: string; op: string }>();
  private readonly unbacked = {} as GPUBuffer;
  constructor(of: RankDevice) {
    super(of.rank, of.device, of.adapterName, false);
    this.subgroupSize = of.subgroupSize;
  }
  override buffer(): GPUBuffer { return this.unbacked; }
  override alloc(): GPUBuffer { return this.unbacked; }
  override scratch(): GPUBuffer { return this.unbacked; }
  override write(): void {}
  override submit(node: string, op: string, encode: Parameters<RankDevice['submit']>[2]): void {
    encode(null as unknown as GPUCommandEncoder, (code) => { if (!this.kernels.has(code)) this.kernels.set(code, { node, op }); });
  }
}

/** Which kernels each collective step dispatches on a rank (they depend on the all-reduce algorithm and the rank mode). */
export type CollectiveKernels = (s: CollectiveStep, r: RankDevice) => string[];

/** Every kernel the plan dispatches on rank `r`, with the first node that needs it. */
export function planKernels(plan: Plan, r: RankDevice, seed: number, inputs: Map<string, HostTensor> | undefined, collective: CollectiveKernels): Map<string, { node: string; op: string }> {
  const rec = new KernelRecorder(r);
  for (const s of plan.steps) {
    if (s.kernel === 'all_reduce' || s.kernel === 'fused_allreduce_norm') {
      for (const code of collective(s, r)) if (!rec.kernels.has(code)) rec.kernels.set(code, { node: s.node, op: s.op });
    } else encodeStep(s, rec, plan, seed, inputs);
  }
  return rec.kernels;
}

function adapterName(a: GPUAdapter): string {
  const i = a.info;
  return [i?.vendor, i?.architecture, i?.device, i?.description].filter(Boolean).join(' ') || 'WebGPU adapter';
}

const BYTES: Record<StorageDType, number> = { bf16: 2, f16: 2, f32: 4, i32: 4 };

/** Bytes of the largest buffer each step needs, checked against the device before any allocation. */
function checkLimits(plan: Plan, device: GPUDevice): void {
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  const need: { name: string; bytes: number }[] = [];
  for (const s of plan.storages.values()) need.push({ name: s.id, bytes: bufferBytes(s.dtype, s.numel) });
  for (const s of plan.steps) {
    if (s.kernel === 'moe') {
      const H = s.x.shape[s.x.shape.length - 1];
      const Is = s.intermediate / plan.ranks;
      need.push({ name: `${s.layer}.w13 (expert gate/up weights, ${s.experts}×${2 * Is}×${H})`, bytes: bufferBytes(s.x.dtype, s.experts * 2 * Is * H) });
    }
    if (s.kernel === 'all_reduce' || s.kernel === 'fused_allreduce_norm') {
      need.push({ name: `${s.node} gathered peer buffers (${plan.ranks} × [${s.x.shape}])`, bytes: plan.ranks * bufferBytes(s.x.dtype, numelOf(s.x.shape) + 8) });
    }
  }
  const worst = need.sort((a, b) => b.bytes - a.bytes)[0];
  if (worst && worst.bytes > limit) {
    const ratio = worst.bytes / limit;
    const moreRanks = [2, 4, 8].find((r) => r > plan.ranks && r >= plan.ranks * ratio && plan.preset.intermediate % r === 0);
    const hint = worst.name.includes('w13') && moreRanks
      ? `--ranks ${moreRanks} (each rank then holds 1/${moreRanks} of the experts' rows) or --preset tiny`
      : plan.preset.name === 'layer' ? `--preset tiny (${PRESETS.tiny.doc}) or fewer tokens` : 'fewer tokens';
    throw new RunError('limits', `buffer ${worst.name} needs ${worst.bytes} bytes but the adapter's maxStorageBufferBindingSize is ${limit} (preset ${plan.preset.name}, T=${plan.tokens}, ${plan.ranks} rank(s)); use ${hint}`);
  }
}

/** A host tensor in the storage's bit layout. */
export function packHost(t: HostTensor, dtype: StorageDType): Uint8Array {
  const v = hostValues(t);
  if (dtype === 'bf16' || dtype === 'f16') {
    const words = new Uint16Array(v.length + (v.length & 1));
    if (dtype === 'bf16') for (let i = 0; i < v.length; i++) words[i] = bf16Bits(v[i]);
    else for (let i = 0; i < v.length; i++) words[i] = toHostTensor('f16', [1], [v[i]]).data[0] as number;
    return new Uint8Array(words.buffer);
  }
  if (dtype === 'f32') return new Uint8Array(Float32Array.from(v).buffer);
  for (let i = 0; i < v.length; i++) if (!Number.isInteger(v[i])) throw new RunError('input', `an integer input holds ${v[i]} at ${i}`);
  return new Uint8Array(Int32Array.from(v).buffer);
}

/** A storage's bytes as numbers. */
export function unpackStorage(bytes: Uint8Array, dtype: StorageDType, n: number): Float32Array | Int32Array {
  if (dtype === 'i32') return new Int32Array(bytes.buffer, bytes.byteOffset, n).slice();
  if (dtype === 'f32') return new Float32Array(bytes.buffer, bytes.byteOffset, n).slice();
  const h = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = dtype === 'bf16' ? bf16ToF32(h[i]) : f16ToF32(h[i]);
  return out;
}

export const webgpuBackend: Backend = {
  name: 'webgpu',
  async run(plan: Plan, opts: RunOptions): Promise<RunResult> {
    if (opts.workers) {
      const { runInWorkers } = await import('./rankWorkers.ts');
      return runInWorkers(plan, opts);
    }
    const gpu = opts.gpu ?? (typeof navigator !== 'undefined' ? navigator.gpu : undefined);
    if (!gpu) throw new RunError('limits', 'no WebGPU here: pass opts.gpu (Dawn in Node) or run in a browser with WebGPU');
    const ranks = await rankGroup(gpu, plan.ranks, plan.dtype === 'f16');
    let failed = false;
    try {
      checkLimits(plan, ranks[0].device);
      return await executePlan(plan, opts, ranks, async (s) => runCollective(s, ranks, opts.allreduce, plan),
        (s, r) => collectiveKernels(s, ranks.length, opts.allreduce, r.rank, r.subgroupSize));
    } catch (e) {
      // A device that failed mid-run is not trusted again: the next run opens new ones.
      failed = !(e instanceof RunError && (e.kind === 'limits' || e.kind === 'input'));
      throw e;
    } finally {
      for (const r of ranks) r.endRun();
      if (failed) closeRanks(gpu);
    }
  },
};

/**
 * Devices are kept between runs (compiling the kernels is the slow part of a small run, above all
 * on SwiftShader); a lost device or a failed run drops the group.
 */
const groups = new Map<GPU, RankDevice[]>();

async function rankGroup(gpu: GPU, ranks: number, f16: boolean): Promise<RankDevice[]> {
  let group = groups.get(gpu) ?? [];
  if (group.some((r) => r.lost) || (f16 && group.length > 0 && !group[0].device.features.has('shader-f16'))) { closeRanks(gpu); group = []; }
  if (group.length < ranks) group = [...group, ...(await openRanks(gpu, ranks - group.length, { f16 }, group.length))];
  groups.set(gpu, group);
  return group.slice(0, ranks);
}

/** Destroy the kept devices (a CLI calls this before exiting). */
export function closeRanks(gpu?: GPU): void {
  for (const [g, group] of groups) {
    if (gpu && g !== gpu) continue;
    for (const r of group) r.destroy();
    groups.delete(g);
  }
}

/**
 * Run every step on every rank; collectives go through `collective`. Shared by the thread and worker
 * modes. Before the steps: every kernel the plan needs is compiled (`compile`; collective kernels
 * only where `collectiveKernels` lists them, else at their first dispatch), then the given inputs
 * are written to the devices (`upload`). Seeded inputs and expert weights are generated by a kernel
 * on the device at their step, so they move no bytes from the host.
 */
export async function executePlan(plan: Plan, opts: RunOptions, ranks: RankDevice[], collective: (s: CollectiveStep) => Promise<TraceEvent[]>, collectiveKernels: CollectiveKernels = () => []): Promise<RunResult> {
  const seed = opts.seed ?? DEFAULT_SEED;
  const events: TraceEvent[] = [];
  const notes: string[] = [];
  const total = plan.steps.length;
  // Given inputs are checked against the plan before any GPU work.
  const uploads = plan.steps.flatMap((s) => {
    if (s.kernel !== 'seed') return [];
    const given = inputTensorFor(s, plan, opts.inputs);
    return given ? [{ id: s.out, bytes: packHost(given, plan.storages.get(s.out)!.dtype) }] : [];
  });
  await compileKernels(plan, ranks, seed, opts, collectiveKernels);
  const writes = uploads.length * ranks.length;
  let written = 0;
  opts.onProgress?.({ phase: 'upload', done: 0, total: writes });
  for (const r of ranks) {
    for (const u of uploads) {
      const st = plan.storages.get(u.id)!;
      r.write(r.buffers.get(u.id) ?? r.alloc(u.id, bufferBytes(st.dtype, st.numel)), 0, u.bytes);
      opts.onProgress?.({ phase: 'upload', done: ++written, total: writes });
    }
    if (uploads.length) await r.sync();
  }
  // Storages are allocated at their first write (fresh buffers are zeroed, which packed outputs rely on).
  for (let si = 0; si < total; si++) {
    const s = plan.steps[si];
    opts.onProgress?.({ phase: 'run', done: si, total });
    for (const r of ranks) {
      r.stepIndex = si;
      for (const id of outputsOf(s)) if (!r.buffers.has(id)) { const st = plan.storages.get(id)!; r.alloc(id, bufferBytes(st.dtype, st.numel)); }
    }
    if (s.kernel === 'all_reduce' || s.kernel === 'fused_allreduce_norm') {
      for (const r of ranks) await r.sync();
      events.push(...(await collective(s)));
    } else {
      for (const r of ranks) encodeStep(s, r, plan, seed, opts.inputs);
    }
    // destroy() after submission is safe: work already submitted keeps the buffer until it completes.
    for (const id of plan.freeAfter.get(si) ?? []) for (const r of ranks) r.free(id);
  }
  for (const r of ranks) await r.sync();
  opts.onProgress?.({ phase: 'run', done: total, total });
  opts.onProgress?.({ phase: 'download', done: 0, total: ranks.length });
  const outputs: Map<string, HostTensor>[] = [];
  for (const r of ranks) {
    const m = new Map<string, HostTensor>();
    for (const o of plan.outputs) {
      const st = plan.storages.get(o.view.storage)!;
      const bytes = await r.read(r.buffer(st.id), 0, BYTES[st.dtype] * st.numel);
      const values = unpackStorage(bytes, st.dtype, st.numel);
      m.set(o.name, toHostTensor(o.view.dtype, o.view.shape, readView(o.view, values)));
    }
    outputs.push(m);
    const times = await r.kernelTimes();
    plan.steps.forEach((s, i) => {
      if (s.kernel === 'all_reduce' || s.kernel === 'fused_allreduce_norm') {
        const t = times.get(i);
        if (t) events.push({ rank: r.rank, node: s.node, op: s.op, kind: 'kernel', start_us: t.start, dur_us: t.dur, bytesRead: stepBytes(s, plan).read, bytesWritten: stepBytes(s, plan).written, timing: 'timestamp-query' });
        return;
      }
      const t = times.get(i);
      const b = stepBytes(s, plan);
      events.push({ rank: r.rank, node: s.node, op: s.op, kind: s.kernel === 'seed' ? 'fed' : 'kernel', start_us: t?.start ?? 0, dur_us: t?.dur ?? 0, bytesRead: b.read, bytesWritten: b.written, timing: t ? 'timestamp-query' : 'host' });
    });
    if (!r.timestamps) notes.push(`rank ${r.rank}: the adapter has no timestamp-query; kernel times are not measured`);
    opts.onProgress?.({ phase: 'download', done: outputs.length, total: ranks.length });
  }
  return { outputs, trace: { backend: 'webgpu', device: ranks[0]?.adapterName ?? '', ranks: ranks.length, events, fed: plan.fed, notes } };
}

/**
 * Compile, on every rank at once, the kernels of the plan its device has not compiled yet (devices
 * and their pipelines are kept between runs, so a repeated run reports 0 of 0).
 */
async function compileKernels(plan: Plan, ranks: RankDevice[], seed: number, opts: RunOptions, collectiveKernels: CollectiveKernels): Promise<void> {
  const missing = ranks.map((r) => [...planKernels(plan, r, seed, opts.inputs, collectiveKernels)].filter(([code]) => !r.pipelines.has(code)));
  const total = missing.reduce((a, m) => a + m.length, 0);
  let done = 0;
  const report = (p: RunProgress) => opts.onProgress?.(p);
  report({ phase: 'compile', done, total });
  await Promise.all(ranks.map((r, i) => Promise.all(missing[i].map(async ([code, at]) => {
    try {
      await r.compile(code);
    } catch (e) {
      if (r.lost) throw new RunError('device-lost', `rank ${r.rank}'s device was lost while compiling the kernel of node ${at.node}: ${r.lost}. The next run opens new devices.`, at);
      throw new RunError('validation', `node ${at.node} (${at.op}) on rank ${r.rank}: its kernel failed to compile: ${String((e as Error)?.message ?? e).split('\n')[0]}`, at);
    }
    report({ phase: 'compile', done: ++done, total });
  }))));
}

function outputsOf(s: Step): string[] {
  const ids = [s.out];
  if ('residualOut' in s) ids.push(s.residualOut);
  return ids;
}

function viewBytes(v: View): number { return numelOf(v.shape) * BYTES[v.dtype]; }

export function stepBytes(s: Step, plan: Plan): { read: number; written: number } {
  const out = outputsOf(s).reduce((a, id) => { const st = plan.storages.get(id)!; return a + st.numel * BYTES[st.dtype]; }, 0);
  let read = 0;
  for (const v of Object.values(s)) if (v && typeof v === 'object' && 'storage' in v) read += viewBytes(v as View);
  if (s.kernel === 'moe') {
    const H = s.x.shape[s.x.shape.length - 1];
    const Is = s.intermediate / plan.ranks;
    read += BYTES[s.x.dtype] * 3 * H * Is * s.experts; // every expert's W13 and W2 at most once
  }
  if (s.kernel === 'all_reduce' || s.kernel === 'fused_allreduce_norm') read += (plan.ranks - 1) * viewBytes(s.x);
  return { read, written: out };
}

const metaOf = (words: number[]) => Uint32Array.from(words.map((w) => w >>> 0));

/** Encode one non-collective step on one rank. */
export function encodeStep(s: Step, r: RankDevice, plan: Plan, seed: number, inputs?: Map<string, HostTensor>): void {
  const buf = (v: View | string) => r.buffer(typeof v === 'string' ? v : v.storage);
  const outSt = plan.storages.get(s.out)!;
  const ew = (kind: Parameters<typeof elementwiseWgsl>[0], ins: View[], extra: number[], stridesFor?: (v: View) => number[]) => {
    const meta = elementwiseMeta(outSt.shape, ins.map((v) => ({ offset: v.offset, strides: stridesFor ? stridesFor(v) : v.strides })), extra);
    r.submit(s.node, s.op, (_enc, pass) => pass(elementwiseWgsl(kind, outSt.dtype, ins.map((v) => v.dtype)), [buf(s.out), ...ins.map(buf)], meta, grid1d(Math.ceil(outSt.numel / 2), ELEMENTWISE_WG)));
  };
  switch (s.kernel) {
    case 'seed': {
      // A given input was written before the steps ran (executePlan's upload phase).
      if (inputTensorFor(s, plan, inputs)) return;
      const rule = seedRule(s.role, outSt.shape);
      ew('seed', [], [seed, seedStream(s.name, s.perRank, r.rank), f32Bits(rule.scale), f32Bits(rule.offset), s.range ?? 0]);
      return;
    }
    case 'copy': ew('copy', [s.x], []); return;
    case 'add': ew('add', [s.a, s.b], [f32Bits(s.alpha)], (v) => broadcastStrides(v, outSt.shape)); return;
    case 'map': {
      const ins = s.b ? [s.a, s.b] : [s.a];
      ew(s.fn, ins, [f32Bits(s.scalar)], (v) => broadcastStrides(v, outSt.shape));
      return;
    }
    case 'pad': {
      const lead = MAX_DIMS - s.x.shape.length;
      ew('pad', [s.x], [...new Array(lead).fill(0), ...s.lo, ...new Array(lead).fill(1), ...s.x.shape, f32Bits(s.value)]);
      return;
    }
    case 'embedding': {
      const rows = asRows(s.weight)!;
      const meta = elementwiseMeta(outSt.shape, [{ offset: rows.offset, strides: [rows.rowStride, 1] }, { offset: s.indices.offset, strides: [1] }], [rows.cols, rows.rows]);
      r.submit(s.node, s.op, (_e, pass) => pass(elementwiseWgsl('embedding', outSt.dtype, [s.weight.dtype, s.indices.dtype]), [buf(s.out), buf(s.weight), buf(s.indices)], meta, grid1d(Math.ceil(outSt.numel / 2), ELEMENTWISE_WG)));
      return;
    }
    case 'gemm': {
      const [M, K] = s.a.shape; const N = s.b.shape[1];
      const bias = s.bias;
      const bs = bias ? broadcastStrides(bias, [M, N]) : [0, 0];
      const meta = metaOf([M, N, K, s.a.offset, s.a.strides[0], s.a.strides[1], s.b.offset, s.b.strides[0], s.b.strides[1], bias?.offset ?? 0, bs[0], bs[1], bias ? 1 : 0, f32Bits(s.alpha), f32Bits(s.beta)]);
      const biasBuf = bias ? buf(bias) : r.scratch(16, 'no bias');
      r.submit(s.node, s.op, (_e, pass) => pass(gemmWgsl(outSt.dtype, bias?.dtype ?? outSt.dtype, N % 2 === 0), [buf(s.out), buf(s.a), buf(s.b), biasBuf], meta, [Math.ceil(N / GEMM_TILE), Math.ceil(M / GEMM_TILE)]));
      return;
    }
    case 'rms_norm': case 'fused_add_rms_norm': {
      const x = asRows(s.x)!;
      const res = s.kernel === 'fused_add_rms_norm' ? asRows(s.residual)! : { offset: 0, rowStride: x.cols };
      const mode: NormMode = s.kernel === 'rms_norm' ? 'rms' : 'add';
      encodeNorm(r, s.node, s.op, mode, outSt.dtype, x.rows, x.cols, x.offset, x.rowStride, res.offset, res.rowStride, s.w.offset, s.eps, 1, 0, 0,
        [buf(s.out), mode === 'rms' ? null : buf((s as { residualOut: string }).residualOut), buf(s.x), mode === 'rms' ? null : buf((s as { residual: View }).residual), buf(s.w)]);
      return;
    }
    case 'scatter': {
      const dims = s.src.shape.map((_, d) => d).filter((d) => s.src.shape[d] > 1).sort((a, b) => s.strides[b] - s.strides[a]);
      if (dims.length > MAX_DIMS) throw new RunError('limits', `node ${s.node}: a scatter window of more than ${MAX_DIMS} dims`, { node: s.node, op: s.op });
      const pad = (xs: number[], fill: number) => [...xs, ...new Array(MAX_DIMS - xs.length).fill(fill)];
      const words = [s.at, ...pad(dims.map((d) => s.src.shape[d]), 1), ...pad(dims.map((d) => s.strides[d]), 0), ...pad(dims.map((d) => s.src.strides[d]), 0)];
      const meta = elementwiseMeta(outSt.shape, [{ offset: s.base.offset, strides: s.base.strides }, { offset: s.src.offset, strides: [] }], words);
      r.submit(s.node, s.op, (_e, pass) => pass(elementwiseWgsl('scatter', outSt.dtype, [s.base.dtype, s.src.dtype]), [buf(s.out), buf(s.base), buf(s.src)], meta, grid1d(Math.ceil(outSt.numel / 2), ELEMENTWISE_WG)));
      return;
    }
    case 'rotary': ew('rotary', [s.x, s.positions, s.cache], [s.headSize, s.cache.shape[1], s.neox ? 1 : 0]); return;
    case 'attention': ew('attention', [s.q, s.k, s.v], [s.k.shape[1], f32Bits(1 / Math.sqrt(s.q.shape[2]))]); return;
    case 'moe': encodeMoe(s, r, plan, seed); return;
    case 'all_reduce': case 'fused_allreduce_norm': throw new Error('collectives run across ranks');
    default: assertNever(s, 'kernel');
  }
}

/**
 * `layout` picks the bf16 word-row kernel's layout (the bench compares several) or 'legacy', the
 * one-row-per-workgroup kernel; `normRounding` the allreduce mode's rounding of the norm.
 */
export function encodeNorm(r: RankDevice, node: string, op: string, mode: NormMode, d: StorageDType, rows: number, cols: number, xOff: number, xStride: number, resOff: number, resStride: number, wOff: number, eps: number, ranks: number, rowStart: number, slotStride: number, bindings: (GPUBuffer | null)[], layout: NormRowsConfig | 'legacy' = NORM_ROWS_DEFAULT, normRounding: FusedNormRounding = 'once'): void {
  const k = normKernel(mode, d, rows, cols, xOff, xStride, resOff, resStride, wOff, rowStart, slotStride, r.subgroupSize, layout, normRounding);
  const meta = metaOf([rows, cols, xOff, xStride, resOff, resStride, wOff, f32Bits(eps), ranks, rowStart, slotStride]);
  r.submit(node, op, (_e, pass) => pass(k.code, bindings, meta, k.grid));
}

/** The norm kernel for these sizes and offsets, and its grid (the collectives list it before the run). */
export function normKernel(mode: NormMode, d: StorageDType, rows: number, cols: number, xOff: number, xStride: number, resOff: number, resStride: number, wOff: number, rowStart: number, slotStride: number, subgroupSize: number, layout: NormRowsConfig | 'legacy' = NORM_ROWS_DEFAULT, normRounding: FusedNormRounding = 'once'): { code: string; grid: [number, number] } {
  const vec = normVector(d, cols, [xOff, resOff, wOff, rowStart * cols, slotStride], [xStride, resStride]);
  if (d === 'bf16' && vec === 8 && layout !== 'legacy') return { code: rmsNormRowsWgsl(mode, cols, layout, subgroupSize, normRounding), grid: [normRowsGrid(rows, layout), 1] };
  const gx = Math.min(rows, 65535);
  return { code: rmsNormWgsl(mode, d, cols, vec, normRounding), grid: [Math.max(1, gx), Math.max(1, Math.ceil(rows / gx))] };
}

/** The six MoE dispatches on one rank; expert weights are seeded on the device first. */
function encodeMoe(s: Extract<Step, { kernel: 'moe' }>, r: RankDevice, plan: Plan, seed: number): void {
  const x = asRows(s.x)!; const l = asRows(s.logits)!;
  const H = x.cols, E = s.experts, K = s.topK, Is = s.intermediate / plan.ranks;
  if (K > MOE_MAX_K) throw new RunError('limits', `node ${s.node}: top-${K} routing exceeds the kernel's ${MOE_MAX_K}`, { node: s.node, op: s.op });
  const weights = seedExpertWeights(r, s.node, s.op, { layer: s.layer, experts: E, hidden: H, interShard: Is, interFull: s.intermediate, dtype: s.x.dtype, seed });
  encodeMoeDispatch(r, s.node, s.op, {
    T: x.rows, H, E, K, Is, dtype: s.x.dtype, logitsDtype: s.logits.dtype,
    x: r.buffer(s.x.storage), xOff: x.offset, xRowStride: x.rowStride, logits: r.buffer(s.logits.storage), lOff: l.offset, lRowStride: l.rowStride,
    out: r.buffer(s.out), weights,
  });
}

export interface ExpertWeights { w13: GPUBuffer; b13: GPUBuffer; w2: GPUBuffer; b2: GPUBuffer }

/** One rank's expert weights (I/tp rows each), generated on the device from their streams. */
export function seedExpertWeights(r: RankDevice, node: string, op: string, o: { layer: string; experts: number; hidden: number; interShard: number; interFull: number; dtype: StorageDType; seed: number; keep?: boolean }): ExpertWeights {
  const wt = expertTensors(o.layer, r.rank, { experts: o.experts, hidden: o.hidden, interShard: o.interShard, interFull: o.interFull });
  return Object.fromEntries(Object.entries(wt).map(([k, t]) => {
    const n = numelOf(t.shape);
    // Kept weights live until the run ends (a benchmark dispatches many times); else until the step is done.
    const b = o.keep ? r.alloc(t.name, bufferBytes(o.dtype, n)) : r.scratch(bufferBytes(o.dtype, n), t.name);
    // b2 is added on rank 0 only; other ranks bind a zero buffer.
    if (k === 'b2' && r.rank !== 0) return [k, b];
    const meta = elementwiseMeta(t.shape, [], [o.seed, t.stream, f32Bits(t.rule.scale), f32Bits(t.rule.offset), 0]);
    r.submit(node, op, (_e, pass) => pass(elementwiseWgsl('seed', o.dtype, []), [b], meta, grid1d(Math.ceil(n / 2), ELEMENTWISE_WG)));
    return [k, b];
  })) as unknown as ExpertWeights;
}

export interface MoeDispatch {
  T: number; H: number; E: number; K: number; Is: number; dtype: StorageDType; logitsDtype: StorageDType;
  x: GPUBuffer; xOff: number; xRowStride: number; logits: GPUBuffer; lOff: number; lRowStride: number; out: GPUBuffer; weights: ExpertWeights;
  /** Decode kernels: the GEMV layout (default MOE_GEMV_DEFAULT) or 'tiled', the 8-token × 16-row tile kernels. */
  decodeKernel?: MoeGemvConfig | 'tiled';
}

/** route → scan → scatter (one dispatch at decode sizes) → gemm1 (+SwiGLU) → gemm2 (×w_k) → combine, in one submission. */
export function encodeMoeDispatch(r: RankDevice, node: string, op: string, m: MoeDispatch): void {
  const { T, H, E, K, Is, dtype: d } = m;
  const route = r.scratch(routeWords(T, E, K) * 4, 'moe route');
  const wts = r.scratch(T * K * 4, 'moe weights');
  const act = r.scratch(T * K * Is * 4, 'moe act');
  const yk = r.scratch(T * K * H * 4, 'moe y_k');
  // Decode: few tokens per expert, W streamed once per 8 tokens; else 32-token tiles.
  const gemvCfg = m.decodeKernel ?? MOE_GEMV_DEFAULT;
  const gemv = gemvCfg !== 'tiled' && useMoeGemv(T, K, E, d, H, Is, m.xOff, m.xRowStride) ? gemvCfg : null;
  const decode = !gemv && useDecodeKernels(T, K, E, d, H, Is) && m.xOff % 2 === 0 && m.xRowStride % 2 === 0;
  const tm = gemv ? moeGemvTokens(T, gemv) : decode ? MOE_DECODE_TM : MOE_TM;
  const cap = moeTileCapacity(T, E, K, tm);
  const meta = metaOf([T, H, E, K, Is, m.xOff, m.xRowStride, m.lOff, m.lRowStride, r.rank === 0 ? 1 : 0, cap, tm]);
  const vec = (k: number) => (d === 'bf16' && k % 8 === 0);
  const route1 = gemv?.route1 && E <= MOE_ROUTE1_MAX_E && T * K <= MOE_ROUTE1_MAX_PAIRS;
  r.submit(node, op, (_e, pass) => {
    if (route1) pass(moeRoute1Wgsl(m.logitsDtype), [route, wts, m.logits], meta, [1, 1]);
    else {
      pass(moeRouteWgsl(m.logitsDtype), [route, wts, m.logits], meta, [Math.ceil(T / 64), 1]);
      pass(MOE_SCAN_WGSL, [route], meta, [1, 1]);
      pass(MOE_SCATTER_WGSL, [route], meta, [Math.ceil((T * K) / 64), 1]);
    }
    if (gemv) {
      const sg = r.subgroupSize;
      pass(moeGemvWgsl(1, gemv, tm, sg), [route, wts, m.x, m.weights.w13, m.weights.b13, act], meta, [cap, Math.ceil((2 * Is) / (gemv.groups * gemv.rows1))]);
      pass(moeGemvWgsl(2, gemv, tm, sg), [route, wts, act, m.weights.w2, m.weights.b2, yk], meta, [cap, Math.ceil(H / (gemv.groups * gemv.rows2))]);
    } else if (decode) {
      pass(moeDecodeGemmWgsl(1), [route, wts, m.x, m.weights.w13, m.weights.b13, act], meta, [cap, Math.ceil((2 * Is) / MOE_DECODE_ROWS)]);
      pass(moeDecodeGemmWgsl(2), [route, wts, act, m.weights.w2, m.weights.b2, yk], meta, [cap, Math.ceil(H / MOE_DECODE_ROWS)]);
    } else {
      pass(moeGemmWgsl(1, d, vec(H)), [route, wts, m.x, m.weights.w13, m.weights.b13, act], meta, [cap, Math.ceil((2 * Is) / MOE_TN)]);
      pass(moeGemmWgsl(2, d, vec(Is)), [route, wts, act, m.weights.w2, m.weights.b2, yk], meta, [cap, Math.ceil(H / MOE_TN)]);
    }
    pass(moeCombineWgsl(d), [yk, m.out], meta, grid1d(Math.ceil((T * H) / 2), 256));
  });
}
