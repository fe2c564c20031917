// vLLM's rotary_embedding (`_C.rotary_embedding`) on one of query / key, one thread per output
// element, written in pairs (elementwise.ts pairKernelWgsl). Per head, the first `rot` dims rotate
// by the position's cache row [cos × rot/2, sin × rot/2] (neox: dim i pairs with i + rot/2; else 2i
// with 2i + 1); dims past rot stay. In the storage dtype, as vLLM's scalar_t kernel:
// x' = r(r(x·cos) − r(y·sin)), y' = r(r(y·cos) + r(x·sin)).
//
// Bind layout:
//   @binding(0) prm: RotaryParams  (ROTARY_PARAMS below)
//   @binding(1) out                 the rotated x, contiguous [T, width]
//   @binding(2) x                   [T, width], width = heads · headSize, rows and columns strided
//   @binding(3) positions           [T], strided
//   @binding(4) cache               cos_sin_cache [P, rot], rows strided

import type { WgslDType } from './dtype.ts';
import { roundExpr } from './dtype.ts';
import { pairKernelWgsl } from './elementwise.ts';
import { paramStruct } from './params.ts';

export const ROTARY_PARAMS = paramStruct('RotaryParams', {
  n: 'u32',
  width: 'u32',
  headSize: 'u32',
  rot: 'u32',
  neox: 'u32',
  xOffset: 'u32',
  xRowStride: 'u32',
  xColStride: 'u32',
  positionsOffset: 'u32',
  positionsStride: 'u32',
  cacheOffset: 'u32',
  cacheRowStride: 'u32',
});

export function rotaryWgsl(out: WgslDType, x: WgslDType, positions: WgslDType, cache: WgslDType): string {
  return pairKernelWgsl({
    params: ROTARY_PARAMS.wgsl,
    out,
    inputs: [
      ['x', x],
      ['positions', positions],
      ['cache', cache],
    ],
    fns: `fn rnd(v: f32) -> f32 { return ${roundExpr(out, 'v')}; }
fn rotary_value(i: u32) -> f32 {
  let W = prm.width;
  let t = i / W; let c = i % W;
  let hs = prm.headSize; let rot = prm.rot; let neox = prm.neox == 1u;
  let j = c % hs; let head = c - j;
  let row = prm.xOffset + t * prm.xRowStride;
  let xj = ld_x(row + c * prm.xColStride);
  if (j >= rot) { return xj; }
  let half = rot / 2u;
  var pair: u32; var k: u32; var first: bool;
  if (neox) { first = j < half; k = select(j - half, j, first); pair = select(j - half, j + half, first); }
  else { first = j % 2u == 0u; k = j / 2u; pair = select(j - 1u, j + 1u, first); }
  let xp = ld_x(row + (head + pair) * prm.xColStride);
  let pos = u32(max(ld_positions(prm.positionsOffset + t * prm.positionsStride), 0.0));
  let crow = prm.cacheOffset + pos * prm.cacheRowStride;
  let cs = ld_cache(crow + k); let sn = ld_cache(crow + half + k);
  // As vLLM's kernel in the storage dtype: each product rounded, then the sum.
  if (first) { return rnd(rnd(xj * cs) - rnd(xp * sn)); }
  return rnd(rnd(xj * cs) + rnd(xp * sn));
}`,
    value: 'rotary_value(i)',
  });
}
