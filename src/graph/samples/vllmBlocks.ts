// The pieces a vLLM post-grad graph is made of, written as vLLM's code lowers them: the
// vocab-parallel embedding, the attention block, and the norms. Shared by the GPT-OSS and Llama
// generators; `# File:` comments name the vLLM source that produced each group.

import type { Arg, Ref } from '../ir.ts';
import { float } from '../ir.ts';
import { FxWriter } from './fxWriter.ts';
import type { ModelDims } from './models.ts';
import { ROPE_CACHE_ROWS, shardedDims } from './models.ts';

const V = '/opt/vllm/vllm';
export const BF16 = (...dims: (number | string)[]) => `bf16[${dims.join(', ')}]`;
export const T = 's72';

/**
 * How the linears quantize (vLLM's schemes for Llama checkpoints): none (bf16), FP8 with a static
 * per-tensor input scale (Fp8LinearOp: static_scaled_fp8_quant → cutlass_scaled_mm), FP8 with a
 * dynamic per-token one (dynamic_per_token_scaled_fp8_quant, per-channel weight scales), NVFP4
 * (ModelOpt: scaled_fp4_quant → cutlass_scaled_fp4_mm, Blackwell).
 */
export type SampleQuant = 'none' | 'fp8-static' | 'fp8-dynamic' | 'nvfp4';

export interface Ctx {
  w: FxWriter;
  m: ModelDims;
  tp: number;
  positions: Ref;
  /** The token count, for the buffers the custom ops write. */
  sym: Ref;
  quant: SampleQuant;
}

/** Token ids → hidden states, all-reduced across ranks (each rank holds vocab/tp rows). */
export function embedding(c: Ctx, ids: Ref): Ref {
  const { w, m, tp } = c;
  const shard = shardedDims(m, tp).vocab;
  const weight = w.param(BF16(shard, m.hidden));
  if (tp === 1) {
    w.source(
      `${V}/model_executor/layers/vocab_parallel_embedding.py:47 in embedding, code: return F.embedding(input_, layer.weight)`,
    );
    return w.op('aten.embedding.default', BF16(T, m.hidden), [weight, ids]);
  }
  w.source(
    `${V}/model_executor/layers/vocab_parallel_embedding.py:146 in get_masked_input_and_mask, code: org_vocab_mask = (input_ >= org_vocab_start_index) & (input_ < org_vocab_end_index)`,
  );
  const ge = w.op('aten.ge.Scalar', `b8[${T}]`, [ids, 0]);
  const lt = w.op('aten.lt.Scalar', `b8[${T}]`, [ids, shard]);
  const inShard = w.op('aten.bitwise_and.Tensor', `b8[${T}]`, [ge, lt]);
  w.source(
    `${V}/model_executor/layers/vocab_parallel_embedding.py:155 in get_masked_input_and_mask, code: input_ = vocab_mask * (input_ - valid_offset)`,
  );
  const masked = w.op('aten.mul.Tensor', `i64[${T}]`, [inShard, ids]);
  w.source(
    `${V}/model_executor/layers/vocab_parallel_embedding.py:47 in embedding, code: return F.embedding(input_, layer.weight)`,
  );
  const emb = w.op('aten.embedding.default', BF16(T, m.hidden), [weight, masked]);
  w.source(
    `${V}/model_executor/layers/vocab_parallel_embedding.py:419 in forward, code: output_parallel.masked_fill_(input_mask.unsqueeze(-1), 0)`,
  );
  const outside = w.op('aten.bitwise_not.default', `b8[${T}]`, [inShard]);
  const mask = w.op('aten.unsqueeze.default', `b8[${T}, 1]`, [outside, -1]);
  const filled = w.op('aten.masked_fill.Scalar', BF16(T, m.hidden), [emb, mask, 0]);
  return allReduce(c, filled, m.hidden);
}

export function allReduce(c: Ctx, x: Ref, cols: number): Ref {
  if (c.tp === 1) return x;
  c.w.source(
    `${V}/distributed/parallel_state.py:307 in all_reduce, code: return torch.ops.vllm.all_reduce(input_, group_name=self.unique_name)`,
  );
  return c.w.op('vllm.all_reduce.default', BF16(T, cols), [x, 'tp:0']);
}

