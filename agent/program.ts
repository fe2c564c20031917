// Lowering the runtime's plan (src/runtime/plan.ts: storages, strided views, kernel steps) into
// the native worker's flat program: one slot per storage, contiguous operands, each step's
// arguments written by name in its worker op's declared layout (WORKER_OPS, agent/workerArgs.ts).
// Views the worker's kernels cannot read in place become an explicit `gather` step first, so the
// worker stays small. LOWERINGS holds one lowering per plan kernel; lowerPlan only drives them.

import type { Plan, Step as PlanStep, View } from '../src/runtime/plan.ts';
import { MAP_FN_CODES, type WorkerOp } from '../src/graph/opTable.ts';
import { asRows, decomposed, isContiguous, numelOf } from '../src/runtime/plan.ts';
import type { HostTensor } from '../src/runtime/hostTensor.ts';
import { hostValues } from '../src/runtime/hostTensor.ts';
import { seedRule, seedStream, expertTensors } from '../src/runtime/weights.ts';
import { RunError } from '../src/runtime/runError.ts';
import { resolveGroup } from '../src/runtime/rankMesh.ts';
import type { TraceEvent } from '../src/runtime/backend.ts';
import { workerArgs, type WorkerArgs } from './workerArgs.ts';

export type { WorkerOp } from '../src/graph/opTable.ts';

const FUSED_MATMUL_REDUCE_SCATTER = 'symm_mem.fused_matmul_reduce_scatter.default';

export interface WorkerStep {
  node: string;
  op: WorkerOp;
  in: number[];
  out: number[];
  i: number[];
  f: number[];
  /**
   * A collective's groups (src/runtime/rankMesh.ts): each a list of ranks, in group-rank order, that
   * meet only each other. Absent: one group of every rank.
   */
  groups?: number[][];
}

export interface WorkerProgram {
  type: 'run';
  id: string;
  world: number;
  dtype: 'bf16' | 'f32';
  slots: number[];
  intSlots: number[];
  inputs: { slot: number; rank: number; offset: number }[];
  steps: WorkerStep[];
  outputs: number[];
  abortAt?: string;
  stepDelayMs?: number;
  forceFallback?: boolean;
}

/** What the agent needs to turn the worker's reply back into a RunResult. */
export interface StepInfo {
  node: string;
  op: string;
  kind: TraceEvent['kind'];
  bytesRead: number;
  bytesWritten: number;
}

export interface LoweredProgram {
  program: WorkerProgram;
  /** Tensor bytes for `program.inputs`, in order. */
  payload: Buffer[];
  steps: StepInfo[];
  outputs: { name: string; slot: number; dtype: 'bf16' | 'f32' | 'i32'; shape: number[] }[];
}

export interface LowerOptions {
  id: string;
  seed: number;
  /** Tensors given by the user by name (the runtime's `inputs`), the same on every rank. */
  inputs?: Map<string, HostTensor>;
  /** Most bytes all slots of all ranks may take together. */
  maxDeviceBytes: number;
}

/** What a step reads, for the trace: its input slots' bytes × readScale, or readBytes when given. */
interface StepBytes {
  kind?: TraceEvent['kind'];
  readScale?: number;
  readBytes?: number;
}

/** A flat row view the norm kernels read in place: rows × cols from offset, rows stride apart. */
interface NormRows {
  slot: number;
  rows: number;
  cols: number;
  offset: number;
  stride: number;
}

/** The program being built: its slots, steps (with what each moves) and the payload of given inputs. */
class ProgramBuilder {
  readonly slots: number[] = [];
  readonly intSlots: number[] = [];
  readonly steps: WorkerStep[] = [];
  readonly info: StepInfo[] = [];
  readonly inputs: WorkerProgram['inputs'] = [];
  readonly payload: Buffer[] = [];
  private payloadBytes = 0;
  private readonly slotOf = new Map<string, number>();
  private readonly elem: number;

