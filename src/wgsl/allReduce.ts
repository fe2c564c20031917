// The all-reduce's reduction: the ranks' copies of a chunk, gathered back to back on this rank,
// summed in rank order in f32 and rounded once. Every algorithm (one-shot, two-shot, ring) ends in
// this kernel over the same gathered values, so every algorithm gives the same bits.
//
// Bind layout:
//   @binding(0) prm: AllReduceParams  (ALLREDUCE_PARAMS below)
//   @binding(1) out               the reduced tensor (the chunk lands at outOffset)
//   @binding(2) gathered          [ranks, slotStride], rank 0 first

import { DTYPE_WGSL, inputBinding, outputBinding, roundExpr, type WgslDType } from './dtype.ts';
import { paramStruct } from './params.ts';

export const ALLREDUCE_WG = 256;

export const ALLREDUCE_PARAMS = paramStruct('AllReduceParams', {
  /** Elements of the chunk. */
  n: 'u32',
  ranks: 'u32',
  /** Where the chunk lands in the output (elements, even). */
  outOffset: 'u32',
  /** Elements between ranks' copies in the gathered buffer (a multiple of 8). */
  slotStride: 'u32',
});

export function allReduceWgsl(d: WgslDType): string {
  return `${DTYPE_WGSL}
${ALLREDUCE_PARAMS.wgsl}
${outputBinding('out', 1, d)}
${inputBinding('gathered', 2, d)}
fn value(i: u32) -> f32 {
  var s = 0.0;
  for (var q = 0u; q < prm.ranks; q++) { s += ld_gathered(q * prm.slotStride + i); }
  return ${roundExpr(d, 's')};
}
@compute @workgroup_size(${ALLREDUCE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = 2u * (gid.x + gid.y * nwg.x * ${ALLREDUCE_WG}u);
  let n = prm.n;
  let o = prm.outOffset;
  if (i + 1u < n) { st2_out(o + i, value(i), value(i + 1u)); } else if (i < n) { st_out(o + i, value(i)); }
}
`;
}

/** Copy kernel for the bandwidth ceiling: one vec4 of words per thread. Bindings from 1, like every kernel here (0 is the parameters). */
export const COPY_CEILING_WGSL = /* wgsl */ `
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < arrayLength(&dst)) { dst[i] = src[i]; }
}
`;
