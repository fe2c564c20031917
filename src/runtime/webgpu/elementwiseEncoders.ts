// The steps that run as one value per output element (src/wgsl/elementwise.ts, rotary.ts,
// attention.ts, fp8Quant.ts): each writes its kernel's parameter struct by name from the step's
// views and dispatches one thread per pair of output elements.

import type { Step, StorageDType, View } from '../plan.ts';
import { asRows, broadcastStrides, numelOf } from '../plan.ts';
import { RunError } from '../runError.ts';
import { seedRule, seedStream } from '../weights.ts';
import { inputTensorFor } from '../cpuBackend.ts';
import {
  ADD_PARAMS,
  COPY_PARAMS,
  EMBEDDING_PARAMS,
  ELEMENTWISE_WG,
  MAP_PARAMS,
  MAX_DIMS,
  PAD_PARAMS,
  SCATTER_PARAMS,
  SEED_PARAMS,
  elementwiseWgsl,
  grid1d,
  padDims,
} from '../../wgsl/elementwise.ts';
import { ROTARY_PARAMS, rotaryWgsl } from '../../wgsl/rotary.ts';
import { REDUCE_ROWS_PARAMS, reduceRowsWgsl } from '../../wgsl/reduceRows.ts';
import { ATTENTION_PARAMS, attentionWgsl } from '../../wgsl/attention.ts';
import { KV_CACHE_PARAMS, kvCacheWgsl } from '../../wgsl/kvCache.ts';
import { FP8_QUANT_VALUES_PARAMS, fp8QuantValuesDispatch, fp8QuantValuesWgsl } from '../../wgsl/fp8Quant.ts';
import { NVFP4_PARAMS, nvfp4Dispatch, nvfp4PackWgsl, nvfp4ScaleWgsl } from '../../wgsl/fp4Quant.ts';
import { NVFP4_GEMM_PARAMS, nvfp4GemmDispatch, nvfp4GemmWgsl } from '../../wgsl/fp4Gemm.ts';
import { NVFP4_BLOCK } from '../../graph/fp4.ts';
import type { ParamsOf } from '../../wgsl/params.ts';
import type { RankDevice } from './rankDevice.ts';
import type { StepContext, StepEncoders } from './stepContext.ts';

/** One pair-kernel dispatch over the step's output: `code` with its parameter words, the output then `ins` bound. */
function dispatchPairs(s: Step, c: StepContext, words: Uint32Array, code: () => string, ins: View[]): void {
  c.r.submit(s.node, s.op, (_e, pass) =>
    pass(
      code(),
      [c.buf(s.out), ...ins.map(c.buf)],
      words,
      grid1d(Math.ceil(c.out.numel / 2), ELEMENTWISE_WG),
    ),
  );
}

/** The fields every kernel that walks the output's dims starts with. */
const outShape = (c: StepContext) => ({ n: numelOf(c.out.shape), outShape: padDims(c.out.shape, 1) });

/** Seeded values into `out` (n elements): inputs, weights, the benchmark's operands. */
export function encodeSeed(
  r: RankDevice,
  node: string,
  op: string,
  out: GPUBuffer,
  dtype: StorageDType,
  n: number,
  p: Omit<ParamsOf<typeof SEED_PARAMS>, 'n'>,
): void {
  const words = SEED_PARAMS.words({ n, ...p });
  r.submit(node, op, (_e, pass) =>
    pass(elementwiseWgsl('seed', dtype, []), [out], words, grid1d(Math.ceil(n / 2), ELEMENTWISE_WG)),
  );
}

export const ELEMENTWISE_ENCODERS: StepEncoders<
  | 'seed'
  | 'copy'
  | 'add'
  | 'map'
  | 'pad'
  | 'embedding'
  | 'scatter'
  | 'rotary'
  | 'attention'
  | 'kv_cache_write'
  | 'fp8_quant'
  | 'nvfp4_scale'
  | 'nvfp4_quant'
  | 'nvfp4_gemm'
  | 'reduce_rows'
