// The WGSL twin of the runtime's counter-based generator (src/runtime/random.ts `rand` / `uniform`),
// for kernels that generate inputs on the device (the differential check compares seeded inputs bitwise).

export const RANDOM_WGSL = /* wgsl */ `
fn lowbias32(v: u32) -> u32 {
  var x = v;
  x ^= x >> 16u; x *= 0x7feb352du; x ^= x >> 15u; x *= 0x846ca68bu; x ^= x >> 16u;
  return x;
}
fn rand3(seed: u32, stream: u32, i: u32) -> u32 { return lowbias32(lowbias32(lowbias32(seed) ^ stream) ^ i); }
fn uniform3(seed: u32, stream: u32, i: u32) -> f32 { return f32(rand3(seed, stream, i) >> 8u) * 5.9604644775390625e-8 * 2.0 - 1.0; }
`;
