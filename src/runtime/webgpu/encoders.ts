// Encoders: one non-collective plan step, a norm or the MoE, onto one rank's device, with the
// WGSL each dispatches (src/wgsl) and the words of its parameters. The collectives reuse the norm
// encoder; the run loop (webgpuBackend.ts) and the rank workers call encodeStep.

import type { Plan, Step, View, StorageDType, FusedNormRounding } from '../plan.ts';
import { assertNever, kernelCost } from '../../graph/opTable.ts';
import { asRows, broadcastStrides, isCollective, numelOf } from '../plan.ts';
import { RunError } from '../runError.ts';
import type { HostTensor } from '../hostTensor.ts';
import { seedRule, seedStream, expertTensors } from '../weights.ts';
import { inputTensorFor } from '../cpuBackend.ts';
import { bufferBytes } from '../../wgsl/dtype.ts';
import {
  elementwiseMeta,
  elementwiseWgsl,
  f32Bits,
  grid1d,
  MAX_DIMS,
  ELEMENTWISE_WG,
} from '../../wgsl/elementwise.ts';
import { GEMM_PARAMS, gemmWgsl, GEMM_TILE } from '../../wgsl/gemm.ts';
import { rmsNormWgsl, normVector, NORM_PARAMS, type NormMode, type NormParams } from '../../wgsl/rmsNorm.ts';
import {
  rmsNormRowsWgsl,
  normRowsGrid,
  NORM_ROWS_DEFAULT,
  type NormRowsConfig,
} from '../../wgsl/rmsNormRows.ts';
import {
  moeRouteWgsl,
  MOE_SCAN_WGSL,
  MOE_SCATTER_WGSL,
  moeGemmWgsl,
  moeDecodeGemmWgsl,
  moeCombineWgsl,
  moeGemvWgsl,
  moeGemvTokens,
  useMoeGemv,
  moeRoute1Wgsl,
  MOE_ROUTE1_MAX_E,
  MOE_ROUTE1_MAX_PAIRS,
  MOE_GEMV_DEFAULT,
  type MoeGemvConfig,
  routeWords,
  moeTileCapacity,
  useDecodeKernels,
  MOE_TN,
  MOE_TM,
  MOE_DECODE_TM,
  MOE_DECODE_ROWS,
  MOE_MAX_K,
} from '../../wgsl/moe.ts';
import type { CollectiveStep } from '../collectives.ts';
import { RankDevice } from './rankDevice.ts';
import { BYTES } from './tensorPacking.ts';
import { fp8QuantValuesDispatch, fp8QuantValuesWgsl } from '../../wgsl/fp8Quant.ts';

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

export function outputsOf(s: Step): string[] {
  const ids = [s.out];
  if ('residualOut' in s) ids.push(s.residualOut);
  return ids;
}

export function stepBytes(s: Step, plan: Plan): { read: number; written: number } {
  const out = outputsOf(s).reduce((a, id) => {
    const st = plan.storages.get(id)!;
    return a + st.numel * BYTES[st.dtype];
  }, 0);
  const c = kernelCost(s, out, plan.ranks);
  return { read: c.bytesRead, written: c.bytesWritten };
}

const metaOf = (words: number[]) => Uint32Array.from(words.map((w) => w >>> 0));

