// WebGPU devices, one per rank: each from its own requestAdapter() (a second requestDevice on one
// adapter is refused), kept between runs in a group per GPU, with the error scopes, timestamp
// queries and staging that the run loop and the collectives use.

import { RunError } from '../runError.ts';

const MAX_QUERIES = 4096;
/** Freed buffer bytes held back for queued steps before they are submitted early. */
const FREED_BYTES_BEFORE_FLUSH = 256 * 2 ** 20;

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
  /** Error scopes not yet read: each names the node it blames (a submit's: the step whose buffer the error names). */
  private pendingErrors: {
    blame: (e: GPUError) => { node: string; op: string };
    p: Promise<GPUError | null>;
  }[] = [];
  private transient: GPUBuffer[] = [];
  stepIndex = -1;
  /** Submits of encoded steps so far (flushes and batches; reads not counted): one per host wait in a run. */
  submits = 0;
  /**
   * Parameter buffers by their words and bind groups by what they bind, kept until the run ends: a
   * step dispatched again (a benchmark's loop, the same layer shape at the next step) creates
   * neither again, which is most of what a pass costs on the host beyond Dawn's own dispatch.
   * Bind groups that hold a transient buffer are not kept (it is destroyed at the next sync).
   */
  private readonly metaBuffers = new Map<string, GPUBuffer>();
  /**
   * Buffers made here that nothing has used yet. WebGPU zero-fills a buffer at its first use, and
   * Dawn on Vulkan records that fill inside the pass that first binds it, between the pass's
   * timestamps: a kernel's measured time would include a fill of its outputs that no CUDA kernel
   * pays. submit() clears such bindings itself, before the pass begins.
   */
  private readonly unfilled = new WeakSet<GPUBuffer>();
  /** workspace(): by label and size, until endRun. */
  private readonly workspaces = new Map<string, GPUBuffer>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly objectIds = new WeakMap<object, number>();
  private readonly transientSet = new WeakSet<GPUBuffer>();
  private nextObjectId = 0;
  /** While set, submit() encodes into this one command buffer, submitted once by endBatch(). */
  private batch: { enc: GPUCommandEncoder; timedFrom: number } | null = null;
  /**
   * Steps encoded but not yet submitted: every step between two host waits (a run's steps up to its
   * next collective or read) goes to the queue in one submit, so the queue sees a run as a CUDA
   * graph replay sees its kernels rather than one submit per node. Each step still has its own
   * command buffer, finished inside its own error scopes, so a validation error names its node.
   */
  private queued: { cmd: GPUCommandBuffer; node: string; op: string; labels: string[] }[] = [];
  /** Buffers freed while a step that may use them is queued: destroyed once it is submitted. */
  private freedWhileQueued: GPUBuffer[] = [];
  private freedWhileQueuedBytes = 0;

  /** The device's subgroup size where it has the `subgroups` feature and one fixed size, else 0 (kernels then reduce through workgroup memory). */
  subgroupSize = 0;

  constructor(
    readonly rank: number,
    readonly device: GPUDevice,
    readonly adapterName: string,
    readonly timestamps: boolean,
  ) {
    device.lost.then((info) => {
      this.lost = info.message || info.reason || 'lost';
    });
    if (timestamps) this.querySet = device.createQuerySet({ type: 'timestamp', count: MAX_QUERIES });
  }

  buffer(id: string): GPUBuffer {
    const b = this.buffers.get(id);
    if (!b) throw new Error(`rank ${this.rank}: storage ${id} is not allocated`);
    return b;
  }

  alloc(id: string, bytes: number): GPUBuffer {
    const b = this.storageBuffer(bytes, id);
    this.buffers.set(id, b);
    return b;
  }

  scratch(bytes: number, label: string): GPUBuffer {
    const b = this.storageBuffer(Math.max(16, bytes), label);
    this.transient.push(b);
    this.transientSet.add(b);
    return b;
  }

  /**
   * A buffer for intermediates that the caller's kernels write in full before they read them,
   * kept for the rest of the run: the same label and size give the same buffer, call after call.
   * A repeated step then binds an initialized buffer (WebGPU zero-fills a fresh one on its first
   * use, and Dawn on Vulkan records that fill inside the pass, between the pass's timestamps) and
   * a cached bind group. Its contents are whatever its last user left: never for a kernel that
   * accumulates into its output. The queue orders every use, so steps in flight may share it.
   */
  workspace(bytes: number, label: string): GPUBuffer {
    const size = Math.max(16, bytes);
    const key = `${label}:${size}`;
    let b = this.workspaces.get(key);
    if (!b) {
      b = this.storageBuffer(size, label);
      this.workspaces.set(key, b);
    }
    return b;
  }

  /** Every buffer a kernel binds: storage, copied to and from, not yet used (`unfilled`). */
  private storageBuffer(size: number, label: string): GPUBuffer {
    const b = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      label,
    });
    this.unfilled.add(b);
    return b;
  }

  free(id: string): void {
    const b = this.buffers.get(id);
    this.buffers.delete(id);
    if (!b) return;
    // A buffer destroyed before the submit of a step that uses it fails validation; past a bound on
    // the bytes held back the queued steps are submitted, so a plan's frees still cap its memory.
    if (this.queued.length === 0) {
      b.destroy();
      return;
    }
    this.freedWhileQueued.push(b);
    this.freedWhileQueuedBytes += b.size;
    if (this.freedWhileQueuedBytes > FREED_BYTES_BEFORE_FLUSH) this.flush();
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
    const pending = this.device.createComputePipelineAsync({
      layout: 'auto',
      compute: { module, entryPoint: 'main' },
    });
    void this.device.popErrorScope();
    pending.catch(() => undefined); // when the device is lost first, nobody awaits it
    const p = await Promise.race([pending, this.device.lost.then(() => null)]);
    if (!p) throw new Error(`rank ${this.rank}'s device was lost`);
    this.pipelines.set(code, p);
  }

  /**
   * Encode one step's dispatches into its own command buffer inside error scopes, queued for the
   * next flush() (inside a batch: into the batch's command buffer).
   */
  submit(
    node: string,
    op: string,
    encode: (
      enc: GPUCommandEncoder,
      pass: (
        code: string,
        bindings: (GPUBuffer | null)[],
        meta: Uint32Array | null,
        grid: [number, number, number?],
      ) => void,
    ) => void,
  ): void {
    this.currentNode = node;
    const batch = this.batch;
    if (!batch) {
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
    }
    const enc = batch?.enc ?? this.device.createCommandEncoder({ label: node });
    const labels: string[] = [];
    encode(enc, (code, bindings, meta, grid) => {
      for (const b of bindings) {
        if (!b) continue;
        if (b.label) labels.push(b.label);
        // The zero fill of a never-used binding, before the pass and its timestamps (see `unfilled`).
        if (this.unfilled.delete(b) && b.size % 4 === 0) enc.clearBuffer(b);
      }
      const pipeline = this.pipeline(code);
      const bg = this.bindGroup(pipeline, meta ? this.metaBuffer(meta) : null, bindings);
      let timestampWrites: GPUComputePassTimestampWrites | undefined;
      if (!batch && this.querySet && this.queries + 2 <= MAX_QUERIES) {
        timestampWrites = {
          querySet: this.querySet,
          beginningOfPassWriteIndex: this.queries,
          endOfPassWriteIndex: this.queries + 1,
        };
        this.passes.push({ step: this.stepIndex, q: this.queries });
        this.queries += 2;
      }
      const pass = enc.beginComputePass({ label: node, timestampWrites });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(grid[0], grid[1], grid[2] ?? 1);
      pass.end();
    });
    if (batch) return;
    this.queued.push({ cmd: enc.finish({ label: node }), node, op, labels });
    this.watchScopes(() => ({ node, op }));
  }

  /** Submit every queued step in one queue.submit (sync, read, write and beginBatch call it first). */
  flush(): void {
    const queued = this.queued;
    if (queued.length > 0) {
      this.queued = [];
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
      this.device.queue.submit(queued.map((q) => q.cmd));
      this.submits++;
      // What fails only at submit (a buffer destroyed before it) is blamed on the last queued step
      // binding a buffer the message names (Dawn names buffers by label): which of its users would
      // have failed alone is not known in one submit, and the last is the use nearest the failure.
      // Else on the whole range.
      this.watchScopes((e) => {
        const named = [...e.message.matchAll(/\[Buffer "([^"]*)"\]/g)].map((m) => m[1]);
        const step = queued.findLast((q) => q.labels.some((l) => named.includes(l)));
        if (step) return step;
        const first = queued[0].node,
          last = queued[queued.length - 1].node;
        return { node: first === last ? first : `${first} … ${last}`, op: 'submit' };
      });
    }
    for (const b of this.freedWhileQueued) b.destroy();
    this.freedWhileQueued = [];
    this.freedWhileQueuedBytes = 0;
  }

  private watchScopes(blame: (e: GPUError) => { node: string; op: string }): void {
    const validation = this.device.popErrorScope();
    const oom = this.device.popErrorScope();
    this.pendingErrors.push({ blame, p: validation }, { blame, p: oom });
  }

  private objectId(o: object): number {
    let id = this.objectIds.get(o);
    if (id === undefined) this.objectIds.set(o, (id = this.nextObjectId++));
    return id;
  }

  /** A read-only storage buffer holding `meta`, one per distinct content until the run ends. */
  private metaBuffer(meta: Uint32Array): GPUBuffer {
    const key = meta.join(',');
    let mb = this.metaBuffers.get(key);
    if (!mb) {
      mb = this.device.createBuffer({
        size: Math.max(16, meta.byteLength),
        usage: GPUBufferUsage.STORAGE,
        mappedAtCreation: true,
      });
      new Uint32Array(mb.getMappedRange()).set(meta);
      mb.unmap();
      this.metaBuffers.set(key, mb);
    }
    return mb;
  }

  /** Binding 0 the parameters, binding i + 1 the i-th buffer (null: not bound). */
  private bindGroup(
    pipeline: GPUComputePipeline,
    meta: GPUBuffer | null,
    bindings: (GPUBuffer | null)[],
  ): GPUBindGroup {
    const all = [meta, ...bindings];
    const keep = all.every((b) => !b || !this.transientSet.has(b));
    const key = keep
      ? `${this.objectId(pipeline)}:${all.map((b) => (b ? this.objectId(b) : '-')).join(',')}`
      : '';
    const kept = keep ? this.bindGroups.get(key) : undefined;
    if (kept) return kept;
    const entries: GPUBindGroupEntry[] = [];
    all.forEach((b, i) => {
      if (b) entries.push({ binding: i, resource: { buffer: b } });
    });
    const bg = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    if (keep) this.bindGroups.set(key, bg);
    return bg;
  }

  /**
   * Encode every submit() until endBatch() into one command buffer, submitted once: launches back to
   * back, as a CUDA graph replays them. The passes carry no timestamps of their own; with timestamps
   * the batch is bracketed by one pair (an empty pass before and after), recorded under `stepIndex`.
   */
  beginBatch(): void {
    if (this.batch) throw new Error(`rank ${this.rank}: a batch is already open`);
    this.flush();
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    const enc = this.device.createCommandEncoder({ label: 'batch' });
    let timedFrom = -1;
    if (this.querySet && this.queries + 2 <= MAX_QUERIES) {
      timedFrom = this.queries;
      this.passes.push({ step: this.stepIndex, q: this.queries });
      this.queries += 2;
      enc
        .beginComputePass({
          timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: timedFrom },
        })
        .end();
    }
    this.batch = { enc, timedFrom };
  }

  endBatch(): void {
    const batch = this.batch;
    if (!batch) throw new Error(`rank ${this.rank}: no batch is open`);
    this.batch = null;
    if (this.querySet && batch.timedFrom >= 0)
      batch.enc
        .beginComputePass({
          timestampWrites: { querySet: this.querySet, endOfPassWriteIndex: batch.timedFrom + 1 },
        })
        .end();
    this.device.queue.submit([batch.enc.finish()]);
    this.submits++;
    const node = this.currentNode;
    this.watchScopes(() => ({ node, op: 'batch' }));
  }

  /** Wait for submitted work; throw RunError for the first failed step or a lost device. */
  async sync(): Promise<void> {
    this.flush();
    const pending = this.pendingErrors;
    this.pendingErrors = [];
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.device.lost]);
    for (const e of pending) {
      const err = await e.p;
      if (!err) continue;
      const { node, op } = e.blame(err);
      throw new RunError(
        'validation',
        `node ${node} (${op}) on rank ${this.rank}: ${err.message.split('\n')[0]}`,
        {
          node,
          op,
        },
      );
    }
    if (this.lost)
      throw new RunError(
        'device-lost',
        `rank ${this.rank}'s device was lost while running node ${this.currentNode}: ${this.lost}. The next run opens new devices.`,
        { node: this.currentNode },
      );
    for (const b of this.transient) b.destroy();
    this.transient = [];
  }

  async read(buf: GPUBuffer, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    // Copies move whole 4-byte words: a bf16 window at an odd element (a rank's share of rows) is
    // read through the enclosing aligned words. Buffers are sized in whole words (bufferBytes).
    const start = byteOffset - (byteOffset % 4),
      lead = byteOffset - start;
    const size = Math.ceil((lead + byteLength) / 4) * 4;
    this.unfilled.delete(buf);
    this.flush();
    const staging = this.device.createBuffer({
      size: Math.max(4, size),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.device.createCommandEncoder();
    if (byteLength > 0) enc.copyBufferToBuffer(buf, start, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = new Uint8Array(staging.getMappedRange().slice(lead, lead + byteLength));
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Writes at a word-aligned offset; an unaligned tail is padded with zeros to the word's end. */
  write(buf: GPUBuffer, byteOffset: number, data: Uint8Array): void {
    // writeBuffer cannot start inside a word; callers assemble unaligned pieces on the host first.
    if (byteOffset % 4)
      throw new Error(`rank ${this.rank}: write to ${buf.label} at byte ${byteOffset}, not a multiple of 4`);
    // writeBuffer takes no SharedArrayBuffer views (worker mode's slots): copy them out first.
    if (!(data.buffer instanceof ArrayBuffer)) data = new Uint8Array(data);
    // Dawn zero-fills what the write leaves of a fresh buffer at the write, outside any pass.
    this.unfilled.delete(buf);
    // A queue write runs before command buffers submitted after it: queued steps go first.
    this.flush();
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
    this.flush();
    const resolve = this.device.createBuffer({
      size: this.queries * 8,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
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
      if (have) {
        have.dur += dur;
        have.passes.push(dur);
      } else out.set(p.step, { start, dur, passes: [dur] });
    }
    return out;
  }

  /** Release what one run allocated; the device and its compiled pipelines stay for the next run. */
  endRun(): void {
    for (const b of this.buffers.values()) b.destroy();
    this.buffers.clear();
    for (const b of this.metaBuffers.values()) b.destroy();
    this.metaBuffers.clear();
    for (const b of this.workspaces.values()) b.destroy();
    this.workspaces.clear();
    this.bindGroups.clear();
    this.batch = null;
    this.queued = [];
    for (const b of this.freedWhileQueued) b.destroy();
    this.freedWhileQueued = [];
    this.freedWhileQueuedBytes = 0;
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
export async function openRanks(
  gpu: GPU,
  ranks: number,
  opts: { f16: boolean },
  firstRank = 0,
): Promise<RankDevice[]> {
  const out: RankDevice[] = [];
  for (let r = firstRank; r < firstRank + ranks; r++) {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter)
      throw new RunError('limits', `no WebGPU adapter for rank ${r} (of ${ranks}); use --backend cpu`);
    if (opts.f16 && !adapter.features.has('shader-f16')) {
      throw new RunError(
        'limits',
        `dtype f16 needs the adapter feature shader-f16, which ${adapterName(adapter)} does not have; use --dtype bf16 or f32`,
      );
    }
    const features: GPUFeatureName[] = [];
    if (adapter.features.has('timestamp-query')) features.push('timestamp-query');
    if (opts.f16) features.push('shader-f16');
    // Subgroup reductions need one known size (NVIDIA 32, SwiftShader 4); a range (8–32, 32–64) gets the workgroup-memory kernels.
    const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
    const sg =
      adapter.features.has('subgroups') &&
      info.subgroupMinSize &&
      info.subgroupMinSize === info.subgroupMaxSize
        ? info.subgroupMinSize
        : 0;
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

export function adapterName(a: GPUAdapter): string {
  const i = a.info;
  return (
    [i?.vendor, i?.architecture, i?.device, i?.description].filter(Boolean).join(' ') || 'WebGPU adapter'
  );
}

/**
 * Devices are kept between runs (compiling the kernels is the slow part of a small run, above all
 * on SwiftShader); a lost device or a failed run drops the group.
 */
const groups = new Map<GPU, RankDevice[]>();

export async function rankGroup(gpu: GPU, ranks: number, f16: boolean): Promise<RankDevice[]> {
  let group = groups.get(gpu) ?? [];
  if (group.some((r) => r.lost) || (f16 && group.length > 0 && !group[0].device.features.has('shader-f16'))) {
    closeRanks(gpu);
    group = [];
  }
  if (group.length < ranks)
    group = [...group, ...(await openRanks(gpu, ranks - group.length, { f16 }, group.length))];
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
