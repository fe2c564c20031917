// The dynamic FP8 quant's encoder: one dispatch of src/wgsl/fp8QuantRows.ts per step.

import type { StepEncoders } from './stepContext.ts';
import { numelOf } from '../plan.ts';
import {
  FP8_QUANT_ROWS_PARAMS,
  fp8QuantRowsGrid,
  fp8QuantRowsThreads,
  fp8QuantRowsWgsl,
} from '../../wgsl/fp8QuantRows.ts';

export const QUANT_ENCODERS: StepEncoders<'fp8_quant_rows'> = {
  fp8_quant_rows: (s, c) => {
    const cols = s.x.shape[s.x.shape.length - 1] ?? 1;
    const rows = numelOf(s.x.shape) / cols;
    // The kernel reads x from element 0 of its binding (the planner makes x contiguous).
    if (s.x.offset !== 0) throw new Error(`${s.node}: fp8_quant_rows reads x from element 0`);
    const words = FP8_QUANT_ROWS_PARAMS.words({ rows, cols, eps: s.eps, max: s.max, minScale: s.minScale });
    c.r.submit(s.node, s.op, (_e, pass) =>
      pass(
        fp8QuantRowsWgsl(s.x.dtype, c.out.dtype, fp8QuantRowsThreads(cols)),
        [c.buf(s.out), c.buf(s.scaleOut), c.buf(s.x)],
        words,
        fp8QuantRowsGrid(rows),
      ),
    );
  },
};