  constructor(
    readonly plan: Plan,
    readonly opts: LowerOptions,
    readonly dtype: 'bf16' | 'f32',
  ) {
    this.elem = dtype === 'bf16' ? 2 : 4;
    for (const [id, st] of plan.storages) this.slotOf.set(id, this.newSlot(st.numel, st.dtype === 'i32'));
  }

  get ranks(): number {
    return this.plan.ranks;
  }
  /** The groups collective `s` runs over (rankMesh.ts), and their size. */
  groupsOf(s: Extract<PlanStep, { group: string }>): { groups: number[][]; size: number } {
    const { groups } = resolveGroup(this.plan.mesh, s.group);
    return { groups, size: groups[0].length };
  }
  /** Marks the step just emitted as running over `groups` (when they are not the whole world). */
  inGroups(groups: number[][]): void {
    if (groups.length > 1) this.steps[this.steps.length - 1].groups = groups;
  }
  newSlot(numel: number, isInt: boolean): number {
    this.slots.push(numel);
    if (isInt) this.intSlots.push(this.slots.length - 1);
    return this.slots.length - 1;
  }
  slotBytes(s: number): number {
    return this.slots[s] * (this.intSlots.includes(s) ? 4 : this.elem);
  }
  viewBytes(v: View): number {
    return numelOf(v.shape) * (v.dtype === 'i32' ? 4 : this.elem);
  }
  storageSlot(id: string): number {
    const s = this.slotOf.get(id);
    if (s === undefined)
      throw new RunError('validation', `the plan refers to a storage '${id}' it never made`);
    return s;
  }
  /** A step of worker op `op`, its arguments written in the op's declared layout (WORKER_OPS). */
  emit<Op extends WorkerOp>(
    p: PlanStep,
    op: Op,
    ins: number[],
    outs: number[],
    args: WorkerArgs<Op>,
    bytes: StepBytes = {},
  ): void {
    this.steps.push({ node: p.node, op, in: ins, out: outs, ...workerArgs(op, args, this.ranks) });
    const read =
      bytes.readBytes ??
      ins.filter((s) => s >= 0).reduce((a, s) => a + this.slotBytes(s), 0) * (bytes.readScale ?? 1);
    const written = outs.filter((s) => s >= 0).reduce((a, s) => a + this.slotBytes(s), 0);
    this.info.push({
      node: p.node,
      op: p.op,
      kind: bytes.kind ?? 'kernel',
      bytesRead: read,
      bytesWritten: written,
    });
  }
  /** Tensor bytes the worker loads into `slot` on every rank before the steps run. */
  input(slot: number, bytes: Buffer): void {
    this.inputs.push({ slot, rank: -1, offset: this.payloadBytes });
    this.payload.push(bytes);
    this.payloadBytes += bytes.length;
  }
  check(p: PlanStep, ok: boolean, what: string): void {
    if (!ok)
      throw new RunError('validation', `node ${p.node} (${p.op}): ${what}`, { node: p.node, op: p.op });
  }
  outNumel(p: PlanStep, id: string, want: number): void {
    const have = this.slots[this.storageSlot(id)];
    this.check(p, have === want, `writes ${want} elements into storage '${id}' of ${have}`);
  }
  /** A gather step of `v` (read with `shape`, its elements at `lo` in `outShape`) into slot `out`. */
  gatherInto(
    p: PlanStep,
    v: View,
    out: number,
    g: { shape: number[]; strides: number[]; outShape: number[]; lo: number[]; value: number },
  ): void {
    // Bytes read: the view's own elements (a strided window reads only those; a broadcast reads them once).
    this.emit(
      p,
      'gather',
      [this.storageSlot(v.storage)],
      [out],
      {
        offset: v.offset,
        nd: g.shape.length,
        outShape: g.outShape,
        inShape: g.shape,
        stride: g.strides,
        lo: g.lo,
        value: g.value,
      },
      { readBytes: this.viewBytes(v) },
    );
  }
  /** A gather of `v` into a new contiguous slot of `shape` (broadcasting where v has size-1 or missing dims). */
  gather(p: PlanStep, v: View, shape: number[] = v.shape): number {
    const off = shape.length - v.shape.length;
    this.check(
      p,
      off >= 0 && v.shape.every((d, k) => d === 1 || d === shape[k + off]),
      `[${v.shape}] does not broadcast to [${shape}]`,
    );
    const strides = shape.map((d, k) => (k < off || v.shape[k - off] === 1 ? 0 : v.strides[k - off]));
    const out = this.newSlot(numelOf(shape), v.dtype === 'i32');
    this.gatherInto(p, v, out, { shape, strides, outShape: shape, lo: shape.map(() => 0), value: 0 });
    return out;
  }
  isWhole(v: View): boolean {
    return v.offset === 0 && isContiguous(v) && numelOf(v.shape) === this.slots[this.storageSlot(v.storage)];
  }
  /** The view as a whole contiguous slot, gathering only when it is not one already. */
  dense(p: PlanStep, v: View, shape: number[] = v.shape): number {
    return shape.join() === v.shape.join() && this.isWhole(v)
      ? this.storageSlot(v.storage)
      : this.gather(p, v, shape);
  }
  /** rows × cols with a row stride the norm kernels read in place, else gathered. */
  normRows(p: PlanStep, v: View): NormRows {
    const r = asRows(v);
    if (r)
      return {
        slot: this.storageSlot(v.storage),
        rows: r.rows,
        cols: r.cols,
        offset: r.offset,
        stride: r.rowStride,
      };
    const cols = v.shape[v.shape.length - 1] ?? 1;
    return { slot: this.gather(p, v), rows: numelOf(v.shape) / cols, cols, offset: 0, stride: cols };
  }
}

