// Each row of a strided [rows, cols] view reduced to one value (KERNELS.reduce_rows): the mean as
// an f32 sum in index order and one correctly rounded division (div_rn), or the max (NaN wins).
// One thread per pair of rows, so a packed output is written a whole word at a time.
//
// Bind layout:
//   @binding(0) prm: ReduceRowsParams  (REDUCE_ROWS_PARAMS below)
//   @binding(1) out                    one value per row, contiguous
//   @binding(2) x                      the rows: x[xOffset + r·xRowStride + c]

import type { WgslDType } from './dtype.ts';
import { pairKernelWgsl } from './elementwise.ts';
import { paramStruct } from './params.ts';
import { MAP_HELPERS } from '../graph/opTable.ts';

export const REDUCE_ROWS_PARAMS = paramStruct('ReduceRowsParams', {
  n: 'u32',
  cols: 'u32',
  xOffset: 'u32',
  xRowStride: 'u32',
  /** 1: the mean; 0: the max. */
  mean: 'u32',
});

export function reduceRowsWgsl(out: WgslDType, x: WgslDType): string {
  return pairKernelWgsl({
    params: REDUCE_ROWS_PARAMS.wgsl,
    out,
    inputs: [['x', x]],
    fns: `${MAP_HELPERS.div_rn.wgsl}
fn row_value(r: u32) -> f32 {
  let base = prm.xOffset + r * prm.xRowStride;
  if (prm.mean == 1u) {
    var acc = 0.0;
    for (var c = 0u; c < prm.cols; c++) { acc = acc + ld_x(base + c); }
    return div_rn(acc, f32(prm.cols));
  }
  var m = ld_x(base);
  for (var c = 1u; c < prm.cols; c++) {
    let v = ld_x(base + c);
    if (m == m && (v > m || v != v)) { m = v; }
  }
  return m;
}`,
    value: 'row_value(i)',
  });
}
