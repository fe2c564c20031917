// FP8 quantization: vLLM's static per-tensor FP8 quant (values held in the run dtype: every
// e4m3fn value is exact in bf16). NVFP4 has no kernel.

import { noKernel, tensorValue as T, type LoweredOp, type Lowering } from './lowering.ts';

export const QUANT_LOWERINGS = {
  '_C.static_scaled_fp8_quant.default': {
    lower: (b, c) => {
      const x = b.contiguous(c.tensor(1, 'input'), c.node);
      const scale = c.tensor(2, 'scale', { role: 'norm-weight', shape: [1] });
      const out = b.newStorage(`${c.node.name}.result`, x.dtype, x.shape);
      b.push(c.node, { kernel: 'fp8_quant', x, scale, satfinite: false, out: out.storage });
      return { t: 'tuple', items: [{ t: 'none' }, T(out)] };
    },
  },
  '_C.scaled_fp4_quant.default': noKernel(
    'NVFP4 packing (two e2m1 per byte, swizzled block scales) has no kernel',
  ),
} satisfies Partial<Record<LoweredOp, Lowering>>;
