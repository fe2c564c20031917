// silu_and_mul's encoder (with the static FP8 quant or not): one dispatch of src/wgsl/siluMul.ts per
// step, the packed layout where the rows allow it.

import type { StepEncoders } from './stepContext.ts';
import { asRows } from '../plan.ts';
import { SILU_MUL_PARAMS, siluMulGrid, siluMulPacked, siluMulWgsl } from '../../wgsl/siluMul.ts';

export const SILU_MUL_ENCODERS: StepEncoders<'silu_and_mul'> = {
  silu_and_mul: (s, c) => {
    const x = asRows(s.x);
    // The lowering makes x rows of unit column stride; the kernel reads the scale from element 0.
    if (!x) throw new Error(`${s.node}: silu_and_mul reads rows of unit column stride`);
    if (s.scale && s.scale.offset !== 0)
      throw new Error(`${s.node}: silu_and_mul's quant reads its scale from element 0`);
    const layout = { rows: x.rows, cols: x.cols / 2, xOffset: x.offset, xRowStride: x.rowStride };
    const packed = siluMulPacked(s.x.dtype, layout);
    const scale = s.scale ?? null;
    c.r.submit(s.node, s.op, (_e, pass) =>
      pass(
        siluMulWgsl(s.x.dtype, scale && scale.dtype, packed),
        [c.buf(s.out), c.buf(s.x), ...(scale ? [c.buf(scale)] : [])],
        SILU_MUL_PARAMS.words({
          n: layout.rows * layout.cols,
          cols: layout.cols,
          xOffset: x.offset,
          xRowStride: x.rowStride,
        }),
        siluMulGrid(layout, packed),
      ),
    );
  },
};
