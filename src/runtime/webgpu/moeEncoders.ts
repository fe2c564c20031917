// The MoE step on one rank: its expert weights seeded on the device, then route → scan → scatter
// (one dispatch at decode sizes) → gemm1 (+SwiGLU) → gemm2 (×w_k) → combine (src/wgsl/moe.ts), all
// reading one MoeParams struct. The benchmark drives encodeMoeDispatch directly.

import type { StorageDType } from '../plan.ts';
import { asRows, numelOf } from '../plan.ts';
import { tpRankOf } from '../rankMesh.ts';
import { RunError } from '../runError.ts';
import { expertTensors } from '../weights.ts';
import { bufferBytes } from '../../wgsl/dtype.ts';
import { grid1d } from '../../wgsl/elementwise.ts';
import {
  moeRouteWgsl,
  MOE_SCAN_WGSL,
  MOE_SCATTER_WGSL,
  moeGemmWgsl,
  moeDecodeGemmWgsl,
  moeCombineWgsl,
  moeGemvWgsl,
  moeGemvTokens,
  moeFoldsRoute,
  useMoeGemv,
  moeRoute1Wgsl,
  MOE_PARAMS,
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
import type { RankDevice } from './rankDevice.ts';
import type { StepEncoders } from './stepContext.ts';
import { encodeSeed } from './elementwiseEncoders.ts';

/** The MoE's dispatches on one rank; its expert weights are seeded on the device first. */
export const MOE_ENCODERS: StepEncoders<'moe'> = {
  moe: (s, { r, plan, seed }) => {
    const x = asRows(s.x)!;
    const l = asRows(s.logits)!;
    const H = x.cols,
      E = s.experts,
      K = s.topK,
      Is = s.intermediate / plan.mesh.tp,
      tpRank = tpRankOf(plan.mesh, r.rank);
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
      tpRank,
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
      tpRank,
    });
  },
};

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
    /** The rank's place in its TP group, whose shard it holds (default: its rank). */
    tpRank?: number;
  },
): ExpertWeights {
  const tpRank = o.tpRank ?? r.rank;
  const wt = expertTensors(o.layer, tpRank, {
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
      if (k === 'b2' && tpRank !== 0) return [k, b];
      encodeSeed(r, node, op, b, o.dtype, n, {
        seed: o.seed,
        stream: t.stream,
        scale: t.rule.scale,
        offset: t.rule.offset,
        range: 0,
      });
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
  /** The rank's place in its TP group: b2 belongs to TP rank 0's partial sum (default: its rank). */
  tpRank?: number;
  /** Decode kernels: the GEMV layout (default MOE_GEMV_DEFAULT) or 'tiled', the 8-token × 16-row tile kernels. */
  decodeKernel?: MoeGemvConfig | 'tiled';
  /** Fresh (zero-filled) intermediates on every call even where workspaces would do: the bench's "before". */
  freshScratch?: boolean;
}

/** route → scan → scatter (one dispatch at decode sizes) → gemm1 (+SwiGLU) → gemm2 (×w_k) → combine, in one submission. */
export function encodeMoeDispatch(r: RankDevice, node: string, op: string, m: MoeDispatch): void {
  const { T, H, E, K, Is, dtype: d } = m;
  // Decode: few tokens per expert, W streamed once per 8 tokens; else 32-token tiles.
  const gemvCfg = m.decodeKernel ?? MOE_GEMV_DEFAULT;
  const gemv = gemvCfg !== 'tiled' && useMoeGemv(T, K, E, d, H, Is, m.xOff, m.xRowStride) ? gemvCfg : null;
  const decode = !gemv && useDecodeKernels(T, K, E, d, H, Is) && m.xOff % 2 === 0 && m.xRowStride % 2 === 0;
  const tm = gemv ? moeGemvTokens(T, K, E, gemv) : decode ? MOE_DECODE_TM : MOE_TM;
  const fold = gemv !== null && moeFoldsRoute(T, E, K, gemv, tm);
  const cap = moeTileCapacity(T, E, K, tm);
  const route1 = gemv?.route1 && E <= MOE_ROUTE1_MAX_E && T * K <= MOE_ROUTE1_MAX_PAIRS;
  // On the GEMV path every word of the four is written before it is read (the routing pass or the
  // folded stage 1: all of route and wts; stage 1: every pair's act row; stage 2: every pair's
  // y_k row), so they can be workspaces; the three-kernel routing counts by atomics from zero.
  const workspaces = gemv !== null && (fold || route1) && !m.freshScratch;
  const buf = (bytes: number, label: string) =>
    workspaces ? r.workspace(bytes, label) : r.scratch(bytes, label);
  const route = buf(routeWords(T, E, K) * 4, 'moe route');
  const wts = buf(T * K * 4, 'moe weights');
  const act = buf(T * K * Is * 4, 'moe act');
  const yk = buf(T * K * H * 4, 'moe y_k');
  const meta = MOE_PARAMS.words({
    T,
    H,
    E,
    K,
    Is,
    xOffset: m.xOff,
    xRowStride: m.xRowStride,
    logitsOffset: m.lOff,
    logitsRowStride: m.lRowStride,
    hasB2: (m.tpRank ?? r.rank) === 0 ? 1 : 0,
    tileRows: tm,
  });
  const vec = (k: number) => d === 'bf16' && k % 8 === 0;
  r.submit(node, op, (_e, pass) => {
    if (fold) {
      // Routing happens inside the first GEMV's workgroups (moeGemvWgsl's foldLogits).
    } else if (route1) pass(moeRoute1Wgsl(m.logitsDtype, E, K), [route, wts, m.logits], meta, [1, 1]);
    else {
      pass(moeRouteWgsl(m.logitsDtype), [route, wts, m.logits], meta, [Math.ceil(T / 64), 1]);
      pass(MOE_SCAN_WGSL, [route], meta, [1, 1]);
      pass(MOE_SCATTER_WGSL, [route], meta, [Math.ceil((T * K) / 64), 1]);
    }
    if (gemv) {
      const sg = r.subgroupSize;
      const stage1 = [route, wts, m.x, m.weights.w13, m.weights.b13, act];
      if (fold) stage1.push(m.logits);
      pass(moeGemvWgsl(1, gemv, tm, sg, E, fold ? m.logitsDtype : null), stage1, meta, [
        cap,
        Math.ceil((2 * Is) / (gemv.groups * gemv.rows1)),
      ]);
      pass(moeGemvWgsl(2, gemv, tm, sg, E), [route, wts, act, m.weights.w2, m.weights.b2, yk], meta, [
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