> = {
  reduce_rows: (s, c) => {
    const x = asRows(s.x)!;
    const words = REDUCE_ROWS_PARAMS.words({
      n: x.rows,
      cols: x.cols,
      xOffset: x.offset,
      xRowStride: x.rowStride,
      mean: s.mean ? 1 : 0,
    });
    dispatchPairs(s, c, words, () => reduceRowsWgsl(c.out.dtype, s.x.dtype), [s.x]);
  },
  seed: (s, c) => {
    // A given input was written before the steps ran (executePlan's upload phase).
    if (inputTensorFor(s, c.plan, c.inputs)) return;
    const rule = seedRule(s.role, c.out.shape);
    encodeSeed(c.r, s.node, s.op, c.buf(s.out), c.out.dtype, numelOf(c.out.shape), {
      seed: c.seed,
      stream: seedStream(s.name, s.perRank, c.r.rank),
      scale: rule.scale,
      offset: rule.offset,
      range: s.range ?? 0,
    });
  },
  copy: (s, c) => {
    const words = COPY_PARAMS.words({
      ...outShape(c),
      xOffset: s.x.offset,
      xStrides: padDims(s.x.strides, 0),
    });
    dispatchPairs(s, c, words, () => elementwiseWgsl('copy', c.out.dtype, [s.x.dtype]), [s.x]);
  },
  add: (s, c) => {
    const words = ADD_PARAMS.words({
      ...outShape(c),
      aOffset: s.a.offset,
      aStrides: padDims(broadcastStrides(s.a, c.out.shape), 0),
      bOffset: s.b.offset,
      bStrides: padDims(broadcastStrides(s.b, c.out.shape), 0),
      alpha: s.alpha,
    });
    dispatchPairs(s, c, words, () => elementwiseWgsl('add', c.out.dtype, [s.a.dtype, s.b.dtype]), [s.a, s.b]);
  },
  map: (s, c) => {
    const ins = s.b ? [s.a, s.b] : [s.a];
    const words = MAP_PARAMS.words({
      ...outShape(c),
      aOffset: s.a.offset,
      aStrides: padDims(broadcastStrides(s.a, c.out.shape), 0),
      // A one-operand function reads no b.
      bOffset: s.b?.offset ?? 0,
      bStrides: padDims(s.b ? broadcastStrides(s.b, c.out.shape) : [], 0),
      scalar: s.scalar,
    });
    dispatchPairs(
      s,
      c,
      words,
      () =>
        elementwiseWgsl(
          s.fn,
          c.out.dtype,
          ins.map((v) => v.dtype),
        ),
      ins,
    );
  },
  pad: (s, c) => {
    const words = PAD_PARAMS.words({
      ...outShape(c),
      xOffset: s.x.offset,
      xStrides: padDims(s.x.strides, 0),
      lo: padDims(s.lo, 0),
      inShape: padDims(s.x.shape, 1),
      value: s.value,
    });
    dispatchPairs(s, c, words, () => elementwiseWgsl('pad', c.out.dtype, [s.x.dtype]), [s.x]);
  },
  embedding: (s, c) => {
    const rows = asRows(s.weight)!;
    const words = EMBEDDING_PARAMS.words({
      n: numelOf(c.out.shape),
      hidden: rows.cols,
      vocab: rows.rows,
      weightOffset: rows.offset,
      weightRowStride: rows.rowStride,
      indicesOffset: s.indices.offset,
    });
    dispatchPairs(
      s,
      c,
      words,
      () => elementwiseWgsl('embedding', c.out.dtype, [s.weight.dtype, s.indices.dtype]),
      [s.weight, s.indices],
    );
  },
  scatter: (s, c) => {
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
    const window = (xs: number[], fill: number) => [
      ...xs,
      ...new Array<number>(MAX_DIMS - xs.length).fill(fill),
    ];
    const words = SCATTER_PARAMS.words({
      ...outShape(c),
      baseOffset: s.base.offset,
      baseStrides: padDims(s.base.strides, 0),
      srcOffset: s.src.offset,
      at: s.at,
      windowSizes: window(
        dims.map((d) => s.src.shape[d]),
        1,
      ),
      windowStrides: window(
        dims.map((d) => s.strides[d]),
        0,
      ),
      srcStrides: window(
        dims.map((d) => s.src.strides[d]),
        0,
      ),
    });
    dispatchPairs(s, c, words, () => elementwiseWgsl('scatter', c.out.dtype, [s.base.dtype, s.src.dtype]), [
      s.base,
      s.src,
    ]);
  },
  rotary: (s, c) => {
    const [xRowStride, xColStride] = padDims(s.x.strides, 0).slice(-2);
    const words = ROTARY_PARAMS.words({
      n: numelOf(c.out.shape),
      width: padDims(c.out.shape, 1)[MAX_DIMS - 1],
      headSize: s.headSize,
      rot: s.cache.shape[1],
      neox: s.neox ? 1 : 0,
      xOffset: s.x.offset,
      xRowStride,
      xColStride,
      positionsOffset: s.positions.offset,
      positionsStride: padDims(s.positions.strides, 0)[MAX_DIMS - 1],
      cacheOffset: s.cache.offset,
      cacheRowStride: padDims(s.cache.strides, 0)[MAX_DIMS - 2],
    });
    dispatchPairs(s, c, words, () => rotaryWgsl(c.out.dtype, s.x.dtype, s.positions.dtype, s.cache.dtype), [
      s.x,
      s.positions,
      s.cache,
    ]);
  },
  kv_cache_write: (s, c) => {
    const words = KV_CACHE_PARAMS.words({
      n: numelOf(c.out.shape),
      width: numelOf(s.x.shape) / s.x.shape[0]!,
      tokens: s.slots.shape[0]!,
      cacheOffset: s.cache.offset,
      xOffset: s.x.offset,
      slotsOffset: s.slots.offset,
    });
    dispatchPairs(s, c, words, () => kvCacheWgsl(c.out.dtype, s.cache.dtype, s.x.dtype, s.slots.dtype), [
      s.cache,
      s.x,
      s.slots,
    ]);
  },
  attention: (s, c) => {
    const strides = (v: View) => padDims(v.strides, 0).slice(-3);
    const [qTokenStride, qHeadStride, qDimStride] = strides(s.q);
    const [kTokenStride, kHeadStride, kDimStride] = strides(s.k);
    const [vTokenStride, vHeadStride, vDimStride] = strides(s.v);
    const [heads, headDim] = padDims(c.out.shape, 1).slice(-2);
    const words = ATTENTION_PARAMS.words({
      n: numelOf(c.out.shape),
      heads,
      headDim,
      kvHeads: s.k.shape[1],
      scale: 1 / Math.sqrt(s.q.shape[2]),
      qOffset: s.q.offset,
      qTokenStride,
      qHeadStride,
      qDimStride,
      kOffset: s.k.offset,
      kTokenStride,
      kHeadStride,
      kDimStride,
      vOffset: s.v.offset,
      vTokenStride,
      vHeadStride,
      vDimStride,
    });
    const scale = s.scale ?? null;
    dispatchPairs(
      s,
      c,
      words,
      () => attentionWgsl(c.out.dtype, s.q.dtype, s.k.dtype, s.v.dtype, scale && scale.dtype),
      scale ? [s.q, s.k, s.v, scale] : [s.q, s.k, s.v],
    );
  },
  fp8_quant: (s, c) => {
    const n = numelOf(s.x.shape);
    // The quantizer reads x and scale from element 0 of their bindings (the planner makes x contiguous).
    if (s.x.offset !== 0 || s.scale.offset !== 0)
      throw new Error(`${s.node}: fp8_quant reads whole buffers from element 0`);
    c.r.submit(s.node, s.op, (_enc, pass) =>
      pass(
        fp8QuantValuesWgsl(s.x.dtype, c.out.dtype, s.scale.dtype, s.satfinite ? 'satfinite' : 'clamp'),
        [c.buf(s.out), c.buf(s.x), c.buf(s.scale)],
        FP8_QUANT_VALUES_PARAMS.words({ n }),
        fp8QuantValuesDispatch(n),
      ),
    );
  },
  nvfp4_scale: (s, c) => {
    const n = numelOf(s.x.shape) / NVFP4_BLOCK;
    if (s.x.offset !== 0 || s.globalScale.offset !== 0)
      throw new Error(`${s.node}: nvfp4_scale reads whole buffers from element 0`);
    c.r.submit(s.node, s.op, (_enc, pass) =>
      pass(
        nvfp4ScaleWgsl(s.x.dtype, c.out.dtype, s.globalScale.dtype),
        [c.buf(s.out), c.buf(s.x), c.buf(s.globalScale)],
        NVFP4_PARAMS.words({ n }),
        nvfp4Dispatch(n),
      ),
    );
  },
  nvfp4_quant: (s, c) => {
    const n = numelOf(s.x.shape) / 2;
    if (s.x.offset !== 0 || s.globalScale.offset !== 0 || s.scale.offset !== 0)
      throw new Error(`${s.node}: nvfp4_quant reads whole buffers from element 0`);
    c.r.submit(s.node, s.op, (_enc, pass) =>
      pass(
        nvfp4PackWgsl(s.x.dtype, c.out.dtype, s.globalScale.dtype, s.scale.dtype),
        [c.buf(s.out), c.buf(s.x), c.buf(s.globalScale), c.buf(s.scale)],
        NVFP4_PARAMS.words({ n }),
        nvfp4Dispatch(n),
      ),
    );
  },
  nvfp4_gemm: (s, c) => {
    const [M, halfK] = s.a.shape as [number, number],
      N = s.b.shape[0]!;
    if ([s.a, s.aScale, s.b, s.bScale, s.alpha].some((v) => v.offset !== 0))
      throw new Error(`${s.node}: nvfp4_gemm reads whole buffers from element 0`);
    c.r.submit(s.node, s.op, (_enc, pass) =>
      pass(
        nvfp4GemmWgsl({
          out: c.out.dtype,
          a: s.a.dtype,
          sa: s.aScale.dtype,
          b: s.b.dtype,
          sb: s.bScale.dtype,
          alpha: s.alpha.dtype,
        }),
        [c.buf(s.out), c.buf(s.a), c.buf(s.aScale), c.buf(s.b), c.buf(s.bScale), c.buf(s.alpha)],
        NVFP4_GEMM_PARAMS.words({ M, N, halfK }),
        nvfp4GemmDispatch(M * N),
      ),
    );
  },
};
