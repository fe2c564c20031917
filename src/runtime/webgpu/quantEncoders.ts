// The dynamic FP8 quant's encoder: one dispatch of src/wgsl/fp8QuantRows.ts per step.

import type { StepContext, StepEncoders } from './stepContext.ts';
import { numelOf, type Step, type StorageDType } from '../plan.ts';
import {
  FP8_QUANT_ROWS_PARAMS,
  fp8QuantRowsGrid,
  fp8QuantRowsThreads,
  fp8QuantRowsWgsl,
} from '../../wgsl/fp8QuantRows.ts';

/** One fp8_quant_rows dispatch (also the norm + dynamic quant's second, where it runs as its pair: encoders.ts) over `rows` × `cols` contiguous values of buffer `x`. */
export function encodeQuantRows(
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

export const QUANT_ENCODERS: StepEncoders<'fp8_quant_rows'> = {
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
};