/** Encode one non-collective step on one rank. */
export function encodeStep(
  s: Step,
  r: RankDevice,
  plan: Plan,
  seed: number,
  inputs?: Map<string, HostTensor>,
): void {
  const buf = (v: View | string) => r.buffer(typeof v === 'string' ? v : v.storage);
  const outSt = plan.storages.get(s.out)!;
  const ew = (
    kind: Parameters<typeof elementwiseWgsl>[0],
    ins: View[],
    extra: number[],
    stridesFor?: (v: View) => number[],
  ) => {
    const meta = elementwiseMeta(
      outSt.shape,
      ins.map((v) => ({ offset: v.offset, strides: stridesFor ? stridesFor(v) : v.strides })),
      extra,
    );
    r.submit(s.node, s.op, (_enc, pass) =>
      pass(
        elementwiseWgsl(
          kind,
          outSt.dtype,
          ins.map((v) => v.dtype),
        ),
        [buf(s.out), ...ins.map(buf)],
        meta,
        grid1d(Math.ceil(outSt.numel / 2), ELEMENTWISE_WG),
      ),
    );
  };
  switch (s.kernel) {
    case 'seed': {
      // A given input was written before the steps ran (executePlan's upload phase).
      if (inputTensorFor(s, plan, inputs)) return;
      const rule = seedRule(s.role, outSt.shape);
      ew(
        'seed',
        [],
        [
          seed,
          seedStream(s.name, s.perRank, r.rank),
          f32Bits(rule.scale),
          f32Bits(rule.offset),
          s.range ?? 0,
        ],
      );
      return;
    }
    case 'copy':
      ew('copy', [s.x], []);
      return;
    case 'add':
      ew('add', [s.a, s.b], [f32Bits(s.alpha)], (v) => broadcastStrides(v, outSt.shape));
      return;
    case 'map': {
      const ins = s.b ? [s.a, s.b] : [s.a];
      ew(s.fn, ins, [f32Bits(s.scalar)], (v) => broadcastStrides(v, outSt.shape));
      return;
    }
    case 'pad': {
      const lead = MAX_DIMS - s.x.shape.length;
      ew(
        'pad',
        [s.x],
        [...new Array(lead).fill(0), ...s.lo, ...new Array(lead).fill(1), ...s.x.shape, f32Bits(s.value)],
      );
      return;
    }
    case 'embedding': {
      const rows = asRows(s.weight)!;
      const meta = elementwiseMeta(
        outSt.shape,
        [
          { offset: rows.offset, strides: [rows.rowStride, 1] },
          { offset: s.indices.offset, strides: [1] },
        ],
        [rows.cols, rows.rows],
      );
      r.submit(s.node, s.op, (_e, pass) =>
        pass(
          elementwiseWgsl('embedding', outSt.dtype, [s.weight.dtype, s.indices.dtype]),
          [buf(s.out), buf(s.weight), buf(s.indices)],
          meta,
          grid1d(Math.ceil(outSt.numel / 2), ELEMENTWISE_WG),
        ),
      );
      return;
    }
    case 'gemm': {
      const [M, K] = s.a.shape;
      const N = s.b.shape[1];
      const bias = s.bias;
      const bs = bias ? broadcastStrides(bias, [M, N]) : [0, 0];
      const meta = GEMM_PARAMS.words({
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
      const biasBuf = bias ? buf(bias) : r.scratch(16, 'no bias');
      r.submit(s.node, s.op, (_e, pass) =>
        pass(
          gemmWgsl(outSt.dtype, bias?.dtype ?? outSt.dtype, N % 2 === 0),
          [buf(s.out), buf(s.a), buf(s.b), biasBuf],
          meta,
          [Math.ceil(N / GEMM_TILE), Math.ceil(M / GEMM_TILE)],
        ),
      );
      return;
    }
    case 'rms_norm':
    case 'fused_add_rms_norm': {
      const x = asRows(s.x)!;
      const res = s.kernel === 'fused_add_rms_norm' ? asRows(s.residual)! : { offset: 0, rowStride: x.cols };
      const mode: NormMode = s.kernel === 'rms_norm' ? 'rms' : 'add';
      encodeNorm(
        r,
        s.node,
        s.op,
        mode,
        outSt.dtype,
        {
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
        },
        [
          buf(s.out),
          mode === 'rms' ? null : buf((s as { residualOut: string }).residualOut),
          buf(s.x),
          mode === 'rms' ? null : buf((s as { residual: View }).residual),
          buf(s.w),
        ],
      );
      return;
    }
    case 'scatter': {
      // The window's dims outermost first, so the kernel can split an output index greedily.
      const dims = s.src.shape
        .map((_, d) => d)
        .filter((d) => s.src.shape[d] > 1)
        .sort((a, b) => s.strides[b] - s.strides[a]);
      if (dims.length > MAX_DIMS)
        throw new RunError('limits', `node ${s.node}: a scatter window of more than ${MAX_DIMS} dims`, {
          node: s.node,
          op: s.op,
        });
      const pad = (xs: number[], fill: number) => [...xs, ...new Array(MAX_DIMS - xs.length).fill(fill)];
      const words = [
        s.at,
        ...pad(
          dims.map((d) => s.src.shape[d]),
          1,
        ),
        ...pad(
          dims.map((d) => s.strides[d]),
          0,
        ),
        ...pad(
          dims.map((d) => s.src.strides[d]),
          0,
        ),
      ];
      const meta = elementwiseMeta(
        outSt.shape,
        [
          { offset: s.base.offset, strides: s.base.strides },
          { offset: s.src.offset, strides: [] },
        ],
        words,
      );
      r.submit(s.node, s.op, (_e, pass) =>
        pass(
          elementwiseWgsl('scatter', outSt.dtype, [s.base.dtype, s.src.dtype]),
          [buf(s.out), buf(s.base), buf(s.src)],
          meta,
          grid1d(Math.ceil(outSt.numel / 2), ELEMENTWISE_WG),
        ),
      );
      return;
    }
    case 'rotary':
      ew('rotary', [s.x, s.positions, s.cache], [s.headSize, s.cache.shape[1], s.neox ? 1 : 0]);
      return;
    case 'attention':
      ew('attention', [s.q, s.k, s.v], [s.k.shape[1], f32Bits(1 / Math.sqrt(s.q.shape[2]))]);
      return;
    case 'moe':
      encodeMoe(s, r, plan, seed);
      return;
    case 'fp8_quant': {
      const n = numelOf(s.x.shape);
      // The quantizer reads x and scale from element 0 of their bindings (the planner makes x contiguous).
      if (s.x.offset !== 0 || s.scale.offset !== 0)
        throw new Error(`${s.node}: fp8_quant reads whole buffers from element 0`);
      r.submit(s.node, s.op, (_enc, pass) =>
        pass(
          fp8QuantValuesWgsl(s.x.dtype, outSt.dtype, s.scale.dtype, s.satfinite ? 'satfinite' : 'clamp'),
          [buf(s.out), buf(s.x), buf(s.scale)],
          metaOf([n]),
          fp8QuantValuesDispatch(n),
        ),
      );
      return;
    }
    case 'all_reduce':
    case 'fused_allreduce_norm':
    case 'reduce_scatter':
    case 'all_gather':
      throw new Error('collectives run across ranks');
    default:
      assertNever(s, 'kernel');
  }
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
): void {
  const k = normKernel(mode, d, p, r.subgroupSize, layout, normRounding);
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
): { code: string; grid: [number, number] } {
  const vec = normVector(
    d,
    p.cols,
    [p.xOffset, p.resOffset, p.wOffset, p.rowStart * p.cols, p.rankSlotStride],
    [p.xRowStride, p.resRowStride],
  );
  if (d === 'bf16' && vec === 8 && layout !== 'legacy')
    return {
      code: rmsNormRowsWgsl(mode, p.cols, layout, subgroupSize, normRounding),
      grid: [normRowsGrid(p.rows, layout), 1],
    };
  const gx = Math.min(p.rows, 65535);
  return {
    code: rmsNormWgsl(mode, d, p.cols, vec, normRounding),
    grid: [Math.max(1, gx), Math.max(1, Math.ceil(p.rows / gx))],
  };
}

/** The six MoE dispatches on one rank; expert weights are seeded on the device first. */
function encodeMoe(s: Extract<Step, { kernel: 'moe' }>, r: RankDevice, plan: Plan, seed: number): void {
  const x = asRows(s.x)!;
  const l = asRows(s.logits)!;
  const H = x.cols,
    E = s.experts,
    K = s.topK,
    Is = s.intermediate / plan.ranks;
  if (K > MOE_MAX_K)
    throw new RunError('limits', `node ${s.node}: top-${K} routing exceeds the kernel's ${MOE_MAX_K}`, {
      node: s.node,
      op: s.op,
    });
  const weights = seedExpertWeights(r, s.node, s.op, {
    layer: s.layer,
    experts: E,
    hidden: H,
    interShard: Is,
    interFull: s.intermediate,
    dtype: s.x.dtype,
    seed,
  });
  encodeMoeDispatch(r, s.node, s.op, {
    T: x.rows,
    H,
    E,
    K,
    Is,
    dtype: s.x.dtype,
    logitsDtype: s.logits.dtype,
    x: r.buffer(s.x.storage),
    xOff: x.offset,
    xRowStride: x.rowStride,
    logits: r.buffer(s.logits.storage),
    lOff: l.offset,
    lRowStride: l.rowStride,
    out: r.buffer(s.out),
    weights,
  });
}

export interface ExpertWeights {
  w13: GPUBuffer;
  b13: GPUBuffer;
  w2: GPUBuffer;
  b2: GPUBuffer;
}

/** One rank's expert weights (I/tp rows each), generated on the device from their streams. */
export function seedExpertWeights(
  r: RankDevice,
  node: string,
  op: string,
  o: {
    layer: string;
    experts: number;
    hidden: number;
    interShard: number;
    interFull: number;
    dtype: StorageDType;
    seed: number;
    keep?: boolean;
  },
): ExpertWeights {
  const wt = expertTensors(o.layer, r.rank, {
    experts: o.experts,
    hidden: o.hidden,
    interShard: o.interShard,
    interFull: o.interFull,
  });
  return Object.fromEntries(
    Object.entries(wt).map(([k, t]) => {
      const n = numelOf(t.shape);
      // Kept weights live until the run ends (a benchmark dispatches many times); else until the step is done.
      const b = o.keep
        ? r.alloc(t.name, bufferBytes(o.dtype, n))
        : r.scratch(bufferBytes(o.dtype, n), t.name);
      // b2 is added on rank 0 only; other ranks bind a zero buffer.
      if (k === 'b2' && r.rank !== 0) return [k, b];
      const meta = elementwiseMeta(
        t.shape,
        [],
        [o.seed, t.stream, f32Bits(t.rule.scale), f32Bits(t.rule.offset), 0],
      );
      r.submit(node, op, (_e, pass) =>
        pass(elementwiseWgsl('seed', o.dtype, []), [b], meta, grid1d(Math.ceil(n / 2), ELEMENTWISE_WG)),
      );
      return [k, b];
    }),
  ) as unknown as ExpertWeights;
}

export interface MoeDispatch {
  T: number;
  H: number;
  E: number;
  K: number;
  Is: number;
  dtype: StorageDType;
  logitsDtype: StorageDType;
  x: GPUBuffer;
  xOff: number;
  xRowStride: number;
  logits: GPUBuffer;
  lOff: number;
  lRowStride: number;
  out: GPUBuffer;
  weights: ExpertWeights;
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
  const meta = metaOf([
    T,
    H,
    E,
    K,
    Is,
    m.xOff,
    m.xRowStride,
    m.lOff,
    m.lRowStride,
    r.rank === 0 ? 1 : 0,
    cap,
    tm,
  ]);
  const vec = (k: number) => d === 'bf16' && k % 8 === 0;
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
      pass(moeGemvWgsl(1, gemv, tm, sg), [route, wts, m.x, m.weights.w13, m.weights.b13, act], meta, [
        cap,
        Math.ceil((2 * Is) / (gemv.groups * gemv.rows1)),
      ]);
      pass(moeGemvWgsl(2, gemv, tm, sg), [route, wts, act, m.weights.w2, m.weights.b2, yk], meta, [
        cap,
        Math.ceil(H / (gemv.groups * gemv.rows2)),
      ]);
    } else if (decode) {
      pass(moeDecodeGemmWgsl(1), [route, wts, m.x, m.weights.w13, m.weights.b13, act], meta, [
        cap,
        Math.ceil((2 * Is) / MOE_DECODE_ROWS),
      ]);
      pass(moeDecodeGemmWgsl(2), [route, wts, act, m.weights.w2, m.weights.b2, yk], meta, [
        cap,
        Math.ceil(H / MOE_DECODE_ROWS),
      ]);
    } else {
      pass(moeGemmWgsl(1, d, vec(H)), [route, wts, m.x, m.weights.w13, m.weights.b13, act], meta, [
        cap,
        Math.ceil((2 * Is) / MOE_TN),
      ]);
      pass(moeGemmWgsl(2, d, vec(Is)), [route, wts, act, m.weights.w2, m.weights.b2, yk], meta, [
        cap,
        Math.ceil(H / MOE_TN),
      ]);
    }
    pass(moeCombineWgsl(d), [yk, m.out], meta, grid1d(Math.ceil((T * H) / 2), 256));
  });
}
