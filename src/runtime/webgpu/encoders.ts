// Encoders: one non-collective plan step onto one rank's device, with the WGSL each dispatches
// (src/wgsl) and its parameter struct's words. encodeStep looks the step's kernel up in one table,
// assembled from each family's encoders (elementwiseEncoders.ts, moeEncoders.ts, the GEMM and the
// norms here). The collectives reuse the norm encoder; the run loop (webgpuBackend.ts) and the
// rank workers call encodeStep.

import { costRanks } from '../rankMesh.ts';
import type { Plan, Step, View, StorageDType, FusedNormRounding } from '../plan.ts';
import { kernelCost } from '../../graph/opTable.ts';
import { asRows, broadcastStrides, isCollective, outputsOf } from '../plan.ts';
import type { HostTensor } from '../hostTensor.ts';
import { GEMM_PARAMS, gemmWgsl, GEMM_TILE } from '../../wgsl/gemm.ts';
import { rmsNormWgsl, normVector, NORM_PARAMS, type NormMode, type NormParams } from '../../wgsl/rmsNorm.ts';
import {
  rmsNormRowsWgsl,
  normRowsGrid,
  normRowsQuantFits,
  NORM_ROWS_DEFAULT,
  type NormRowsConfig,
} from '../../wgsl/rmsNormRows.ts';
import type { CollectiveStep } from '../collectives.ts';
import { RankDevice } from './rankDevice.ts';
import { BYTES } from './tensorPacking.ts';
import type { StepContext, StepEncoders } from './stepContext.ts';
import { ELEMENTWISE_ENCODERS } from './elementwiseEncoders.ts';
import { MOE_ENCODERS } from './moeEncoders.ts';
import { QUANT_ENCODERS, encodeQuantRows } from './quantEncoders.ts';
import { QK_NORM_ROPE_ENCODERS } from './qkNormRopeEncoder.ts';
import { SILU_MUL_ENCODERS } from './siluMulEncoders.ts';

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
  override buffer(): GPUBuffer {
    return this.unbacked;
  }
  override alloc(): GPUBuffer {
    return this.unbacked;
  }
  override scratch(): GPUBuffer {
    return this.unbacked;
  }
  override write(): void {}
  override submit(node: string, op: string, encode: Parameters<RankDevice['submit']>[2]): void {
    encode(null as unknown as GPUCommandEncoder, (code) => {
      if (!this.kernels.has(code)) this.kernels.set(code, { node, op });
    });
  }
}

/** Which kernels each collective step dispatches on a rank (they depend on the all-reduce algorithm and the rank mode). */
export type CollectiveKernels = (s: CollectiveStep, r: RankDevice) => string[];

/** Every kernel the plan dispatches on rank `r`, with the first node that needs it. */
export function planKernels(
  plan: Plan,
  r: RankDevice,
  seed: number,
  inputs: Map<string, HostTensor> | undefined,
  collective: CollectiveKernels,
): Map<string, { node: string; op: string }> {
  const rec = new KernelRecorder(r);
  for (const s of plan.steps) {
    if (isCollective(s)) {
      for (const code of collective(s, r))
        if (!rec.kernels.has(code)) rec.kernels.set(code, { node: s.node, op: s.op });
    } else encodeStep(s, rec, plan, seed, inputs);
  }
  return rec.kernels;
}

export { outputsOf };

export function stepBytes(s: Step, plan: Plan): { read: number; written: number } {
  const out = outputsOf(s).reduce((a, id) => {
    const st = plan.storages.get(id)!;
    return a + st.numel * BYTES[st.dtype];
  }, 0);
  const c = kernelCost(s, out, costRanks(plan.mesh, s));
  return { read: c.bytesRead, written: c.bytesWritten };
}

