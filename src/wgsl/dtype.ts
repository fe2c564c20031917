// How each storage dtype looks in WGSL. bf16 and f16 are stored two per u32 (element i in the
// low half when i is even); values are widened to f32 for arithmetic and rounded back to nearest
// even. Outputs of packed dtypes are `array<atomic<u32>>` so a thread may write one half of a word
// (atomicOr into a zeroed buffer) where a row or tile edge splits a pair.

export type WgslDType = 'bf16' | 'f16' | 'f32' | 'i32';

export const PACKED = (d: WgslDType) => d === 'bf16' || d === 'f16';

/** Shared helpers: bf16 rounding (ties to even) and widening. */
export const DTYPE_WGSL = /* wgsl */ `
fn bf16_bits(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return ((u >> 16u) | 0x40u) & 0xffffu; }
  return ((u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u) & 0xffffu;
}
fn bf16_lo(w: u32) -> f32 { return bitcast<f32>(w << 16u); }
fn bf16_hi(w: u32) -> f32 { return bitcast<f32>(w & 0xffff0000u); }
fn round_bf16(x: f32) -> f32 { return bitcast<f32>(bf16_bits(x) << 16u); }
fn f16_bits(x: f32) -> u32 { return pack2x16float(vec2<f32>(x, 0.0)) & 0xffffu; }
fn round_f16(x: f32) -> f32 { return unpack2x16float(f16_bits(x)).x; }
`;

/** WGSL that rounds an f32 expression to the dtype's precision. */
export function roundExpr(d: WgslDType, e: string): string {
  return d === 'bf16'
    ? `round_bf16(${e})`
    : d === 'f16'
      ? `round_f16(${e})`
      : d === 'i32'
        ? `f32(i32(${e}))`
        : e;
}

/** Declaration of an input binding and its element loader `ld_NAME(i) -> f32`. */
export function inputBinding(name: string, binding: number, d: WgslDType): string {
  switch (d) {
    case 'bf16':
      return `@group(0) @binding(${binding}) var<storage, read> ${name}: array<u32>;
fn ld_${name}(i: u32) -> f32 { let w = ${name}[i >> 1u]; return select(bf16_lo(w), bf16_hi(w), (i & 1u) == 1u); }`;
    case 'f16':
      return `@group(0) @binding(${binding}) var<storage, read> ${name}: array<u32>;
fn ld_${name}(i: u32) -> f32 { let v = unpack2x16float(${name}[i >> 1u]); return select(v.x, v.y, (i & 1u) == 1u); }`;
    case 'f32':
      return `@group(0) @binding(${binding}) var<storage, read> ${name}: array<f32>;
fn ld_${name}(i: u32) -> f32 { return ${name}[i]; }`;
    case 'i32':
      return `@group(0) @binding(${binding}) var<storage, read> ${name}: array<i32>;
fn ld_${name}(i: u32) -> f32 { return f32(${name}[i]); }`;
  }
}

/**
 * Declaration of an output binding with `st_NAME(i, v)` (one element; the buffer must start zeroed
 * for packed dtypes) and `st2_NAME(i, a, b)` (elements i, i+1 with i even: one whole word).
 */
export function outputBinding(name: string, binding: number, d: WgslDType): string {
  switch (d) {
    case 'bf16':
      return `@group(0) @binding(${binding}) var<storage, read_write> ${name}: array<atomic<u32>>;
fn st_${name}(i: u32, v: f32) { atomicOr(&${name}[i >> 1u], bf16_bits(v) << ((i & 1u) * 16u)); }
fn st2_${name}(i: u32, a: f32, b: f32) { atomicStore(&${name}[i >> 1u], bf16_bits(a) | (bf16_bits(b) << 16u)); }`;
    case 'f16':
      return `@group(0) @binding(${binding}) var<storage, read_write> ${name}: array<atomic<u32>>;
fn st_${name}(i: u32, v: f32) { atomicOr(&${name}[i >> 1u], f16_bits(v) << ((i & 1u) * 16u)); }
fn st2_${name}(i: u32, a: f32, b: f32) { atomicStore(&${name}[i >> 1u], pack2x16float(vec2<f32>(a, b))); }`;
    case 'f32':
      return `@group(0) @binding(${binding}) var<storage, read_write> ${name}: array<f32>;
fn st_${name}(i: u32, v: f32) { ${name}[i] = v; }
fn st2_${name}(i: u32, a: f32, b: f32) { ${name}[i] = a; ${name}[i + 1u] = b; }`;
    case 'i32':
      return `@group(0) @binding(${binding}) var<storage, read_write> ${name}: array<i32>;
fn st_${name}(i: u32, v: f32) { ${name}[i] = i32(v); }
fn st2_${name}(i: u32, a: f32, b: f32) { ${name}[i] = i32(a); ${name}[i + 1u] = i32(b); }`;
  }
}

/** Bytes of a buffer holding n elements (rounded up to a whole u32 word, at least 4). */
export function bufferBytes(d: WgslDType, n: number): number {
  const bytes = PACKED(d) ? Math.ceil(n / 2) * 4 : n * 4;
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}
