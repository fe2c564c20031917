// The dynamic FP8 quant's encoders: fp8_quant_rows (one dispatch of src/wgsl/fp8QuantRows.ts), and
// the norm + dynamic quant kernels (one dispatch of the bf16 word-row norm with the quant in its
// store, rmsNormRows.ts; rows that kernel does not take run its pair: the norm kernel into a scratch
// buffer, then fp8_quant_rows over it, the same roundings in the same order).

import type { StepContext, StepEncoders } from './stepContext.ts';
import { asRows, numelOf, type Step, type StorageDType } from '../plan.ts';
import {
  FP8_QUANT_ROWS_PARAMS,
  fp8QuantRowsGrid,
  fp8QuantRowsThreads,
  fp8QuantRowsWgsl,
} from '../../wgsl/fp8QuantRows.ts';
import { NORM_PARAMS, normVector, type NormParams } from '../../wgsl/rmsNorm.ts';
import {
  NORM_ROWS_DEFAULT,
  normRowsGrid,
  normRowsQuantFits,
  rmsNormRowsWgsl,
} from '../../wgsl/rmsNormRows.ts';
import { BYTES } from './tensorPacking.ts';
import { normKernel } from './encoders.ts';

/** One fp8_quant_rows dispatch over `rows` × `cols` contiguous values of buffer `x`. */
function encodeQuantRows(
  c: StepContext,
  s: Step,
  x: { buf: GPUBuffer; dtype: StorageDType },
  rows: number,
  cols: number,
  rule: { eps: number; max: number; minScale: number; scaleGroups: number },
  out: GPUBuffer,
  scale: GPUBuffer,
): void {
  const words = FP8_QUANT_ROWS_PARAMS.words({ rows, cols, ...rule });
  c.r.submit(s.node, s.op, (_e, pass) =>
    pass(
      fp8QuantRowsWgsl(x.dtype, c.out.dtype, fp8QuantRowsThreads(cols)),
      [out, scale, x.buf],
      words,
      fp8QuantRowsGrid(rows),
    ),
  );
}

type NormQuantStep = Extract<Step, { kernel: 'rms_norm_dynamic_quant' | 'fused_add_rms_norm_dynamic_quant' }>;

function encodeNormDynamicQuant(s: NormQuantStep, c: StepContext): void {
  const x = asRows(s.x)!;
  const fused = s.kernel === 'fused_add_rms_norm_dynamic_quant';
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
  const d = c.out.dtype;
  const bindings = (out: GPUBuffer, scale: GPUBuffer | null) => [
    out,
    fused ? c.buf(s.residualOut) : null,
    c.buf(s.x),
    fused ? c.buf(s.residual) : null,
    c.buf(s.w),
    scale,
  ];
  const mode = fused ? 'add' : 'rms';
  const vec = normVector(d, p.cols, [p.xOffset, p.resOffset, p.wOffset], [p.xRowStride, p.resRowStride]);
  const layout = NORM_ROWS_DEFAULT;
  if (d === 'bf16' && vec === 8 && normRowsQuantFits(p.cols, s.group, layout)) {
    const quant = { group: s.group, max: s.max, minScale: s.minScale, transposed: s.scaleTransposed };
    const code = rmsNormRowsWgsl(mode, p.cols, layout, c.r.subgroupSize, 'once', quant);
    c.r.submit(s.node, s.op, (_e, pass) =>
      pass(code, bindings(c.buf(s.out), c.buf(s.scaleOut)), NORM_PARAMS.words(p), [
        normRowsGrid(p.rows, layout),
        1,
      ]),
    );
    return;
  }
  // The pair: the norm into scratch, then its quant (the scales through scratch where transposed).
  const n = numelOf(s.x.shape);
  const normed = c.r.scratch(n * BYTES[d], `${s.node}.normed`);
  const k = normKernel(mode, d, p, c.r.subgroupSize, layout);
  c.r.submit(s.node, s.op, (_e, pass) => pass(k.code, bindings(normed, null), NORM_PARAMS.words(p), k.grid));
  const rule = {
    eps: 0,
    max: s.max,
    minScale: s.minScale,
    scaleGroups: s.scaleTransposed ? x.cols / s.group : 1,
  };
  encodeQuantRows(
    c,
    s,
    { buf: normed, dtype: d },
    n / s.group,
    s.group,
    rule,
    c.buf(s.out),
    c.buf(s.scaleOut),
  );
}

export const QUANT_ENCODERS: StepEncoders<
  'fp8_quant_rows' | 'rms_norm_dynamic_quant' | 'fused_add_rms_norm_dynamic_quant'
> = {
  fp8_quant_rows: (s, c) => {
    const cols = s.x.shape[s.x.shape.length - 1] ?? 1;
    const rows = numelOf(s.x.shape) / cols;
    // The kernel reads x from element 0 of its binding (the planner makes x contiguous).
    if (s.x.offset !== 0) throw new Error(`${s.node}: fp8_quant_rows reads x from element 0`);
    const rule = { eps: s.eps, max: s.max, minScale: s.minScale, scaleGroups: 1 };
    encodeQuantRows(
      c,
      s,
      { buf: c.buf(s.x), dtype: s.x.dtype },
      rows,
      cols,
      rule,
      c.buf(s.out),
      c.buf(s.scaleOut),
    );
  },
  rms_norm_dynamic_quant: encodeNormDynamicQuant,
  fused_add_rms_norm_dynamic_quant: encodeNormDynamicQuant,
};
