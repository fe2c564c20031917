// vllm.unified_attention_with_output as the reference attention of one prefill sequence with no
// KV cache: causal, GQA (query head h reads kv head h / (heads / kvHeads)), scores scaled by
// `scale` (1/√D), f32 softmax, rounded once. One thread per output element, written in pairs
// (elementwise.ts pairKernelWgsl); each recomputes its row's scores: a checking kernel for small
// sizes, not a fast one.
//
// Bind layout:
//   @binding(0) prm: AttentionParams  (ATTENTION_PARAMS below)
//   @binding(1) out                    contiguous [T, heads, headDim]
//   @binding(2) q                      [T, heads, headDim], strided
//   @binding(3) k, @binding(4) v       [T, kvHeads, headDim], strided

import type { WgslDType } from './dtype.ts';
import { pairKernelWgsl } from './elementwise.ts';
import { paramStruct } from './params.ts';

export const ATTENTION_PARAMS = paramStruct('AttentionParams', {
  n: 'u32',
  heads: 'u32',
  headDim: 'u32',
  kvHeads: 'u32',
  scale: 'f32',
  qOffset: 'u32',
  qTokenStride: 'u32',
  qHeadStride: 'u32',
  qDimStride: 'u32',
  kOffset: 'u32',
  kTokenStride: 'u32',
  kHeadStride: 'u32',
  kDimStride: 'u32',
  vOffset: 'u32',
  vTokenStride: 'u32',
  vHeadStride: 'u32',
  vDimStride: 'u32',
});

export function attentionWgsl(out: WgslDType, q: WgslDType, k: WgslDType, v: WgslDType): string {
  return pairKernelWgsl({
    params: ATTENTION_PARAMS.wgsl,
    out,
    inputs: [
      ['q', q],
      ['k', k],
      ['v', v],
    ],
    fns: `fn qk(t: u32, h: u32, j: u32, kh: u32, D: u32) -> f32 {
  var dot = 0.0;
  for (var e = 0u; e < D; e++) {
    dot += ld_q(prm.qOffset + t * prm.qTokenStride + h * prm.qHeadStride + e * prm.qDimStride)
      * ld_k(prm.kOffset + j * prm.kTokenStride + kh * prm.kHeadStride + e * prm.kDimStride);
  }
  return dot * prm.scale;
}
fn attention_value(i: u32) -> f32 {
  let D = prm.headDim; let H = prm.heads;
  let d = i % D; let h = (i / D) % H; let t = i / (D * H);
  let kh = h / (H / prm.kvHeads);
  var m = -3.4e38;
  for (var j = 0u; j <= t; j++) { m = max(m, qk(t, h, j, kh, D)); }
  var sum = 0.0; var acc = 0.0;
  for (var j = 0u; j <= t; j++) {
    let p = exp(qk(t, h, j, kh, D) - m);
    sum += p;
    acc += p * ld_v(prm.vOffset + j * prm.vTokenStride + kh * prm.vHeadStride + d * prm.vDimStride);
  }
  return acc / sum;
}`,
    value: 'attention_value(i)',
  });
}