/** The first layer's input norm: rms_norm into a new buffer (the residual is the input itself). */
export function rmsNorm(c: Ctx, x: Ref): Ref {
  const { w, m } = c;
  const weight = w.param(BF16(m.hidden));
  w.source(`${V}/model_executor/layers/layernorm.py:94 in forward_cuda, code: out = torch.empty_like(x)`);
  const out = w.op('aten.empty_like.default', BF16(T, m.hidden), [x], { pin_memory: false });
  w.source(`${V}/_custom_ops.py:153 in rms_norm, code: torch.ops._C.rms_norm(out, input, weight, epsilon)`);
  const [normed] = w.autoFunctionalized(
    '_C.rms_norm.default',
    { result: out, input: x, weight, epsilon: float(m.eps) },
    [{ index: 1, type: BF16(T, m.hidden) }],
  );
  return normed!;
}

/** fused_add_rms_norm: [1] the normed hidden states, [2] the new residual (omitted when unused). */
export function fusedAddRmsNorm(c: Ctx, x: Ref, residual: Ref, needResidual = true): [Ref, Ref | undefined] {
  const { w, m } = c;
  const weight = w.param(BF16(m.hidden));
  w.source(
    `${V}/_custom_ops.py:158 in fused_add_rms_norm, code: torch.ops._C.fused_add_rms_norm(input, residual, weight, epsilon)`,
  );
  const items = [{ index: 1, type: BF16(T, m.hidden) }];
  if (needResidual) items.push({ index: 2, type: BF16(T, m.hidden) });
  const [normed, res] = w.autoFunctionalized(
    '_C.fused_add_rms_norm.default',
    { input: x, residual, weight, epsilon: float(m.eps) },
    items,
  );
  return [normed!, res];
}

/** Column-parallel linear (weight [out, in] sharded by rows), with or without bias. */
export function linear(c: Ctx, x: Ref, inF: number, outF: number, bias: boolean, code: string): Ref {
  const { w } = c;
  if (c.quant !== 'none' && !bias) return quantizedLinear(c, x, inF, outF);
  const weight = w.param(BF16(outF, inF));
  const b: Arg | undefined = bias ? w.param(BF16(outF)) : undefined;
  w.source(`${V}/model_executor/layers/linear.py:142 in apply, code: ${code}`);
  const t = w.op('aten.t.default', BF16(inF, outF), [weight]);
  return b
    ? w.op('aten.addmm.default', BF16(T, outF), [b, x, t])
    : w.op('aten.mm.default', BF16(T, outF), [x, t]);
}

const dtypeExpr = (torch: string): Arg => ({ kind: 'expr', text: torch });

/** torch.empty([T, ...cols]) of `dtype`, as vLLM's op wrappers allocate a custom op's output. */
function emptyRows(c: Ctx, type: string, cols: number[], torch: string): Ref {
  return c.w.op('aten.empty.memory_format', type, [[c.sym, ...cols]], {
    dtype: dtypeExpr(torch),
    device: dtypeExpr("device(type='cuda', index=0)"),
    pin_memory: false,
  });
}

