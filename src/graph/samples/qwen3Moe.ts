// Qwen3-30B-A3B as vLLM lowers it (qwen3_moe.py): attention with per-head q/k RMSNorm, and a MoE
// block of 128 experts, top-8, whose output needs no pad (2048 columns already fit the MoE
// kernel's tiles) — so moe_forward → all_reduce → fused_add_rms_norm has nothing in between and
// every all-reduce fuses with its norm (vLLM's e2e fusion test: 2L+1 sites).

import type { Ref } from '../ir.ts';
import type { FxWriter } from './fxWriter.ts';
import type { ModelDims } from './models.ts';
import type { Ctx } from './vllmBlocks.ts';
import { BF16, T, allReduce, decoderGraph, linear } from './vllmBlocks.ts';

const V = '/opt/vllm/vllm';

function moe(c: Ctx, h: Ref, layer: number): Ref {
  const { w, m } = c;
  // The router (`self.gate`) is a ReplicatedLinear without bias: every rank computes all logits.
  const logits = linear(c, h, m.hidden, m.experts!, false, 'return F.linear(x, layer.weight, bias)');
  w.source(
    `${V}/model_executor/layers/fused_moe/layer.py:1735 in forward, code: fused_output = torch.ops.vllm.moe_forward(hidden_states, router_logits, self.layer_name)`,
  );
  const [out] = w.autoFunctionalized(
    'vllm.moe_forward.default',
    { hidden_states: h, router_logits: logits, layer_name: `model.layers.${layer}.mlp.experts` },
    [{ index: 0, type: BF16(T, m.hidden) }],
  );
  return allReduce(c, out!, m.hidden);
}

export function qwen3MoeGraph(m: ModelDims, layers: number, tp: number): FxWriter {
  return decoderGraph(m, layers, tp, {
    qkvBias: false,
    modelFile: 'qwen3_moe.py',
    qkNorm: true,
    ffn: (c, h, layer) => moe(c, h, layer),
  });
}