const GEMM_ENCODERS: StepEncoders<'gemm'> = {
  gemm: (s, c) => {
    const [M, K] = s.a.shape;
    const N = s.b.shape[1];
    const bias = s.bias;
    const bs = bias ? broadcastStrides(bias, [M, N]) : [0, 0];
    const words = GEMM_PARAMS.words({
      M,
      N,
      K,
      aOffset: s.a.offset,
      aRowStride: s.a.strides[0],
      aColStride: s.a.strides[1],
      bOffset: s.b.offset,
      bRowStride: s.b.strides[0],
      bColStride: s.b.strides[1],
      biasOffset: bias?.offset ?? 0,
      biasRowStride: bs[0],
      biasColStride: bs[1],
      hasBias: bias ? 1 : 0,
      alpha: s.alpha,
      beta: s.beta,
    });
    const biasBuf = bias ? c.buf(bias) : c.r.scratch(16, 'no bias');
    c.r.submit(s.node, s.op, (_e, pass) =>
      pass(
        gemmWgsl(c.out.dtype, bias?.dtype ?? c.out.dtype, N % 2 === 0),
        [c.buf(s.out), c.buf(s.a), c.buf(s.b), biasBuf],
        words,
        [Math.ceil(N / GEMM_TILE), Math.ceil(M / GEMM_TILE)],
      ),
    );
  },
};

type NormStep = Extract<
  Step,
  {
    kernel: 'rms_norm' | 'fused_add_rms_norm' | 'rms_norm_dynamic_quant' | 'fused_add_rms_norm_dynamic_quant';
  }
>;

/**
 * A norm step's mode, parameters and bindings (the normed output into `out`, the quant's scale
 * buffer at @binding(6)) over the rows of x and the residual's.
 */
function normStepDispatch(s: NormStep, c: StepContext) {
  const x = asRows(s.x)!;
  const fused = 'residual' in s;
  const res = fused ? asRows(s.residual)! : { offset: 0, rowStride: x.cols };
  const p: NormParams = {
    rows: x.rows,
    cols: x.cols,
    xOffset: x.offset,
    xRowStride: x.rowStride,
    resOffset: res.offset,
    resRowStride: res.rowStride,
    wOffset: s.w.offset,
    eps: s.eps,
    ranks: 1,
    rowStart: 0,
    rankSlotStride: 0,
  };
  const bindings = (out: GPUBuffer, scale: GPUBuffer | null) => [
    out,
    fused ? c.buf(s.residualOut) : null,
    c.buf(s.x),
    fused ? c.buf(s.residual) : null,
    c.buf(s.w),
    scale,
  ];
  return { mode: (fused ? 'add' : 'rms') as NormMode, p, bindings };
}

/** rms_norm and fused_add_rms_norm: one norm dispatch over the rows of x (and the residual's). */
function encodeNormStep(
  s: Extract<Step, { kernel: 'rms_norm' | 'fused_add_rms_norm' }>,
  c: StepContext,
): void {
  // The fused quant reads its scale from element 0 of its binding.
  if (s.scale && s.scale.offset !== 0)
    throw new Error(`${s.node}: the norm's quant reads its scale from element 0`);
  const { mode, p, bindings } = normStepDispatch(s, c);
  const scale = s.scale ? c.buf(s.scale) : null;
  encodeNorm(
    c.r,
    s.node,
    s.op,
    mode,
    c.out.dtype,
    p,
    bindings(c.buf(s.out), scale),
    NORM_ROWS_DEFAULT,
    'once',
    s.scale?.dtype,
  );
}

/**
 * The norm + dynamic quant: one dispatch of the bf16 word-row norm with the quant in its store
 * (rmsNormRows.ts); rows that kernel does not take run as its pair — the norm kernel into a scratch
 * buffer, then fp8_quant_rows over it: the same roundings in the same order.
 */
function encodeNormDynamicQuant(
  s: Extract<Step, { kernel: 'rms_norm_dynamic_quant' | 'fused_add_rms_norm_dynamic_quant' }>,
  c: StepContext,
): void {
  const { mode, p, bindings } = normStepDispatch(s, c);
  const d = c.out.dtype;
  const layout = NORM_ROWS_DEFAULT;
  const vec = normVector(d, p.cols, [p.xOffset, p.resOffset, p.wOffset], [p.xRowStride, p.resRowStride]);
  if (d === 'bf16' && vec === 8 && normRowsQuantFits(p.cols, s.group, layout)) {
    const quant = { group: s.group, max: s.max, minScale: s.minScale, transposed: s.scaleTransposed };
    const code = rmsNormRowsWgsl(mode, p.cols, layout, c.r.subgroupSize, 'once', quant);
    const grid: [number, number] = [normRowsGrid(p.rows, layout), 1];
    c.r.submit(s.node, s.op, (_e, pass) =>
      pass(code, bindings(c.buf(s.out), c.buf(s.scaleOut)), NORM_PARAMS.words(p), grid),
    );
    return;
  }
  const n = p.rows * p.cols;
  const normed = c.r.scratch(n * BYTES[d], `${s.node}.normed`);
  const k = normKernel(mode, d, p, c.r.subgroupSize, layout);
  c.r.submit(s.node, s.op, (_e, pass) => pass(k.code, bindings(normed, null), NORM_PARAMS.words(p), k.grid));
  const scaleGroups = s.scaleTransposed ? p.cols / s.group : 1;
  const rule = { eps: 0, max: s.max, minScale: s.minScale, scaleGroups };
  const x = { buf: normed, dtype: d };
  encodeQuantRows(c, s, x, n / s.group, s.group, rule, c.buf(s.out), c.buf(s.scaleOut));
}