/** A quantized linear: the input's quant, then the scaled GEMM of the scheme (vLLM's _custom_ops.py). */
function quantizedLinear(c: Ctx, x: Ref, inF: number, outF: number): Ref {
  const { w } = c;
  const out = () => emptyRows(c, BF16(T, outF), [outF], 'torch.bfloat16');
  if (c.quant === 'nvfp4') {
    const globalScale = w.param('f32[1]');
    w.source(
      `${V}/_custom_ops.py in scaled_fp4_quant, code: torch.ops._C.scaled_fp4_quant(output, input, output_scale, input_scale)`,
    );
    const [q, sf] = w.autoFunctionalized(
      '_C.scaled_fp4_quant.default',
      {
        output: emptyRows(c, `u8[${T}, ${inF / 2}]`, [inF / 2], 'torch.uint8'),
        input: x,
        output_scale: emptyRows(c, `f8e4m3fn[${T}, ${inF / 16}]`, [inF / 16], 'torch.float8_e4m3fn'),
        input_scale: globalScale,
      },
      [
        { index: 1, type: `u8[${T}, ${inF / 2}]` },
        { index: 2, type: `f8e4m3fn[${T}, ${inF / 16}]` },
      ],
    );
    w.source(
      `${V}/_custom_ops.py in cutlass_scaled_fp4_mm, code: torch.ops._C.cutlass_scaled_fp4_mm(out, a, b, block_scale_a, block_scale_b, alpha)`,
    );
    const [y] = w.autoFunctionalized(
      '_C.cutlass_scaled_fp4_mm.default',
      {
        out: out(),
        a: q!,
        b: w.param(`u8[${outF}, ${inF / 2}]`),
        block_scale_a: sf!,
        block_scale_b: w.param(`f8e4m3fn[${outF}, ${inF / 16}]`),
        alpha: w.param('f32[1]'),
      },
      [{ index: 1, type: BF16(T, outF) }],
    );
    return y!;
  }
  const F8 = `f8e4m3fn[${T}, ${inF}]`;
  const result = emptyRows(c, F8, [inF], 'torch.float8_e4m3fn');
  let q: Ref, scale: Ref;
  if (c.quant === 'fp8-static') {
    scale = w.param('f32[1]');
    w.source(
      `${V}/_custom_ops.py in scaled_fp8_quant, code: torch.ops._C.static_scaled_fp8_quant(output, input, scale)`,
    );
    [q] = w.autoFunctionalized('_C.static_scaled_fp8_quant.default', { result, input: x, scale }, [
      { index: 1, type: F8 },
    ]) as [Ref];
  } else {
    w.source(
      `${V}/_custom_ops.py in scaled_fp8_quant, code: torch.ops._C.dynamic_per_token_scaled_fp8_quant(output, input, scale, scale_ub)`,
    );
    [q, scale] = w.autoFunctionalized(
      '_C.dynamic_per_token_scaled_fp8_quant.default',
      { result, input: x, scale: emptyRows(c, `f32[${T}, 1]`, [1], 'torch.float32'), scale_ub: null },
      [
        { index: 1, type: F8 },
        { index: 2, type: `f32[${T}, 1]` },
      ],
    ) as [Ref, Ref];
  }
  // Per-tensor weight scales with a static input scale, per-channel ones with per-token inputs.
  const weightScale = w.param(c.quant === 'fp8-static' ? 'f32[1]' : `f32[1, ${outF}]`);
  w.source(
    `${V}/_custom_ops.py in cutlass_scaled_mm, code: torch.ops._C.cutlass_scaled_mm(out, a, b, scale_a, scale_b, bias)`,
  );
  const [y] = w.autoFunctionalized(
    '_C.cutlass_scaled_mm.default',
    {
      out: out(),
      a: q,
      b: w.param(`f8e4m3fn[${inF}, ${outF}]`),
      a_scales: scale,
      b_scales: weightScale,
      bias: null,
    },
    [{ index: 1, type: BF16(T, outF) }],
  );
  return y!;
}

const SPLIT_LINE: Record<string, number> = { 'llama.py': 204, 'gpt_oss.py': 164, 'qwen3_moe.py': 293 };

/** Qwen3's per-head RMSNorm of q or k: view as [T, heads, head_dim], rms_norm, view back. */
function headNorm(c: Ctx, x: Ref, heads: number, modelFile: string, which: 'q' | 'k'): Ref {
  const { w, m } = c;
  const weight = w.param(BF16(m.headDim));
  w.source(
    `${V}/model_executor/models/${modelFile}:296 in forward, code: ${which}_by_head = ${which}.view(*${which}.shape[:-1], ${which}.shape[-1] // self.head_dim, self.head_dim)`,
  );
  const byHead = w.op('aten.view.default', BF16(T, heads, m.headDim), [x, [-1, heads, m.headDim]]);
  w.source(`${V}/model_executor/layers/layernorm.py:94 in forward_cuda, code: out = torch.empty_like(x)`);
  const out = w.op('aten.empty_like.default', BF16(T, heads, m.headDim), [byHead], { pin_memory: false });
  w.source(`${V}/_custom_ops.py:153 in rms_norm, code: torch.ops._C.rms_norm(out, input, weight, epsilon)`);
  const [normed] = w.autoFunctionalized(
    '_C.rms_norm.default',
    { result: out, input: byHead, weight, epsilon: float(m.eps) },
    [{ index: 1, type: BF16(T, heads, m.headDim) }],
  );
  w.source(
    `${V}/model_executor/models/${modelFile}:298 in forward, code: ${which} = ${which}_by_head.view(${which}.shape)`,
  );
  return w.op('aten.view.default', BF16(T, heads * m.headDim), [normed!, [-1, heads * m.headDim]]);
}