type Lowerings = {
  [K in PlanStep['kernel']]: (s: Extract<PlanStep, { kernel: K }>, b: ProgramBuilder) => void;
};

/** Refuses a kernel the worker has no op for, naming the node. */
const noWorkerKernel = (s: PlanStep) => {
  throw new RunError(
    'unsupported-ops',
    `node ${s.node} (${s.op}): the agent has no ${s.kernel} kernel yet; run this graph on the webgpu or cpu backend`,
    { node: s.node, op: s.op },
  );
};

/** The norm family: rms_norm, and fused_add_rms_norm with its residual and new residual. */
function lowerNorm(
  s: Extract<PlanStep, { kernel: 'rms_norm' | 'fused_add_rms_norm' }>,
  b: ProgramBuilder,
): void {
  const x = b.normRows(s, s.x);
  b.outNumel(s, s.out, x.rows * x.cols);
  if (s.kernel === 'fused_add_rms_norm') b.outNumel(s, s.residualOut, x.rows * x.cols);
  b.check(s, numelOf(s.w.shape) === x.cols, `weight of ${numelOf(s.w.shape)} for rows of ${x.cols}`);
  const args = { rows: x.rows, cols: x.cols, xOffset: x.offset, xRowStride: x.stride, eps: s.eps };
  if (s.kernel === 'rms_norm') b.emit(s, 'rms_norm', [x.slot, b.dense(s, s.w)], [b.storageSlot(s.out)], args);
  else
    b.emit(
      s,
      'fused_add_rms_norm',
      [x.slot, b.dense(s, s.residual, s.x.shape), b.dense(s, s.w)],
      [b.storageSlot(s.out), b.storageSlot(s.residualOut)],
      args,
    );
}

/**
 * async TP's fused matmul + reduce-scatter, planned as its gemm then this step: the worker runs the
 * pair as one pipelined op (agent/native/collective_gemm.cuh). Returns whether it merged them.
 */
function fuseMatmulReduceScatter(
  s: Extract<PlanStep, { kernel: 'reduce_scatter' }>,
  b: ProgramBuilder,
): boolean {
  const prev = b.steps[b.steps.length - 1];
  if (
    s.op !== FUSED_MATMUL_REDUCE_SCATTER ||
    prev?.op !== 'mm' ||
    prev.node !== s.node ||
    !b.isWhole(s.x) ||
    prev.out[0] !== b.storageSlot(s.x.storage)
  )
    return false;
  const { groups, size: R } = b.groupsOf(s);
  b.check(s, s.x.shape[0]! % R === 0, `[${s.x.shape}] does not split over ${R} ranks along tokens`);
  b.outNumel(s, s.out, numelOf(s.x.shape) / R);
  // mm_reduce_scatter takes mm's arguments (WORKER_OPS): only the op and the second output change.
  prev.op = 'mm_reduce_scatter';
  prev.out.push(b.storageSlot(s.out));
  b.inGroups(groups);
  const last = b.info[b.info.length - 1]!;
  last.kind = 'transfer';
  last.bytesWritten += b.slotBytes(b.storageSlot(s.out));
  return true;
}

