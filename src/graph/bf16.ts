// bfloat16 and float16 on the host: rounded to nearest-even, as the kernels do. The graph layer holds
// them because the op table's CPU bodies round intermediates (silu_mul_bf16); the runtime re-exports.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bits of the bf16 nearest to x (ties to even); NaN stays a quiet NaN. */
export function bf16Bits(x: number): number {
  f32[0] = x;
  const w = u32[0];
  if ((w & 0x7fffffff) > 0x7f800000) return ((w >>> 16) | 0x40) & 0xffff;
  return ((w + 0x7fff + ((w >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16ToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** x rounded to the nearest bf16, as a number. */
export function roundBf16(x: number): number {
  return bf16ToF32(bf16Bits(x));
}

/** Bits of the f16 nearest to x (ties to even), for hosts without Float16Array. */
export function f16Bits(x: number): number {
  f32[0] = x;
  const w = u32[0];
  const sign = (w >>> 16) & 0x8000;
  const e = (w >>> 23) & 0xff;
  let m = w & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  let ex = e - 127 + 15;
  if (ex >= 0x1f) return sign | 0x7c00;
  if (ex <= 0) {
    if (ex < -10) return sign;
    m |= 0x800000;
    const shift = 14 - ex;
    const half = 1 << (shift - 1);
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = m >>> 13;
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      ex++;
      if (ex >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (ex << 10) | r;
}

export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function roundF16(x: number): number {
  return f16ToF32(f16Bits(x));
}

/** Distance in units in the last place between two bf16 bit patterns (sign-magnitude aware). */
export function bf16UlpDistance(a: number, b: number): number {
  const key = (x: number) => (x & 0x8000 ? -(x & 0x7fff) : x & 0x7fff);
  return Math.abs(key(a) - key(b));
}
