// A Llama-style dense model as vLLM lowers it: attention and a SwiGLU MLP per layer, each ending
// in a row-parallel projection whose partial sums are all-reduced and then normed.

import type { Ref } from '../ir.ts';
import type { FxWriter } from './fxWriter.ts';
import type { ModelDims } from './models.ts';
import { shardedDims } from './models.ts';
import type { Ctx } from './vllmBlocks.ts';
import type { SampleQuant } from './vllmBlocks.ts';
import { BF16, T, allReduce, decoderGraph, linear } from './vllmBlocks.ts';

const V = '/opt/vllm/vllm';

/** Llama's MLP (gate/up → silu_and_mul → down → all-reduce), shared by the dense models built on its layer. */
export function mlp(c: Ctx, h: Ref, sym: Ref): Ref {
  const { w, m, tp } = c;
  const inter = shardedDims(m, tp).intermediate;
  const gateUp = linear(c, h, m.hidden, 2 * inter, false, 'return F.linear(x, layer.weight, bias)');
  w.source(
    `${V}/model_executor/layers/activation.py:81 in forward_cuda, code: out = torch.empty(output_shape, dtype=x.dtype, device=x.device)`,
  );
  const out = w.op('aten.empty.memory_format', BF16(T, inter), [[sym, inter]], {
    dtype: { kind: 'expr', text: 'torch.bfloat16' },
    device: { kind: 'expr', text: "device(type='cuda', index=0)" },
    pin_memory: false,
  });
  w.source(`${V}/model_executor/layers/activation.py:82 in forward_cuda, code: self.op(out, x)`);
  const [act] = w.autoFunctionalized('_C.silu_and_mul.default', { result: out, input: gateUp }, [
    { index: 1, type: BF16(T, inter) },
  ]);
  const down = linear(c, act!, inter, m.hidden, false, 'return F.linear(x, layer.weight, bias)');
  return allReduce(c, down, m.hidden);
}

export function llamaGraph(m: ModelDims, layers: number, tp: number, quant: SampleQuant = 'none'): FxWriter {
  return decoderGraph(
    m,
    layers,
    tp,
    { qkvBias: false, modelFile: 'llama.py', ffn: (c, h, _layer, sym) => mlp(c, h, sym) },
    quant,
  );
}