/** Sequence parallelism's pair along tokens: reduce_scatter keeps 1/R of the rows, all_gather concatenates R. */
function lowerScatterGather(
  s: Extract<PlanStep, { kernel: 'reduce_scatter' | 'all_gather' }>,
  b: ProgramBuilder,
): void {
  if (s.kernel === 'reduce_scatter' && fuseMatmulReduceScatter(s, b)) return;
  const { groups, size: R } = b.groupsOf(s);
  const n = numelOf(s.x.shape);
  const outN = s.kernel === 'reduce_scatter' ? n / R : n * R;
  b.check(
    s,
    Number.isInteger(outN) &&
      s.x.shape.length >= 1 &&
      s.x.shape[0]! % (s.kernel === 'reduce_scatter' ? R : 1) === 0,
    `[${s.x.shape}] does not split over ${R} ranks along tokens`,
  );
  b.outNumel(s, s.out, outN);
  b.emit(
    s,
    s.kernel,
    [b.dense(s, s.x)],
    [b.storageSlot(s.out)],
    {},
    {
      kind: 'transfer',
      readScale: s.kernel === 'reduce_scatter' ? R : 1,
    },
  );
  b.inGroups(groups);
}

/** A seeded input: the user's tensor when given, else zeros or the seeded generator on the worker. */
function lowerSeed(s: Extract<PlanStep, { kernel: 'seed' }>, b: ProgramBuilder): void {
  const { plan, opts } = b;
  const st = plan.storages.get(s.out)!;
  const slot = b.storageSlot(s.out);
  const given = opts.inputs?.get(s.name);
  if (given) {
    if (given.shape.join() !== st.shape.join()) {
      throw new RunError(
        'input',
        `input '${s.name}': shape [${given.shape}] but the run needs [${st.shape}] (preset ${plan.preset.name}, T=${plan.tokens})`,
        { node: s.node },
      );
    }
    b.input(slot, encode(given, st.dtype === 'i32' ? 'i32' : b.dtype));
    return;
  }
  const rule = seedRule(s.role, st.shape);
  if (s.role === 'zeros') {
    b.emit(s, 'fill', [], [slot], { value: 0 }, { kind: 'fed' });
    return;
  }
  const stream = Array.from({ length: b.ranks }, (_, r) => seedStream(s.name, s.perRank, r));
  b.emit(
    s,
    'seed',
    [],
    [slot],
    { seed: opts.seed >>> 0, range: s.range ?? -1, stream, scale: rule.scale, offset: rule.offset },
    { kind: 'fed' },
  );
}

function lowerGemm(s: Extract<PlanStep, { kernel: 'gemm' }>, b: ProgramBuilder): void {
  const [M, K] = s.a.shape;
  const N = s.b.shape[1];
  b.check(
    s,
    s.a.shape.length === 2 && s.b.shape.length === 2 && s.b.shape[0] === K,
    `mm of [${s.a.shape}] and [${s.b.shape}]`,
  );
  b.outNumel(s, s.out, M * N);
  const a = b.dense(s, s.a);
  // t(W) of a row-major [N, K] weight is read as is, with the GEMM transposing it.
  const w = s.b;
  const transposedWeight =
    w.offset === 0 && w.strides[0] === 1 && w.strides[1] === K && b.slots[b.storageSlot(w.storage)] === K * N;
  const ins = [a, transposedWeight ? b.storageSlot(w.storage) : b.dense(s, w)];
  let biasMode = 0;
  if (s.bias) {
    if (s.bias.shape.length === 1 && s.bias.shape[0] === N && b.isWhole(s.bias)) {
      biasMode = 1;
      ins.push(b.storageSlot(s.bias.storage));
    } else {
      biasMode = 2;
      ins.push(b.dense(s, s.bias, [M, N]));
    }
  }
  b.emit(s, 'mm', ins, [b.storageSlot(s.out)], {
    M,
    K,
    N,
    biasMode,
    transB: transposedWeight ? 1 : 0,
    alpha: s.alpha,
    beta: s.beta,
  });
}

