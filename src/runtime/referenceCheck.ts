// Checking a backend's outputs against the CPU reference. The reference accumulates in f64, the
// kernels in f32, so a value that lands near a rounding boundary of the storage dtype may round
// the other way: the allowance is one ulp of the storage dtype at the reference's magnitude,
// plus the f32 accumulation error bound n·2⁻²⁴·Σ|terms| for reductions over n terms.

import { hostValues, type HostTensor } from './hostTensor.ts';

export interface ReferenceDiff {
  worst: number;
  at: number;
  got: number;
  want: number;
  allowed: number;
  count: number;
}

// Machine epsilon of each dtype (spacing of [1, 2)): bf16 keeps 7 explicit mantissa bits, f16 10, f32 23.
const UNIT: Record<string, number> = { bf16: 2 ** -7, f16: 2 ** -10, f32: 2 ** -23, i32: 0 };

/** ulp of x in a dtype with `unit` relative spacing (the spacing of x's binade). */
function ulpOf(x: number, unit: number): number {
  if (x === 0 || unit === 0) return unit === 0 ? 0 : unit * 2 ** -126;
  return unit * 2 ** Math.floor(Math.log2(Math.abs(x)));
}

/**
 * The largest |got − want| over the allowance, or null when every element is within it.
 * `scale` bounds Σ|terms| of each element's reduction; `terms` is n (0 for no reduction);
 * `ulps` how many storage ulps a chain of roundings may move the result.
 */
export function diffFromReference(
  got: HostTensor,
  want: HostTensor,
  o: { terms: number; scale: number; ulps: number },
): ReferenceDiff | null {
  if (got.shape.join() !== want.shape.join())
    return { worst: Infinity, at: -1, got: NaN, want: NaN, allowed: 0, count: got.data.length };
  const g = hostValues(got),
    w = hostValues(want);
  const unit = UNIT[want.dtype] ?? 0;
  let worst: ReferenceDiff | null = null;
  let count = 0;
  for (let i = 0; i < w.length; i++) {
    const allowed = o.ulps * ulpOf(w[i], unit) + o.terms * 2 ** -24 * o.scale * (1 + o.ulps);
    const d = Math.abs(g[i] - w[i]);
    if (!(d <= allowed)) {
      count++;
      if (!worst || d - allowed > worst.worst)
        worst = { worst: d - allowed, at: i, got: g[i], want: w[i], allowed, count: 0 };
    }
  }
  if (worst) worst.count = count;
  return worst;
}
