// The CPU reference's steps for the RMS norms: rms_norm and fused_add_rms_norm (with the static
// FP8 quant vLLM fuses into them) and their dynamic per-group FP8 quant forms.

import type { Step, StorageDType, View } from './plan.ts';
import { asRows } from './plan.ts';
import type { CpuStepContext, CpuSteps } from './cpuStepContext.ts';
import { cpuResidualNorm, cpuRmsNorm, rounded } from './cpuKernels.ts';
import { cpuFp8QuantRows, storeStaticQuant } from './cpuQuantSteps.ts';

/** fused_add_rms_norm's values over the rows of x and the residual: the normed rows and z = x + residual. */
function addNorm(s: { x: View; residual: View; w: View; eps: number }, c: CpuStepContext, d: StorageDType) {
  const r = asRows(s.x)!;
  return cpuResidualNorm(c.read(s.x), c.read(s.residual), c.read(s.w), r.rows, r.cols, s.eps, d, false);
}

/**
 * KERNELS.rms_norm_dynamic_quant / fused_add_rms_norm_dynamic_quant: the norm's rounded values (as
 * rms_norm / fused_add_rms_norm store them), then fp8_quant_rows' steps over each group.
 */
function normDynamicQuantStep(
  s: Extract<Step, { kernel: 'rms_norm_dynamic_quant' | 'fused_add_rms_norm_dynamic_quant' }>,
  c: CpuStepContext,
): void {
  const r = asRows(s.x)!;
  const d = c.out.dtype;
  let y: Float64Array;
  if (s.kernel === 'rms_norm_dynamic_quant')
    y = Float64Array.from(rounded(d, cpuRmsNorm(c.read(s.x), c.read(s.w), r.rows, r.cols, s.eps, d)));
  else {
    const { out, res } = addNorm(s, c, d);
    y = Float64Array.from(rounded(d, out));
    c.mem.set(s.residualOut, rounded(d, res));
  }
  const { out, scale } = cpuFp8QuantRows(y, s.group, { eps: 0, max: s.max, minScale: s.minScale });
  c.store(s.out, out);
  // Transposed: [groups, rows] where the kernel computes [rows, groups].
  const groups = r.cols / s.group;
  const stored = s.scaleTransposed
    ? Float64Array.from(scale, (_, i) => scale[(i % r.rows) * groups + Math.floor(i / r.rows)]!)
    : scale;
  c.store(s.scaleOut, stored);
}

export const NORM_STEPS: CpuSteps<
  'rms_norm' | 'fused_add_rms_norm' | 'rms_norm_dynamic_quant' | 'fused_add_rms_norm_dynamic_quant'
> = {
  rms_norm: (s, c) => {
    const r = asRows(s.x)!;
    const d = c.out.dtype;
    storeStaticQuant(
      c,
      s.out,
      rounded(d, cpuRmsNorm(c.read(s.x), c.read(s.w), r.rows, r.cols, s.eps, d)),
      s.scale,
    );
  },
  fused_add_rms_norm: (s, c) => {
    const d = c.out.dtype;
    const { out, res } = addNorm(s, c, d);
    // With a scale, the static FP8 quant of the rounded normed values (KERNELS.fused_add_rms_norm).
    storeStaticQuant(c, s.out, rounded(d, out), s.scale);
    c.mem.set(s.residualOut, rounded(d, res));
  },
  rms_norm_dynamic_quant: normDynamicQuantStep,
  fused_add_rms_norm_dynamic_quant: normDynamicQuantStep,
};
