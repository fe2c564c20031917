// A Llama-style dense model as vLLM lowers it: attention and a SwiGLU MLP per layer, each ending
// in a row-parallel projection whose partial sums are all-reduced and then normed.

import type { Ref } from '../ir.ts';
import { FxWriter } from './fxWriter.ts';
import type { ModelDims } from './models.ts';
import { shardedDims } from './models.ts';
import type { Ctx } from './vllmBlocks.ts';
import { BF16, T, allReduce, attention, embedding, fusedAddRmsNorm, linear, rmsNorm } from './vllmBlocks.ts';

const V = '/opt/vllm/vllm';

function mlp(c: Ctx, h: Ref, sym: Ref): Ref {
  const { w, m, tp } = c;
  const inter = shardedDims(m, tp).intermediate;
  const gateUp = linear(c, h, m.hidden, 2 * inter, false, 'return F.linear(x, layer.weight, bias)');
  w.source(`${V}/model_executor/layers/activation.py:81 in forward_cuda, code: out = torch.empty(output_shape, dtype=x.dtype, device=x.device)`);
  const out = w.op('aten.empty.memory_format', BF16(T, inter), [[sym, inter]],
    { dtype: { kind: 'expr', text: 'torch.bfloat16' }, device: { kind: 'expr', text: "device(type='cuda', index=0)" }, pin_memory: false });
  w.source(`${V}/model_executor/layers/activation.py:82 in forward_cuda, code: self.op(out, x)`);
  const [act] = w.autoFunctionalized('_C.silu_and_mul.default', { out, input: gateUp }, [{ index: 1, type: BF16(T, inter) }]);
  const down = linear(c, act!, inter, m.hidden, false, 'return F.linear(x, layer.weight, bias)');
  return allReduce(c, down, m.hidden);
}

export function llamaGraph(m: ModelDims, layers: number, tp: number): FxWriter {
  const w = new FxWriter();
  const sym = w.param('Sym(s72)');
  const ids = w.param(`i64[${T}]`);
  const positions = w.param(`i64[${T}]`);
  const c: Ctx = { w, m, tp, positions };
  let hidden = embedding(c, ids);
  let residual: Ref | undefined;
  for (let i = 0; i < layers; i++) {
    let h: Ref;
    if (residual === undefined) {
      residual = hidden;
      h = rmsNorm(c, hidden);
    } else {
      [h, residual] = fusedAddRmsNorm(c, hidden, residual) as [Ref, Ref];
    }
    const attn = attention(c, h, i, false, 'llama.py');
    const [h2, res2] = fusedAddRmsNorm(c, attn, residual) as [Ref, Ref];
    residual = res2;
    hidden = mlp(c, h2, sym);
  }
  const [out] = fusedAddRmsNorm(c, hidden, residual!, false);
  w.output(out);
  return w;
}