function lowerFusedAllReduceNorm(
  s: Extract<PlanStep, { kernel: 'fused_allreduce_norm' }>,
  b: ProgramBuilder,
): void {
  // The worker's fused kernel rounds the norm once; the bitwise check against the unfused pair is not available here.
  b.check(
    s,
    (s.normRounding ?? 'once') === 'once',
    `the worker rounds the fused norm once; normRounding '${s.normRounding}' is not supported`,
  );
  const cols = s.x.shape[s.x.shape.length - 1] ?? 1;
  const rows = numelOf(s.x.shape) / cols;
  b.outNumel(s, s.out, rows * cols);
  b.outNumel(s, s.residualOut, rows * cols);
  b.check(s, numelOf(s.w.shape) === cols, `rms_gamma of ${numelOf(s.w.shape)} for rows of ${cols}`);
  const ins = [b.dense(s, s.x), b.dense(s, s.residual, s.x.shape), b.dense(s, s.w)];
  // The one-shot kernel reads every rank of its group's input once: R inputs + residual + γ.
  const { groups, size } = b.groupsOf(s);
  const readBytes = b.slotBytes(ins[0]) * (size + 1) + b.slotBytes(ins[2]);
  b.emit(
    s,
    'allreduce_norm',
    ins,
    [b.storageSlot(s.out), b.storageSlot(s.residualOut)],
    { rows, cols, eps: s.eps },
    { readBytes },
  );
  b.inGroups(groups);
}

function lowerMoe(s: Extract<PlanStep, { kernel: 'moe' }>, b: ProgramBuilder): void {
  // The worker adds b2 on rank 0 alone: one TP group, so rank = TP rank.
  b.check(
    s,
    b.plan.mesh.dp === 1,
    `the native worker runs an MoE in one TP group only (dp ${b.plan.mesh.dp}); run dp > 1 on webgpu or cpu`,
  );
  const R = b.ranks;
  const x = b.dense(s, s.x);
  const logits = b.dense(s, s.logits);
  const [T, H] = s.x.shape;
  const E = s.experts;
  b.check(
    s,
    s.x.shape.length === 2 &&
      s.logits.shape.length === 2 &&
      s.logits.shape[0] === T &&
      s.logits.shape[1] === E,
    `hidden [${s.x.shape}] with router logits [${s.logits.shape}] for ${E} experts`,
  );
  b.check(s, s.topK >= 1 && s.topK <= Math.min(8, E), `top-k ${s.topK} must be 1..min(8, experts)`);
  b.outNumel(s, s.out, T * H);
  if (s.intermediate % R)
    throw new RunError(
      'input',
      `node ${s.node}: intermediate size ${s.intermediate} does not split over ${R} ranks`,
      {
        node: s.node,
        op: s.op,
      },
    );
  const Is = s.intermediate / R;
  // The expert weights are generated on the device from the same (seed, stream) as the reference.
  const shapes = { experts: E, hidden: H, interShard: Is, interFull: s.intermediate };
  const perRank = Array.from({ length: R }, (_, r) => expertTensors(s.layer, r, shapes));
  const weightSlots = (['w13', 'b13', 'w2', 'b2'] as const).map((k) => {
    const t = perRank[0][k];
    const slot = b.newSlot(numelOf(t.shape), false);
    b.emit(
      s,
      'seed',
      [],
      [slot],
      {
        seed: b.opts.seed >>> 0,
        range: -1,
        stream: perRank.map((w) => w[k].stream),
        scale: t.rule.scale,
        offset: t.rule.offset,
      },
      { kind: 'fed' },
    );
    return slot;
  });
  b.emit(s, 'moe', [x, logits, ...weightSlots], [b.storageSlot(s.out)], { T, H, E, I: Is, K: s.topK });
}

