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
//   @binding(5) scale                  with an output quant only: vLLM's output_scale, element 0
//
// With an output quant (vLLM's output_scale) each output is rounded to the output dtype, as the
// unfused attention stores it, then quantized as fp8Quant.ts's plan kernel does it (the same
// recip_rn of the scale, clamp and e4m3 rounding): bitwise the attention → static quant pair.

import type { WgslDType } from './dtype.ts';
import { roundExpr } from './dtype.ts';
import { FP8_DECODE_WGSL, FP8_QUANT_CLAMP_WGSL, FP8_WGSL, RECIP_WGSL } from './fp8Quant.ts';
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

export function attentionWgsl(
  out: WgslDType,
  q: WgslDType,
  k: WgslDType,
  v: WgslDType,
  scale: WgslDType | null = null,
): string {
  const quant =
    scale === null ? '' : `${FP8_WGSL}\n${FP8_DECODE_WGSL}\n${RECIP_WGSL}\n${FP8_QUANT_CLAMP_WGSL}`;
  return pairKernelWgsl({
    params: ATTENTION_PARAMS.wgsl,
    out,
    inputs: [
      ['q', q],
      ['k', k],
      ['v', v],
      ...(scale === null ? [] : ([['scale', scale]] as [string, WgslDType][])),
    ],
    fns: `${quant}
fn qk(t: u32, h: u32, j: u32, kh: u32, D: u32) -> f32 {
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
    value:
      scale === null
        ? 'attention_value(i)'
        : `f8e4m3fn_value(quant(${roundExpr(out, 'attention_value(i)')} * recip_rn(ld_scale(0u))))`,
  });
}
