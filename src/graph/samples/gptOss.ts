// GPT-OSS as vLLM (before PR #28841) lowers it: per layer an attention block and a MoE block
// whose output is padded 2880 → 3072 for the MXFP4 MoE kernel, reduced across ranks, then sliced
// back — the slice that stops the all-reduce + RMSNorm fusion.

import { float } from '../ir.ts';
import type { Ref } from '../ir.ts';
import type { FxWriter } from './fxWriter.ts';
import type { ModelDims } from './models.ts';
import type { Ctx } from './vllmBlocks.ts';
import { BF16, T, allReduce, decoderGraph, linear } from './vllmBlocks.ts';

const V = '/opt/vllm/vllm';

function moe(c: Ctx, h: Ref, layer: number): Ref {
  const { w, m } = c;
  const padded = m.moePaddedHidden ?? m.hidden;
  const logits = linear(c, h, m.hidden, m.experts!, true, 'return F.linear(x, layer.weight, bias)');
  w.source(
    `${V}/model_executor/layers/fused_moe/layer.py:1720 in forward, code: hidden_states = F.pad(hidden_states, (0, self.hidden_size - og_hidden_states), mode="constant", value=0.0)`,
  );
  const pad = w.op('aten.constant_pad_nd.default', BF16(T, padded), [h, [0, padded - m.hidden], float(0)]);
  w.source(
    `${V}/model_executor/layers/fused_moe/layer.py:1735 in forward, code: fused_output = torch.ops.vllm.moe_forward(hidden_states, router_logits, self.layer_name)`,
  );
  const [out] = c.w.autoFunctionalized(
    'vllm.moe_forward.default',
    { hidden_states: pad, router_logits: logits, layer_name: `model.layers.${layer}.mlp.experts` },
    [{ index: 0, type: BF16(T, padded) }],
  );
  const reduced = allReduce(c, out!, padded);
  w.source(
    `${V}/model_executor/layers/fused_moe/layer.py:1752 in forward, code: return reduce_output(fused_output)[..., :og_hidden_states]`,
  );
  return w.op('aten.slice.Tensor', BF16(T, m.hidden), [reduced, 1, 0, m.hidden]);
}

export function gptOssGraph(m: ModelDims, layers: number, tp: number): FxWriter {
  return decoderGraph(m, layers, tp, {
    qkvBias: true,
    modelFile: 'gpt_oss.py',
    ffn: (c, h, layer) => moe(c, h, layer),
  });
}