/** How each plan kernel becomes worker steps. */
const LOWERINGS: Lowerings = {
  seed: lowerSeed,
  map: (s, b) => {
    // The vocabulary-parallel embedding's mask arithmetic (mixed i32/float elementwise ops).
    const shape = b.plan.storages.get(s.out)!.shape;
    const ins = [b.dense(s, s.a, shape)];
    if (s.b) ins.push(b.dense(s, s.b, shape));
    b.emit(s, 'map', ins, [b.storageSlot(s.out)], { fn: MAP_FN_CODES.indexOf(s.fn), scalar: s.scalar });
  },
  copy: (s, b) => {
    const v = s.x;
    b.outNumel(s, s.out, numelOf(v.shape));
    b.gatherInto(s, v, b.storageSlot(s.out), {
      shape: v.shape,
      strides: v.strides,
      outShape: v.shape,
      lo: v.shape.map(() => 0),
      value: 0,
    });
  },
  pad: (s, b) => {
    const v = s.x;
    const out = b.storageSlot(s.out);
    const outShape = b.plan.storages.get(s.out)!.shape;
    b.check(
      s,
      s.lo.length === v.shape.length &&
        outShape.length === v.shape.length &&
        v.shape.every((d, k) => s.lo[k] + d <= outShape[k]),
      `pad of [${v.shape}] by [${s.lo}] into [${outShape}]`,
    );
    b.gatherInto(s, v, out, {
      shape: v.shape,
      strides: v.strides,
      outShape,
      lo: s.lo,
      value: s.value,
    });
  },
  add: (s, b) => {
    const shape = b.plan.storages.get(s.out)!.shape;
    b.emit(s, 'add', [b.dense(s, s.a, shape), b.dense(s, s.b, shape)], [b.storageSlot(s.out)], {
      alpha: s.alpha,
    });
  },
  gemm: lowerGemm,
  embedding: (s, b) => {
    const [V, H] = s.weight.shape;
    b.check(
      s,
      s.weight.shape.length === 2 && s.indices.dtype === 'i32',
      'embedding needs a [V, H] table and i32 token ids',
    );
    b.outNumel(s, s.out, numelOf(s.indices.shape) * H);
    const ids = b.dense(s, s.indices);
    b.emit(s, 'embedding', [b.dense(s, s.weight), ids], [b.storageSlot(s.out)], {
      T: numelOf(s.indices.shape),
      V,
      H,
    });
  },
  rms_norm: lowerNorm,
  fused_add_rms_norm: lowerNorm,
  reduce_rows: (s, b) => {
    const x = b.normRows(s, s.x);
    b.outNumel(s, s.out, x.rows);
    b.emit(s, 'reduce_rows', [x.slot], [b.storageSlot(s.out)], {
      rows: x.rows,
      cols: x.cols,
      xOffset: x.offset,
      xRowStride: x.stride,
      mean: s.mean ? 1 : 0,
    });
  },
  all_reduce: (s, b) => {
    b.outNumel(s, s.out, numelOf(s.x.shape));
    const { groups, size } = b.groupsOf(s);
    b.emit(
      s,
      'all_reduce',
      [b.dense(s, s.x)],
      [b.storageSlot(s.out)],
      {},
      { kind: 'transfer', readScale: size },
    );
    b.inGroups(groups);
  },
  reduce_scatter: lowerScatterGather,
  all_gather: lowerScatterGather,
  fused_allreduce_norm: lowerFusedAllReduceNorm,
  moe: lowerMoe,
  fp8_quant: (s, b) => {
    const n = numelOf(s.x.shape);
    b.outNumel(s, s.out, n);
    b.check(s, numelOf(s.scale.shape) >= 1, 'a scale of no elements');
    b.emit(s, 'fp8_quant', [b.dense(s, s.x), b.dense(s, s.scale)], [b.storageSlot(s.out)], {
      satfinite: s.satfinite ? 1 : 0,
    });
  },
  // The CPU reference and WebGPU run these; the native worker has no kernel for them yet.
  scatter: noWorkerKernel,
  rotary: noWorkerKernel,
  kv_cache_write: noWorkerKernel,
  attention: noWorkerKernel,
  nvfp4_scale: noWorkerKernel,
  nvfp4_quant: noWorkerKernel,
  nvfp4_gemm: noWorkerKernel,
  silu_and_mul_nvfp4: noWorkerKernel,
  fp8_quant_rows: expandedBefore,
  qk_norm_rope: expandedBefore,
  silu_and_mul: expandedBefore,
  rms_norm_dynamic_quant: expandedBefore,
  fused_add_rms_norm_dynamic_quant: expandedBefore,
};

