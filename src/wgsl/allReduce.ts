// The all-reduce's reduction: the ranks' copies of a chunk, gathered back to back on this rank,
// summed in rank order in f32 and rounded once. Every algorithm (one-shot, two-shot, ring) ends in
// this kernel over the same gathered values, so every algorithm gives the same bits.
//
// Bind layout:
//   @binding(0) prm: array<u32>  [n (chunk elements), ranks, outOffset (elements, even), slotStride (elements, a multiple of 8)]
//   @binding(1) out               the reduced tensor (the chunk lands at outOffset)
//   @binding(2) gathered          [ranks, slotStride], rank 0 first

import { DTYPE_WGSL, inputBinding, outputBinding, roundExpr, type WgslDType } from './dtype.ts';

export const ALLREDUCE_WG = 256;

export function allReduceWgsl(d: WgslDType): string {
  return `${DTYPE_WGSL}
@group(0) @binding(0) var<storage, read> prm: array<u32>;
${outputBinding('out', 1, d)}
${inputBinding('gathered', 2, d)}
fn value(i: u32) -> f32 {
  let n = prm[0];
  var s = 0.0;
  for (var q = 0u; q < prm[1]; q++) { s += ld_gathered(q * prm[3] + i); }
  return ${roundExpr(d, 's')};
}
@compute @workgroup_size(${ALLREDUCE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = 2u * (gid.x + gid.y * nwg.x * ${ALLREDUCE_WG}u);
  let n = prm[0];
  let o = prm[2];
  if (i + 1u < n) { st2_out(o + i, value(i), value(i + 1u)); } else if (i < n) { st_out(o + i, value(i)); }
}
`;
}

/** Copy kernel for the bandwidth ceiling: one vec4 of words per thread. Bindings from 1, like every kernel here (0 is the meta words). */
export const COPY_CEILING_WGSL = /* wgsl */ `
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < arrayLength(&dst)) { dst[i] = src[i]; }
}
`;
