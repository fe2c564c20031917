// Functions a map body may call, in WGSL and C++, and the TypeScript twin of the FP8 cast.

/**
 * Functions a map body may call, in WGSL and in C++ (the agent's header defines the C++ ones for
 * every body; a WGSL shader gets those its function names in `helpers`).
 * - div_rn: a / b correctly rounded to nearest even, as IEEE f32 division on the CPU and in CUDA
 *   (WGSL's own division may be 2.5 ulps off): a restoring division of the significands, 25
 *   quotient bits and a sticky bit, for normal operands with a normal quotient; anything else
 *   (zero, infinity, NaN, a subnormal) falls back to the hardware's division.
 * - f8e4m3fn: the e4m3fn value torch's conversion gives (c10 fp8e4m3fn_from_fp32_value): nearest
 *   even, and no saturation: a magnitude past 464 (the midpoint above 448), an infinity or a NaN
 *   is NaN. Bit steps on the f32, so every backend gives the same value.
 */
export const MAP_HELPERS = {
  div_rn: {
    wgsl: `fn div_rn(a: f32, b: f32) -> f32 {
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  let ea = (ua >> 23u) & 0xffu;
  let eb = (ub >> 23u) & 0xffu;
  if (ea == 0u || ea == 255u || eb == 0u || eb == 255u) { return a / b; }
  let ma = (ua & 0x7fffffu) | 0x800000u;
  let mb = (ub & 0x7fffffu) | 0x800000u;
  var e = i32(ea) - i32(eb) + 127;
  var rem = ma;
  if (rem < mb) { rem <<= 1u; e -= 1; }
  var q = 0u;
  for (var i = 0u; i < 25u; i++) {
    q <<= 1u;
    if (rem >= mb) { q |= 1u; rem -= mb; }
    rem <<= 1u;
  }
  var mant = q >> 1u;
  if ((q & 1u) == 1u && (rem != 0u || (mant & 1u) == 1u)) { mant += 1u; }
  if (mant == 0x1000000u) { mant = 0x800000u; e += 1; }
  if (e <= 0 || e >= 255) { return a / b; }
  return bitcast<f32>(((ua ^ ub) & 0x80000000u) | (u32(e) << 23u) | (mant & 0x7fffffu));
}`,
    cpp: 'FL_HOST_DEVICE inline float div_rn(float a, float b) { return a / b; }',
  },
  f8e4m3fn: {
    wgsl: `fn f8e4m3fn(x: f32) -> f32 {
  let u = bitcast<u32>(x);
  let a = u & 0x7fffffffu;
  var v: f32;
  if (a >= 0x3c800000u) {
    let r = (a + 0x7ffffu + ((a >> 20u) & 1u)) >> 20u;
    if (r >= 0x43fu) { return bitcast<f32>(0x7fc00000u | (u & 1u)); }
    v = bitcast<f32>(r << 20u);
  } else {
    v = round(bitcast<f32>(a) * 512.0) * 0.001953125;
  }
  return select(v, -v, (u >> 31u) == 1u);
}`,
    cpp: `FL_HOST_DEVICE inline float f8e4m3fn(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  const uint32_t a = u & 0x7fffffffu;
  float v;
  if (a >= 0x3c800000u) {
    const uint32_t r = (a + 0x7ffffu + ((a >> 20) & 1u)) >> 20;
    if (r >= 0x43fu) return NAN;
    const uint32_t bits = r << 20;
    memcpy(&v, &bits, 4);
  } else {
    float ax;
    memcpy(&ax, &a, 4);
    v = rintf(ax * 512.f) * 0.001953125f;
  }
  return (u >> 31) ? -v : v;
}`,
  },
  // x rounded to bf16 and widened back (nearest even), the bit steps of src/graph/bf16.ts: the value
  // a CUDA kernel's `(T)` cast of an f32 intermediate holds.
  rn_bf16: {
    wgsl: `fn rn_bf16(x: f32) -> f32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return bitcast<f32>((u | 0x400000u) & 0xffff0000u); }
  return bitcast<f32>((u + 0x7fffu + ((u >> 16u) & 1u)) & 0xffff0000u);
}`,
    cpp: `FL_HOST_DEVICE inline float rn_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) u = (u | 0x400000u) & 0xffff0000u;
  else u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  float r;
  memcpy(&r, &u, 4);
  return r;
}`,
  },
} as const satisfies Record<string, { wgsl: string; cpp: string }>;
export type MapHelper = keyof typeof MAP_HELPERS;

const bits32 = new Float32Array(1);
const word32 = new Uint32Array(bits32.buffer);
/** torch's float → float8_e4m3fn → float (MAP_HELPERS.f8e4m3fn, the same bit steps): the value, or NaN. */
export function torchF8e4m3fn(x: number): number {
  bits32[0] = x;
  const u = word32[0]!;
  const a = u & 0x7fffffff;
  let v: number;
  if (a >= 0x3c800000) {
    const r = (a + 0x7ffff + ((a >>> 20) & 1)) >>> 20;
    if (r >= 0x43f) return NaN;
    word32[0] = r << 20;
    v = bits32[0];
  } else {
    word32[0] = a;
    const t = bits32[0] * 512;
    const k = Math.round(t);
    v = (k - t === 0.5 && k % 2 !== 0 ? k - 1 : k) * 2 ** -9;
  }
  return u >>> 31 ? -v : v;
}