/** A kernel lowerPlan has replaced by its unfused steps (KERNEL_DECOMPOSITIONS) before lowering. */
function expandedBefore(s: PlanStep): never {
  throw new Error(`node ${s.node}: ${s.kernel} runs as its decomposition`);
}

export function lowerPlan(given: Plan, opts: LowerOptions): LoweredProgram {
  const plan = decomposed(given);
  if (plan.dtype !== 'bf16' && plan.dtype !== 'f32')
    throw new RunError('input', `the agent runs bf16 and f32, not ${plan.dtype}`);
  const dtype = plan.dtype;
  // The worker holds every float slot in the run's dtype: a value the plan keeps wider (RMSNorm's
  // f32 upcast in a bf16 run) would be rounded where the reference does not round it.
  const wider = plan.steps.find((s) => {
    const d = plan.storages.get(s.out)?.dtype;
    return d !== undefined && d !== 'i32' && d !== dtype;
  });
  if (wider)
    throw new RunError(
      'unsupported-ops',
      `node ${wider.node} (${wider.op}): keeps ${plan.storages.get(wider.out)!.dtype} values in a ${dtype} run; the agent's worker holds one float dtype per run: run it in f32, or on the webgpu or cpu backend`,
      { node: wider.node, op: wider.op },
    );
  const b = new ProgramBuilder(plan, opts, dtype);
  for (const s of plan.steps) (LOWERINGS[s.kernel] as (s: PlanStep, b: ProgramBuilder) => void)(s, b);

  const outputs = plan.outputs.map((o) => ({
    name: o.name,
    slot: b.dense({ node: o.name, op: 'output' } as PlanStep, o.view),
    dtype: o.view.dtype === 'i32' ? ('i32' as const) : dtype,
    shape: o.view.shape,
  }));

  const R = plan.ranks;
  const total = b.slots.reduce((a, _, s) => a + b.slotBytes(s), 0) * R;
  if (total > opts.maxDeviceBytes) {
    throw new RunError(
      'limits',
      `the run needs ${(total / 2 ** 20).toFixed(1)} MiB over ${R} ranks; the agent allows ${(opts.maxDeviceBytes / 2 ** 20).toFixed(0)} MiB`,
    );
  }
  return {
    program: {
      type: 'run',
      id: opts.id,
      world: R,
      dtype,
      slots: b.slots,
      intSlots: b.intSlots,
      inputs: b.inputs,
      steps: b.steps,
      outputs: outputs.map((o) => o.slot),
    },
    payload: b.payload,
    steps: b.info,
    outputs,
  };
}

/** A host tensor's values as the worker's bytes: bf16 bits, f32 or i32, little-endian. */
function encode(t: HostTensor, as: 'bf16' | 'f32' | 'i32'): Buffer {
  if (t.dtype === as && (as !== 'bf16' || t.data instanceof Uint16Array)) {
    return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }
  const v = hostValues(t);
  if (as === 'i32') return Buffer.from(Int32Array.from(v, (x) => Math.trunc(x)).buffer);
  const f = Float32Array.from(v);
  if (as === 'f32') return Buffer.from(f.buffer);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) {
    const x = u[i];
    out[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return Buffer.from(out.buffer);
}
