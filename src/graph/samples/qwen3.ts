// Qwen3 (dense) as vLLM lowers it (qwen3.py): Llama's layer with a per-head RMSNorm of q and k
// before the rotary embedding (head_dim 128, eps 1e-6) — the QK-norm + RoPE fusion's sites, one per
// layer, and Llama's 2L + 1 all-reduce + RMSNorm sites at TP > 1.

import type { FxWriter } from './fxWriter.ts';
import type { ModelDims } from './models.ts';
import { mlp } from './llama.ts';
import { decoderGraph } from './vllmBlocks.ts';

export function qwen3Graph(m: ModelDims, layers: number, tp: number): FxWriter {
  return decoderGraph(m, layers, tp, {
    qkvBias: false,
    modelFile: 'qwen3.py',
    qkNorm: true,
    ffn: (c, h, _layer, sym) => mlp(c, h, sym),
  });
}