/** qkv projection, RoPE, paged attention, o_proj (row-parallel: a partial sum, all-reduced). */
export function attention(
  c: Ctx,
  h: Ref,
  layer: number,
  qkvBias: boolean,
  modelFile: string,
  qkNorm = false,
): Ref {
  const { w, m, tp, positions } = c;
  const s = shardedDims(m, tp);
  const qkvOut = s.qSize + 2 * s.kvSize;
  const qkv = linear(c, h, m.hidden, qkvOut, qkvBias, 'return F.linear(x, layer.weight, bias)');
  w.source(
    `${V}/model_executor/models/${modelFile}:${SPLIT_LINE[modelFile] ?? 164} in forward, code: q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)`,
  );
  const split = w.op('aten.split_with_sizes.default', null, [qkv, [s.qSize, s.kvSize, s.kvSize], -1]);
  const q = w.getitem(split, 0, BF16(T, s.qSize));
  let k = w.getitem(split, 1, BF16(T, s.kvSize));
  const v = w.getitem(split, 2, BF16(T, s.kvSize));
  const qn = qkNorm ? headNorm(c, q, s.qHeads, modelFile, 'q') : q;
  if (qkNorm) k = headNorm(c, k, s.kvHeads, modelFile, 'k');
  const cache = w.param(BF16(ROPE_CACHE_ROWS, m.headDim));
  w.source(
    `${V}/_custom_ops.py:136 in rotary_embedding, code: torch.ops._C.rotary_embedding(positions, query, key, head_size, cos_sin_cache, is_neox)`,
  );
  const [qr, kr] = w.autoFunctionalized(
    '_C.rotary_embedding.default',
    { positions, query: qn, key: k, head_size: m.headDim, cos_sin_cache: cache, is_neox: true },
    [
      { index: 1, type: BF16(T, s.qSize) },
      { index: 2, type: BF16(T, s.kvSize) },
    ],
  );
  w.source(`${V}/attention/layer.py:167 in forward, code: output = torch.empty_like(query)`);
  const out = w.op('aten.empty_like.default', BF16(T, s.qSize), [qr!], { pin_memory: false });
  w.source(
    `${V}/attention/layer.py:173 in forward, code: output = output.view(-1, self.num_heads, self.head_size)`,
  );
  const outView = w.op('aten.view.default', BF16(T, s.qHeads, m.headDim), [out, [-1, s.qHeads, m.headDim]]);
  w.source(
    `${V}/attention/layer.py:190 in forward, code: torch.ops.vllm.unified_attention_with_output(query, key, value, output, self.layer_name)`,
  );
  const qv = w.op('aten.view.default', BF16(T, s.qHeads, m.headDim), [qr!, [-1, s.qHeads, m.headDim]]);
  const kv = w.op('aten.view.default', BF16(T, s.kvHeads, m.headDim), [kr!, [-1, s.kvHeads, m.headDim]]);
  const vv = w.op('aten.view.default', BF16(T, s.kvHeads, m.headDim), [v, [-1, s.kvHeads, m.headDim]]);
  const [attn] = w.autoFunctionalized(
    'vllm.unified_attention_with_output.default',
    { query: qv, key: kv, value: vv, output: outView, layer_name: `model.layers.${layer}.self_attn.attn` },
    [{ index: 1, type: BF16(T, s.qHeads, m.headDim) }],
  );
  const flat = w.op('aten.view.default', BF16(T, s.qSize), [attn!, [-1, s.qSize]]);
  // o_proj is row-parallel: rank 0 adds no bias before the reduction (vLLM adds it on rank 0
  // only when the layer has one; GPT-OSS's and Llama's graphs at rank ≥ 1 are this form).
  const o = linear(c, flat, s.qSize, m.hidden, false, 'return F.linear(x, layer.weight, bias)');
  return allReduce(c, o, m.hidden);
}

/**
 * The decoder skeleton both families share: embedding, then per layer an input norm (plain
 * rms_norm on the first layer, fused add + norm after), attention, a post-attention add + norm
 * and the model's feed-forward block; a final add + norm whose residual nobody reads.
 */
export function decoderGraph(
  m: ModelDims,
  layers: number,
  tp: number,
  block: {
    qkvBias: boolean;
    modelFile: string;
    qkNorm?: boolean;
    ffn: (c: Ctx, h: Ref, layer: number, sym: Ref) => Ref;
  },
  quant: SampleQuant = 'none',
): FxWriter {
  const w = new FxWriter();
  const sym = w.param('Sym(s72)');
  const ids = w.param(`i64[${T}]`);
  const positions = w.param(`i64[${T}]`);
  const c: Ctx = { w, m, tp, positions, sym, quant };
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
    const attn = attention(c, h, i, block.qkvBias, block.modelFile, block.qkNorm);
    const [h2, res2] = fusedAddRmsNorm(c, attn, residual) as [Ref, Ref];
    residual = res2;
    hidden = block.ffn(c, h2, i, sym);
  }
  const [out] = fusedAddRmsNorm(c, hidden, residual!, false);
  w.output(out);
  return w;
}
