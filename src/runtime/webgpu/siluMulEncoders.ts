// silu_and_mul's encoders (with the static FP8 quant or not, and with the NVFP4 quant): one dispatch
// of src/wgsl/siluMul.ts per step, the packed layout where the rows allow it.

import type { StepEncoders } from './stepContext.ts';
import { asRows, type Step, type View } from '../plan.ts';
import {
  SILU_MUL_NVFP4_PARAMS,
  SILU_MUL_PARAMS,
  siluMulGrid,
  siluMulNvfp4Grid,
  siluMulNvfp4Wgsl,
  siluMulPacked,
  siluMulWgsl,
} from '../../wgsl/siluMul.ts';
import { NVFP4_BLOCK } from '../../graph/fp4.ts';

/** x's rows (the lowering makes their columns unit-stride); the kernels read a scale from element 0. */
function rowsOf(s: Extract<Step, { kernel: 'silu_and_mul' | 'silu_and_mul_nvfp4' }>, scale: View | null) {
  const x = asRows(s.x);
  if (!x) throw new Error(`${s.node}: ${s.kernel} reads rows of unit column stride`);
  if (scale && scale.offset !== 0) throw new Error(`${s.node}: ${s.kernel} reads its scale from element 0`);
  return { rows: x.rows, cols: x.cols / 2, xOffset: x.offset, xRowStride: x.rowStride };
}

export const SILU_MUL_ENCODERS: StepEncoders<'silu_and_mul' | 'silu_and_mul_nvfp4'> = {
  silu_and_mul: (s, c) => {
    const layout = rowsOf(s, s.scale ?? null);
    const packed = siluMulPacked(s.x.dtype, layout);
    const scale = s.scale ?? null;
    c.r.submit(s.node, s.op, (_e, pass) =>
      pass(
        siluMulWgsl(s.x.dtype, scale && scale.dtype, packed),
        [c.buf(s.out), c.buf(s.x), ...(scale ? [c.buf(scale)] : [])],
        SILU_MUL_PARAMS.words({
          n: layout.rows * layout.cols,
          cols: layout.cols,
          xOffset: layout.xOffset,
          xRowStride: layout.xRowStride,
        }),
        siluMulGrid(layout, packed),
      ),
    );
  },
  silu_and_mul_nvfp4: (s, c) => {
    const layout = rowsOf(s, s.globalScale);
    const packed = siluMulPacked(s.x.dtype, layout);
    c.r.submit(s.node, s.op, (_e, pass) =>
      pass(
        siluMulNvfp4Wgsl(s.x.dtype, s.globalScale.dtype, s.swizzled, packed),
        [c.buf(s.out), c.buf(s.scaleOut), c.buf(s.x), c.buf(s.globalScale)],
        SILU_MUL_NVFP4_PARAMS.words({
          n: (layout.rows * layout.cols) / NVFP4_BLOCK,
          cols: layout.cols,
          xOffset: layout.xOffset,
          xRowStride: layout.xRowStride,
          scaleCols: layout.cols / NVFP4_BLOCK,
        }),
        siluMulNvfp4Grid(layout),
      ),
    );
  },
};
