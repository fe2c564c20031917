// The fused QK-norm + RoPE's encoder: one dispatch of src/wgsl/qkNormRope.ts per step, its sum of
// squares in the order of the norm kernel the unfused pair's rms_norm step would run (normKernel's
// choice: the bf16 word-row kernel with this device's subgroups, or the per-row kernel).

import type { StepEncoders } from './stepContext.ts';
import { normVector } from '../../wgsl/rmsNorm.ts';
import {
  QK_NORM_ROPE_PARAMS,
  qkNormRopeGrid,
  qkNormRopeLayout,
  qkNormRopeWgsl,
  type QkNormMirror,
} from '../../wgsl/qkNormRope.ts';

export const QK_NORM_ROPE_ENCODERS: StepEncoders<'qk_norm_rope'> = {
  qk_norm_rope: (s, c) => {
    const [tokens, width] = s.qkv.shape as [number, number];
    const D = s.headSize;
    const d = c.out.dtype;
    if (width > 1 && s.qkv.strides[1] !== 1)
      throw new Error(`${s.node}: qk_norm_rope reads qkv with contiguous columns`);
    // The pair's norm reads contiguous head rows [T · heads, D] (offset 0) and the weight's view.
    const vec = normVector(d, D, [s.qWeight.offset, s.kWeight.offset], [D]);
    const mirror: QkNormMirror =
      d === 'bf16' && vec === 8 ? { kind: 'rows', sg: c.r.subgroupSize } : { kind: 'per-row', vec };
    const xRowStride = tokens > 1 ? s.qkv.strides[0]! : width;
    const words = mirror.kind === 'rows' && s.qkv.offset % 8 === 0 && xRowStride % 8 === 0;
    // In place (the lowering found qkv read by nothing after it): q and k heads only, v stays.
    const inPlace = s.qkv.storage === s.out;
    const shape = {
      d,
      weight: s.qWeight.dtype,
      positions: s.positions.dtype,
      cache: s.cache.dtype,
      headSize: D,
      mirror,
      words,
      inPlace,
    };
    const params = QK_NORM_ROPE_PARAMS.words({
      tokens,
      heads: width / D,
      slotHeads: inPlace ? s.qHeads + s.kHeads : width / D,
      qHeads: s.qHeads,
      kHeads: s.kHeads,
      headSize: D,
      rot: s.cache.shape[1]!,
      neox: s.neox ? 1 : 0,
      xOffset: s.qkv.offset,
      xRowStride,
      qwOffset: s.qWeight.offset,
      kwOffset: s.kWeight.offset,
      eps: s.eps,
      positionsOffset: s.positions.offset,
      positionsStride: s.positions.strides[0] ?? 1,
      cacheOffset: s.cache.offset,
      cacheRowStride: s.cache.strides[0]!,
    });
    const grid = qkNormRopeGrid(
      tokens,
      inPlace ? s.qHeads + s.kHeads : width / D,
      qkNormRopeLayout(shape).slots,
    );
    c.r.submit(s.node, s.op, (_e, pass) =>
      pass(
        qkNormRopeWgsl(shape),
        [
          c.buf(s.out),
          inPlace ? null : c.buf(s.qkv),
          c.buf(s.qWeight),
          c.buf(s.kWeight),
          c.buf(s.positions),
          c.buf(s.cache),
        ],
        params,
        grid,
      ),
    );
  },
};