const acrossRanks = () => {
  throw new Error('collectives run across ranks');
};

/** Every kernel's encoder on one rank; the collectives run across ranks (collectives.ts) instead. */
const STEP_ENCODERS: StepEncoders<Step['kernel']> = {
  ...ELEMENTWISE_ENCODERS,
  ...MOE_ENCODERS,
  ...QUANT_ENCODERS,
  ...QK_NORM_ROPE_ENCODERS,
  ...SILU_MUL_ENCODERS,
  ...GEMM_ENCODERS,
  rms_norm: encodeNormStep,
  fused_add_rms_norm: encodeNormStep,
  rms_norm_dynamic_quant: encodeNormDynamicQuant,
  fused_add_rms_norm_dynamic_quant: encodeNormDynamicQuant,
  all_reduce: acrossRanks,
  fused_allreduce_norm: acrossRanks,
  reduce_scatter: acrossRanks,
  all_gather: acrossRanks,
};

/** Encode one non-collective step on one rank. */
export function encodeStep(
  s: Step,
  r: RankDevice,
  plan: Plan,
  seed: number,
  inputs?: Map<string, HostTensor>,
): void {
  const c: StepContext = {
    r,
    plan,
    seed,
    inputs,
    out: plan.storages.get(s.out)!,
    buf: (v: View | string) => r.buffer(typeof v === 'string' ? v : v.storage),
  };
  (STEP_ENCODERS[s.kernel] as (s: Step, c: StepContext) => void)(s, c);
}

/**
 * One norm dispatch: `mode` rms / add / allreduce, its parameters by name (NORM_PARAMS), `layout`
 * the rows kernel's layout ('legacy': the per-row kernel), `normRounding` the all-reduce mode's
 * rounding of the norm.
 */
export function encodeNorm(
  r: RankDevice,
  node: string,
  op: string,
  mode: NormMode,
  d: StorageDType,
  p: NormParams,
  bindings: (GPUBuffer | null)[],
  layout: NormRowsConfig | 'legacy' = NORM_ROWS_DEFAULT,
  normRounding: FusedNormRounding = 'once',
  quantScale?: StorageDType,
): void {
  const k = normKernel(mode, d, p, r.subgroupSize, layout, normRounding, quantScale);
  r.submit(node, op, (_e, pass) => pass(k.code, bindings, NORM_PARAMS.words(p), k.grid));
}

/** The norm kernel (and grid) for these parameters: the word-row kernel where every row is 8-aligned bf16, else the per-row one. */
export function normKernel(
  mode: NormMode,
  d: StorageDType,
  p: Omit<NormParams, 'eps' | 'ranks'>,
  subgroupSize: number,
  layout: NormRowsConfig | 'legacy' = NORM_ROWS_DEFAULT,
  normRounding: FusedNormRounding = 'once',
  /** The static FP8 quant's scale dtype, when the norm's output is quantized in the same kernel. */
  quantScale?: StorageDType,
): { code: string; grid: [number, number] } {
  const vec = normVector(
    d,
    p.cols,
    [p.xOffset, p.resOffset, p.wOffset, p.rowStart * p.cols, p.rankSlotStride],
    [p.xRowStride, p.resRowStride],
  );
  if (d === 'bf16' && vec === 8 && layout !== 'legacy')
    return {
      code: rmsNormRowsWgsl(mode, p.cols, layout, subgroupSize, normRounding, quantScale),
      grid: [normRowsGrid(p.rows, layout), 1],
    };
  const gx = Math.min(p.rows, 65535);
  return {
    code: rmsNormWgsl(mode, d, p.cols, vec, normRounding, quantScale),
    grid: [Math.max(1, gx), Math.max(1, Math.ceil(p.rows / gx))],
  };
}
