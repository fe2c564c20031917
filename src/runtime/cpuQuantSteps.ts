// The CPU reference's steps for the quant kernels: FP8 (static, per-tensor and per row group),
// NVFP4 (quant, block scales, the GEMM over packed operands) and silu_and_mul with the quant
// vLLM fuses into it.

import { f8e4m3fnValue, inverseScale, quantizeFp8, type Fp8NanRule } from '../graph/fp8.ts';
import { NVFP4_BLOCK, nvfp4Dequant, nvfp4Gemm, scaledFp4Quant, swizzledScaleOffset } from '../graph/fp4.ts';
import { MAP_FNS, SILU_MUL_BY_DTYPE, siluMulHalves } from '../graph/opTable.ts';
import type { Step, View } from './plan.ts';
import type { CpuStepContext, CpuSteps } from './cpuStepContext.ts';
import { cpuReduceRows, type HostArray } from './cpuKernels.ts';
import { roundTo } from './weights.ts';

/** static_scaled_fp8_quant of `x` by `scale`: each value's e4m3 value (exact in every run dtype). */
export function fp8Values(x: ArrayLike<number>, scale: number, rule: Fp8NanRule): Float64Array {
  const inv = inverseScale(scale);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f8e4m3fnValue(quantizeFp8(x[i]!, inv, rule));
  return out;
}

/**
 * Stores a step's rounded values `y` in `id`; with a scale (a norm or attention with its static
 * quant fused in), their static FP8 quant instead.
 */
export function storeStaticQuant(
  c: CpuStepContext,
  id: string,
  y: HostArray,
  scale: View | null | undefined,
): void {
  if (scale) c.store(id, fp8Values(y, c.read(scale)[0]!, 'clamp'));
  else c.mem.set(id, y);
}

/**
 * KERNELS.fp8_quant_rows: each row's max|x| (reduce_rows' max, NaN wins), its scale and the values,
 * through the MAP_FNS bodies the unfused steps run, in the order they run them.
 */
export function cpuFp8QuantRows(
  x: Float64Array,
  cols: number,
  k: { eps: number; max: number; minScale: number },
): { out: Float64Array; scale: Float64Array } {
  const { abs, maxs, mins, divs, div, to_f8e4m3fn: fp8 } = MAP_FNS;
  const rows = x.length / cols;
  const out = new Float64Array(x.length);
  const scale = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * cols, (r + 1) * cols);
    const amax = cpuReduceRows(
      row.map((v) => abs.cpu(v, 0, 0)),
      cols,
      false,
    )[0]!;
    const s = maxs.cpu(divs.cpu(maxs.cpu(amax, 0, k.eps), 0, k.max), 0, k.minScale);
    scale[r] = s;
    for (let j = 0; j < cols; j++) {
      const q = mins.cpu(maxs.cpu(div.cpu(row[j]!, s, 0), 0, -k.max), 0, k.max);
      out[r * cols + j] = fp8.cpu(q, 0, 0);
    }
  }
  return { out, scale };
}

/**
 * KERNELS.silu_and_mul: silu(gate) · up through the map bodies the unfused step runs (f16: silu
 * rounded to f16, then the product), each product rounded to the run dtype, then with a scale the
 * static quant of it.
 */
function cpuSiluAndMul(
  x: View,
  read: (v: View) => Float64Array,
  scale: View | null | undefined,
): Float64Array {
  const { gate, up } = siluMulHalves(x);
  const [g, u] = [read(gate), read(up)];
  const { silu, mul } = MAP_FNS;
  const dtype = x.dtype;
  const product = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++)
    product[i] = roundTo(
      dtype,
      dtype === 'bf16' || dtype === 'f32'
        ? MAP_FNS[SILU_MUL_BY_DTYPE[dtype]].cpu(g[i]!, u[i]!, 0)
        : mul.cpu(roundTo(dtype, silu.cpu(g[i]!, 0, 0)), u[i]!, 0),
    );
  return scale ? fp8Values(product, read(scale)[0]!, 'clamp') : product;
}

/**
 * KERNELS.silu_and_mul_nvfp4: scaled_fp4_quant of silu_and_mul's products; the block scales row-major,
 * or at their swizzled offsets in `scaleNumel` elements (zeros between).
 */
function cpuSiluAndMulNvfp4(
  s: Extract<Step, { kernel: 'silu_and_mul_nvfp4' }>,
  read: (v: View) => Float64Array,
  scaleNumel: number,
): { packed: Float64Array; scales: Float64Array } {
  const q = scaledFp4Quant(cpuSiluAndMul(s.x, read, null), read(s.globalScale)[0]!);
  if (!s.swizzled) return q;
  const cols = s.x.shape[s.x.shape.length - 1]! / 2 / NVFP4_BLOCK;
  const scales = new Float64Array(scaleNumel);
  q.scales.forEach((v, i) => (scales[swizzledScaleOffset(Math.floor(i / cols), i % cols, cols)] = v));
  return { packed: q.packed, scales };
}

/** scaled_fp4_quant of `x`: its packed values (nvfp4_quant) or its block scales (nvfp4_scale). */
function nvfp4QuantStep(
  s: Extract<Step, { kernel: 'nvfp4_scale' | 'nvfp4_quant' }>,
  c: CpuStepContext,
): void {
  const q = scaledFp4Quant(c.read(s.x), c.read(s.globalScale)[0]!);
  c.store(s.out, s.kernel === 'nvfp4_scale' ? q.scales : q.packed);
}

export const QUANT_STEPS: CpuSteps<
  | 'fp8_quant'
  | 'fp8_quant_rows'
  | 'silu_and_mul'
  | 'silu_and_mul_nvfp4'
  | 'nvfp4_scale'
  | 'nvfp4_quant'
  | 'nvfp4_gemm'
> = {
  fp8_quant: (s, c) =>
    c.store(s.out, fp8Values(c.read(s.x), c.read(s.scale)[0]!, s.satfinite ? 'satfinite' : 'clamp')),
  fp8_quant_rows: (s, c) => {
    const { out, scale } = cpuFp8QuantRows(c.read(s.x), s.x.shape[s.x.shape.length - 1] ?? 1, s);
    c.store(s.out, out);
    c.store(s.scaleOut, scale);
  },
  silu_and_mul: (s, c) => c.store(s.out, cpuSiluAndMul(s.x, c.read, s.scale)),
  silu_and_mul_nvfp4: (s, c) => {
    const { packed, scales } = cpuSiluAndMulNvfp4(s, c.read, c.plan.storages.get(s.scaleOut)!.numel);
    c.store(s.out, packed);
    c.store(s.scaleOut, scales);
  },
  nvfp4_scale: nvfp4QuantStep,
  nvfp4_quant: nvfp4QuantStep,
  nvfp4_gemm: (s, c) => {
    const A = nvfp4Dequant(c.read(s.a), c.read(s.aScale)),
      B = nvfp4Dequant(c.read(s.b), c.read(s.bScale));
    c.store(s.out, nvfp4Gemm(A, B, 2 * s.a.shape[1]!, c.read(s.alpha)[0]!));
  },
};
