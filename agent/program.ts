// Lowering the runtime's plan (src/runtime/plan.ts: storages, strided views, kernel steps) into
// the native worker's flat program: one slot per storage, contiguous operands, integer and float
// parameters per step (the layout agent/native/program.hpp reads). Views the worker's kernels
// cannot read in place become an explicit `gather` step first, so the worker stays small.

import type { Plan, Step as PlanStep, View } from '../src/runtime/plan.ts';
import { MAP_FN_CODES, assertNever, type WorkerOp } from '../src/graph/opTable.ts';
import { asRows, isContiguous, numelOf } from '../src/runtime/plan.ts';
import type { HostTensor } from '../src/runtime/hostTensor.ts';
import { hostValues } from '../src/runtime/hostTensor.ts';
import { seedRule, seedStream, expertTensors } from '../src/runtime/weights.ts';
import { RunError } from '../src/runtime/runError.ts';
import type { TraceEvent } from '../src/runtime/backend.ts';

export type { WorkerOp } from '../src/graph/opTable.ts';

const FUSED_MATMUL_REDUCE_SCATTER = 'symm_mem.fused_matmul_reduce_scatter.default';

export interface WorkerStep {
  node: string;
  op: WorkerOp;
  in: number[];
  out: number[];
  i: number[];
  f: number[];
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

export function lowerPlan(plan: Plan, opts: LowerOptions): LoweredProgram {
  if (plan.dtype !== 'bf16' && plan.dtype !== 'f32')
    throw new RunError('input', `the agent runs bf16 and f32, not ${plan.dtype}`);
  const dtype = plan.dtype;
  const elem = dtype === 'bf16' ? 2 : 4;
  const slots: number[] = [];
  const intSlots: number[] = [];
  const slotOf = new Map<string, number>();
  const steps: WorkerStep[] = [];
  const info: StepInfo[] = [];
  const inputs: WorkerProgram['inputs'] = [];
  const payload: Buffer[] = [];
  let payloadBytes = 0;
  const R = plan.ranks;

  const newSlot = (numel: number, isInt: boolean) => {
    slots.push(numel);
    if (isInt) intSlots.push(slots.length - 1);
    return slots.length - 1;
  };
  for (const [id, st] of plan.storages) slotOf.set(id, newSlot(st.numel, st.dtype === 'i32'));
  const viewElem = (v: View) => (v.dtype === 'i32' ? 4 : elem);
  const slotBytes = (s: number) => slots[s] * (intSlots.includes(s) ? 4 : elem);
  const storageSlot = (id: string) => {
    const s = slotOf.get(id);
    if (s === undefined)
      throw new RunError('validation', `the plan refers to a storage '${id}' it never made`);
    return s;
  };
  const emit = (
    p: PlanStep,
    op: WorkerOp,
    ins: number[],
    outs: number[],
    i: number[] = [],
    f: number[] = [],
    kind: TraceEvent['kind'] = 'kernel',
    readScale = 1,
    readBytes?: number,
  ) => {
    steps.push({ node: p.node, op, in: ins, out: outs, i, f });
    const read = readBytes ?? ins.filter((s) => s >= 0).reduce((a, s) => a + slotBytes(s), 0) * readScale;
    const written = outs.filter((s) => s >= 0).reduce((a, s) => a + slotBytes(s), 0);
    info.push({ node: p.node, op: p.op, kind, bytesRead: read, bytesWritten: written });
  };
  const check = (p: PlanStep, ok: boolean, what: string) => {
    if (!ok)
      throw new RunError('validation', `node ${p.node} (${p.op}): ${what}`, { node: p.node, op: p.op });
  };
  const outNumel = (p: PlanStep, id: string, want: number) => {
    const have = slots[storageSlot(id)];
    check(p, have === want, `writes ${want} elements into storage '${id}' of ${have}`);
  };
  /** A gather of `v` into a new contiguous slot of `shape` (broadcasting where v has size-1 or missing dims). */
  const gather = (p: PlanStep, v: View, shape: number[] = v.shape): number => {
    const off = shape.length - v.shape.length;
    check(
      p,
      off >= 0 && v.shape.every((d, k) => d === 1 || d === shape[k + off]),
      `[${v.shape}] does not broadcast to [${shape}]`,
    );
    const strides = shape.map((d, k) => (k < off || v.shape[k - off] === 1 ? 0 : v.strides[k - off]));
    const out = newSlot(numelOf(shape), v.dtype === 'i32');
    // Bytes read: the view's own elements (a strided window reads only those; a broadcast reads them once).
    emit(
      p,
      'gather',
      [storageSlot(v.storage)],
      [out],
      [v.offset, shape.length, ...shape, ...shape, ...strides, ...shape.map(() => 0)],
      [0],
      'kernel',
      1,
      numelOf(v.shape) * viewElem(v),
    );
    return out;
  };
  const isWhole = (v: View) =>
    v.offset === 0 && isContiguous(v) && numelOf(v.shape) === slots[storageSlot(v.storage)];
  /** The view as a whole contiguous slot, gathering only when it is not one already. */
  const dense = (p: PlanStep, v: View, shape: number[] = v.shape): number =>
    shape.join() === v.shape.join() && isWhole(v) ? storageSlot(v.storage) : gather(p, v, shape);
  /** rows × cols with a row stride the norm kernels read in place, else gathered. */
  const normRows = (
    p: PlanStep,
    v: View,
  ): { slot: number; rows: number; cols: number; offset: number; stride: number } => {
    const r = asRows(v);
    if (r)
      return {
        slot: storageSlot(v.storage),
        rows: r.rows,
        cols: r.cols,
        offset: r.offset,
        stride: r.rowStride,
      };
    const cols = v.shape[v.shape.length - 1] ?? 1;
    return { slot: gather(p, v), rows: numelOf(v.shape) / cols, cols, offset: 0, stride: cols };
  };

  for (const s of plan.steps) {
    switch (s.kernel) {
      case 'map': {
        // The vocabulary-parallel embedding's mask arithmetic (mixed i32/float elementwise ops).
        const shape = plan.storages.get(s.out)!.shape;
        const ins = [dense(s, s.a, shape)];
        if (s.b) ins.push(dense(s, s.b, shape));
        emit(s, 'map', ins, [storageSlot(s.out)], [MAP_FN_CODES.indexOf(s.fn)], [s.scalar]);
        break;
      }
      case 'seed': {
        const st = plan.storages.get(s.out)!;
        const slot = storageSlot(s.out);
        const given = opts.inputs?.get(s.name);
        if (given) {
          if (given.shape.join() !== st.shape.join()) {
            throw new RunError(
              'input',
              `input '${s.name}': shape [${given.shape}] but the run needs [${st.shape}] (preset ${plan.preset.name}, T=${plan.tokens})`,
              { node: s.node },
            );
          }
          const bytes = encode(given, st.dtype === 'i32' ? 'i32' : dtype);
          inputs.push({ slot, rank: -1, offset: payloadBytes });
          payload.push(bytes);
          payloadBytes += bytes.length;
          break;
        }
        const rule = seedRule(s.role, st.shape);
        if (s.role === 'zeros') {
          emit(s, 'fill', [], [slot], [], [0], 'fed');
          break;
        }
        const streams = Array.from({ length: R }, (_, r) => seedStream(s.name, s.perRank, r));
        emit(
          s,
          'seed',
          [],
          [slot],
          [opts.seed >>> 0, s.range ?? -1, ...streams],
          [rule.scale, rule.offset],
          'fed',
        );
        break;
      }
      case 'copy': {
        outNumel(s, s.out, numelOf(s.x.shape));
        const out = storageSlot(s.out);
        const v = s.x;
        emit(
          s,
          'gather',
          [storageSlot(v.storage)],
          [out],
          [v.offset, v.shape.length, ...v.shape, ...v.shape, ...v.strides, ...v.shape.map(() => 0)],
          [0],
          'kernel',
          1,
          numelOf(v.shape) * viewElem(v),
        );
        break;
      }
      case 'pad': {
        const out = storageSlot(s.out);
        const oshape = plan.storages.get(s.out)!.shape;
        const v = s.x;
        check(
          s,
          s.lo.length === v.shape.length &&
            oshape.length === v.shape.length &&
            v.shape.every((d, k) => s.lo[k] + d <= oshape[k]),
          `pad of [${v.shape}] by [${s.lo}] into [${oshape}]`,
        );
        emit(
          s,
          'gather',
          [storageSlot(v.storage)],
          [out],
          [v.offset, v.shape.length, ...oshape, ...v.shape, ...v.strides, ...s.lo],
          [s.value],
          'kernel',
          1,
          numelOf(v.shape) * viewElem(v),
        );
        break;
      }
      case 'add': {
        const shape = plan.storages.get(s.out)!.shape;
        emit(s, 'add', [dense(s, s.a, shape), dense(s, s.b, shape)], [storageSlot(s.out)], [], [s.alpha]);
        break;
      }
      case 'gemm': {
        const [M, K] = s.a.shape;
        const N = s.b.shape[1];
        check(
          s,
          s.a.shape.length === 2 && s.b.shape.length === 2 && s.b.shape[0] === K,
          `mm of [${s.a.shape}] and [${s.b.shape}]`,
        );
        outNumel(s, s.out, M * N);
        const a = dense(s, s.a);
        // t(W) of a row-major [N, K] weight is read as is, with the GEMM transposing it.
        const b = s.b;
        const transposedWeight =
          b.offset === 0 &&
          b.strides[0] === 1 &&
          b.strides[1] === K &&
          slots[storageSlot(b.storage)] === K * N;
        const bSlot = transposedWeight ? storageSlot(b.storage) : dense(s, b);
        let biasMode = 0;
        const ins = [a, bSlot];
        if (s.bias) {
          if (s.bias.shape.length === 1 && s.bias.shape[0] === N && isWhole(s.bias)) {
            biasMode = 1;
            ins.push(storageSlot(s.bias.storage));
          } else {
            biasMode = 2;
            ins.push(dense(s, s.bias, [M, N]));
          }
        }
        emit(
          s,
          'mm',
          ins,
          [storageSlot(s.out)],
          [M, K, N, biasMode, transposedWeight ? 1 : 0],
          [s.alpha, s.beta],
        );
        break;
      }
      case 'embedding': {
        const [V, H] = s.weight.shape;
        check(
          s,
          s.weight.shape.length === 2 && s.indices.dtype === 'i32',
          'embedding needs a [V, H] table and i32 token ids',
        );
        outNumel(s, s.out, numelOf(s.indices.shape) * H);
        const ids = dense(s, s.indices);
        emit(
          s,
          'embedding',
          [dense(s, s.weight), ids],
          [storageSlot(s.out)],
          [numelOf(s.indices.shape), V, H],
        );
        break;
      }
      case 'rms_norm': {
        const x = normRows(s, s.x);
        outNumel(s, s.out, x.rows * x.cols);
        check(s, numelOf(s.w.shape) === x.cols, `weight of ${numelOf(s.w.shape)} for rows of ${x.cols}`);
        emit(
          s,
          'rms_norm',
          [x.slot, dense(s, s.w)],
          [storageSlot(s.out)],
          [x.rows, x.cols, x.offset, x.stride],
          [s.eps],
        );
        break;
      }
      case 'fused_add_rms_norm': {
        const x = normRows(s, s.x);
        outNumel(s, s.out, x.rows * x.cols);
        outNumel(s, s.residualOut, x.rows * x.cols);
        check(s, numelOf(s.w.shape) === x.cols, `weight of ${numelOf(s.w.shape)} for rows of ${x.cols}`);
        emit(
          s,
          'fused_add_rms_norm',
          [x.slot, dense(s, s.residual, s.x.shape), dense(s, s.w)],
          [storageSlot(s.out), storageSlot(s.residualOut)],
          [x.rows, x.cols, x.offset, x.stride],
          [s.eps],
        );
        break;
      }
      case 'all_reduce':
        outNumel(s, s.out, numelOf(s.x.shape));
        emit(s, 'all_reduce', [dense(s, s.x)], [storageSlot(s.out)], [], [], 'transfer', R);
        break;
      case 'reduce_scatter':
      case 'all_gather': {
        const n = numelOf(s.x.shape);
        // async TP's fused matmul + reduce-scatter, planned as its gemm then this step: the worker
        // runs the pair as one pipelined op (agent/native/collective_gemm.cuh).
        const prev = steps[steps.length - 1];
        if (
          s.kernel === 'reduce_scatter' &&
          s.op === FUSED_MATMUL_REDUCE_SCATTER &&
          prev?.op === 'mm' &&
          prev.node === s.node &&
          isWhole(s.x) &&
          prev.out[0] === storageSlot(s.x.storage)
        ) {
          check(s, s.x.shape[0]! % R === 0, `[${s.x.shape}] does not split over ${R} ranks along tokens`);
          outNumel(s, s.out, n / R);
          prev.op = 'mm_reduce_scatter';
          prev.out.push(storageSlot(s.out));
          const last = info[info.length - 1]!;
          last.kind = 'transfer';
          last.bytesWritten += slotBytes(storageSlot(s.out));
          break;
        }
        const outN = s.kernel === 'reduce_scatter' ? n / R : n * R;
        check(
          s,
          Number.isInteger(outN) &&
            s.x.shape.length >= 1 &&
            s.x.shape[0]! % (s.kernel === 'reduce_scatter' ? R : 1) === 0,
          `[${s.x.shape}] does not split over ${R} ranks along tokens`,
        );
        outNumel(s, s.out, outN);
        emit(
          s,
          s.kernel,
          [dense(s, s.x)],
          [storageSlot(s.out)],
          [],
          [],
          'transfer',
          s.kernel === 'reduce_scatter' ? R : 1,
        );
        break;
      }
      case 'fused_allreduce_norm': {
        // The worker's fused kernel rounds the norm once; the bitwise check against the unfused pair is not available here.
        check(
          s,
          (s.normRounding ?? 'once') === 'once',
          `the worker rounds the fused norm once; normRounding '${s.normRounding}' is not supported`,
        );
        const cols = s.x.shape[s.x.shape.length - 1] ?? 1;
        const rows = numelOf(s.x.shape) / cols;
        outNumel(s, s.out, rows * cols);
        outNumel(s, s.residualOut, rows * cols);
        check(s, numelOf(s.w.shape) === cols, `rms_gamma of ${numelOf(s.w.shape)} for rows of ${cols}`);
        emit(
          s,
          'allreduce_norm',
          [dense(s, s.x), dense(s, s.residual, s.x.shape), dense(s, s.w)],
          [storageSlot(s.out), storageSlot(s.residualOut)],
          [rows, cols],
          [s.eps],
          'kernel',
          1,
        );
        // The one-shot kernel reads every rank's input once: R inputs + residual + γ.
        info[info.length - 1].bytesRead =
          slotBytes(steps[steps.length - 1].in[0]) * (R + 1) + slotBytes(steps[steps.length - 1].in[2]);
        break;
      }
      case 'moe': {
        const x = dense(s, s.x);
        const logits = dense(s, s.logits);
        const [T, H] = s.x.shape;
        const E = s.experts;
        check(
          s,
          s.x.shape.length === 2 &&
            s.logits.shape.length === 2 &&
            s.logits.shape[0] === T &&
            s.logits.shape[1] === E,
          `hidden [${s.x.shape}] with router logits [${s.logits.shape}] for ${E} experts`,
        );
        check(s, s.topK >= 1 && s.topK <= Math.min(8, E), `top-k ${s.topK} must be 1..min(8, experts)`);
        outNumel(s, s.out, T * H);
        if (s.intermediate % R)
          throw new RunError(
            'input',
            `node ${s.node}: intermediate size ${s.intermediate} does not split over ${R} ranks`,
            { node: s.node, op: s.op },
          );
        const Is = s.intermediate / R;
        // The expert weights are generated on the device from the same (seed, stream) as the reference.
        const shapes = { experts: E, hidden: H, interShard: Is, interFull: s.intermediate };
        const perRank = Array.from({ length: R }, (_, r) => expertTensors(s.layer, r, shapes));
        const weightSlots = (['w13', 'b13', 'w2', 'b2'] as const).map((k) => {
          const t = perRank[0][k];
          const slot = newSlot(numelOf(t.shape), false);
          emit(
            s,
            'seed',
            [],
            [slot],
            [opts.seed >>> 0, -1, ...perRank.map((w) => w[k].stream)],
            [t.rule.scale, t.rule.offset],
            'fed',
          );
          return slot;
        });
        emit(s, 'moe', [x, logits, ...weightSlots], [storageSlot(s.out)], [T, H, E, Is, s.topK]);
        break;
      }
      case 'fp8_quant':
        throw new RunError(
          'unsupported-ops',
          `node ${s.node} (${s.op}): the agent's native worker has no FP8 quant kernel; run it on webgpu or cpu`,
          { node: s.node, op: s.op },
        );
      case 'scatter':
      case 'rotary':
      case 'attention':
        // The CPU reference and WebGPU run these; the native worker has no kernel for them yet.
        throw new RunError(
          'unsupported-ops',
          `node ${s.node} (${s.op}): the agent has no ${s.kernel} kernel yet; run this graph on the webgpu or cpu backend`,
          { node: s.node, op: s.op },
        );
      default:
        assertNever(s, 'kernel');
    }
  }

  const outputs = plan.outputs.map((o) => {
    const slot = dense({ node: o.name, op: 'output' } as PlanStep, o.view);
    return {
      name: o.name,
      slot,
      dtype: o.view.dtype === 'i32' ? ('i32' as const) : dtype,
      shape: o.view.shape,
    };
  });

  const total = slots.reduce((a, _, s) => a + slotBytes(s), 0) * R;
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
      slots,
      intSlots,
      inputs,
      steps,
      outputs: outputs.map((o) => o.slot),
    },
    payload,
    steps: info,
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
