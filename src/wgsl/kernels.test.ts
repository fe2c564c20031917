// Every kernel against the CPU reference, through Dawn on SwiftShader: random inputs with a fresh
// seed each run (printed on failure), sizes that are not multiples of any tile or vector width.

import { describe, it, expect, beforeAll } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { runGraph, type RunOptions } from '../runtime/index.ts';
import { nodeGpu } from '../runtime/nodeGpu.ts';
import { diffFromReference } from '../runtime/referenceCheck.ts';
import type { HostTensor } from '../runtime/hostTensor.ts';

let gpu: GPU;
beforeAll(async () => {
  gpu = await nodeGpu();
});

const freshSeed = () => (Math.random() * 2 ** 32) >>> 0;

async function againstReference(
  fx: string,
  o: Partial<RunOptions> & { terms?: number; scale?: number; ulps?: number },
) {
  const seed = o.seed ?? freshSeed();
  const g = parseFx(fx).graph;
  const opts: RunOptions = {
    backend: 'cpu',
    ranks: 1,
    preset: 'layer',
    dtype: 'bf16',
    allreduce: 'one-shot',
    workers: false,
    seed,
    ...o,
  };
  const want = await runGraph(g, opts);
  const got = await runGraph(g, { ...opts, backend: 'webgpu', gpu });
  expect(got.outputs.length).toBe(want.outputs.length);
  for (let r = 0; r < want.outputs.length; r++) {
    expect([...got.outputs[r].keys()]).toEqual([...want.outputs[r].keys()]);
    for (const [name, w] of want.outputs[r]) {
      const d = diffFromReference(got.outputs[r].get(name) as HostTensor, w, {
        terms: o.terms ?? 0,
        scale: o.scale ?? 0,
        ulps: o.ulps ?? 0,
      });
      expect(d, `seed ${seed}, rank ${r}, output ${name}: ${JSON.stringify(d)}`).toBeNull();
    }
  }
  return { want, got, seed };
}

describe('WGSL kernels match the CPU reference', { timeout: 180_000 }, () => {
  it('clone of a strided slice, and constant_pad_nd (bitwise)', async () => {
    for (const dtype of ['bf16', 'f32'] as const) {
      await againstReference(
        `def forward(self, x: "bf16[s0, 45]"):
    slice_1: "bf16[s0, 31]" = torch.ops.aten.slice.Tensor(x, 1, 3, 34)
    clone: "bf16[s0, 31]" = torch.ops.aten.clone.default(slice_1)
    pad: "bf16[s0, 37]" = torch.ops.aten.constant_pad_nd.default(slice_1, [1, 5], 0.5)
    return (clone, pad)
`,
        { dtype, tokens: 13 },
      );
    }
  });

  it('add with broadcasting and alpha (within 1 ulp: f32 vs f64 sum)', async () => {
    await againstReference(
      `def forward(self, x: "bf16[s0, 33]", y: "bf16[33]"):
    add: "bf16[s0, 33]" = torch.ops.aten.add.Tensor(x, y, alpha = 3)
    return (add,)
`,
      { tokens: 11, ulps: 1 },
    );
  });

  it('embedding of seeded token ids (bitwise)', async () => {
    const { want } = await againstReference(
      `def forward(self, ids: "i64[s0]", table: "bf16[101, 35]"):
    embedding: "bf16[s0, 35]" = torch.ops.aten.embedding.default(table, ids)
    return (embedding,)
`,
      { tokens: 17 },
    );
    expect(want.outputs[0].get('embedding')!.shape).toEqual([17, 35]);
  });

  it('the vocabulary mask: ge, lt, bitwise_and/not, mul, unsqueeze, masked_fill; mul and add by a number (bitwise)', async () => {
    await againstReference(
      `def forward(self, ids: "i64[s0]", table: "bf16[101, 36]"):
    ge: "b8[s0]" = torch.ops.aten.ge.Scalar(ids, 30)
    lt: "b8[s0]" = torch.ops.aten.lt.Scalar(ids, 80)
    bitwise_and: "b8[s0]" = torch.ops.aten.bitwise_and.Tensor(ge, lt)
    mul: "i64[s0]" = torch.ops.aten.mul.Tensor(bitwise_and, ids)
    embedding: "bf16[s0, 36]" = torch.ops.aten.embedding.default(table, mul)
    bitwise_not: "b8[s0]" = torch.ops.aten.bitwise_not.default(bitwise_and)
    unsqueeze: "b8[s0, 1]" = torch.ops.aten.unsqueeze.default(bitwise_not, -1)
    masked_fill: "bf16[s0, 36]" = torch.ops.aten.masked_fill.Scalar(embedding, unsqueeze, 0.5)
    mul_1: "bf16[s0, 36]" = torch.ops.aten.mul.Tensor(masked_fill, 3)
    add: "bf16[s0, 36]" = torch.ops.aten.add.Tensor(mul_1, 0.5)
    return (mul, masked_fill, add)
`,
      { tokens: 29 },
    );
  });

  it('fused all-reduce + RMSNorm (pattern 1) over 3 ranks, and the first-layer form with norm_out', async () => {
    // One rounding of the rank-ordered sum, one of the residual add, one of the norm.
    await againstReference(
      `def forward(self, x: "bf16[s0, 2880]", res: "bf16[s0, 2880]", w: "bf16[2880]", out: "bf16[s0, 2880]", zeros: "bf16[s0, 2880]"):
    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops.vllm.flashinfer_trtllm_fused_allreduce_norm.default, allreduce_in = x, residual = res, norm_out = None, quant_out = None, scale_out = None, rms_gamma = w, rms_eps = 1e-05, pattern_code = 1, world_rank = 0, world_size = 3, launch_with_pdl = True, trigger_completion_at_end = True, fp32_acc = True, max_token_num = 2048)
    getitem: "bf16[s0, 2880]" = auto_functionalized[1]
    getitem_1: "bf16[s0, 2880]" = auto_functionalized[2]
    auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops.vllm.flashinfer_trtllm_fused_allreduce_norm.default, allreduce_in = getitem, residual = zeros, norm_out = out, quant_out = None, scale_out = None, rms_gamma = w, rms_eps = 1e-06, pattern_code = 1, world_rank = 0, world_size = 3, launch_with_pdl = True, trigger_completion_at_end = True, fp32_acc = True, max_token_num = 2048)
    getitem_2: "bf16[s0, 2880]" = auto_functionalized_1[3]
    return (getitem, getitem_1, getitem_2)
`,
      { tokens: 6, ranks: 3, allreduce: 'two-shot', ulps: 2, terms: 2880, scale: 4 },
    );
  });

  for (const dtype of ['bf16', 'f32'] as const) {
    it(`addmm / mm with a transposed weight, odd M, N, K (${dtype})`, async () => {
      // Inputs in [-1, 1), weights 1/√K: each dot product has K terms of magnitude ≤ 1/√K.
      await againstReference(
        `def forward(self, x: "bf16[s0, 83]", w: "bf16[67, 83]", b: "bf16[67]", w2: "bf16[83, 29]"):
    t: "bf16[83, 67]" = torch.ops.aten.t.default(w)
    addmm: "bf16[s0, 67]" = torch.ops.aten.addmm.default(b, x, t)
    mm: "bf16[s0, 29]" = torch.ops.aten.mm.default(x, w2)
    return (addmm, mm)
`,
        { dtype, tokens: 71, ulps: 1, terms: 84, scale: 83 / Math.sqrt(29) },
      );
    });
  }

  for (const dtype of ['bf16', 'f32'] as const) {
    it(`rms_norm and fused_add_rms_norm on a strided slice, odd width (${dtype})`, async () => {
      // Two roundings in a chain (normalize, then scale by w): 2 ulps; the f32 sum of 37 squares
      // and the rsqrt carry a relative error ≤ 37·2⁻²⁴ on outputs of magnitude < 4.
      await againstReference(
        `def forward(self, x: "bf16[s0, 45]", res: "bf16[s0, 37]", w: "bf16[37]", out: "bf16[s0, 37]"):
    slice_1: "bf16[s0, 37]" = torch.ops.aten.slice.Tensor(x, 1, 0, 37)
    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = out, input = slice_1, weight = w, epsilon = 1e-05)
    getitem: "bf16[s0, 37]" = auto_functionalized[1]
    auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = slice_1, residual = res, weight = w, epsilon = 1e-06)
    getitem_1: "bf16[s0, 37]" = auto_functionalized_1[1]
    getitem_2: "bf16[s0, 37]" = auto_functionalized_1[2]
    return (getitem, getitem_1, getitem_2)
`,
        { dtype, tokens: 19, ulps: 2, terms: 37, scale: 4 },
      );
    });
  }

  it('rms_norm on the vectorized path (width a multiple of 8)', async () => {
    await againstReference(
      `def forward(self, x: "bf16[s0, 2880]", w: "bf16[2880]", out: "bf16[s0, 2880]"):
    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = out, input = x, weight = w, epsilon = 1e-05)
    getitem: "bf16[s0, 2880]" = auto_functionalized[1]
    return (getitem,)
`,
      { tokens: 5, ulps: 2, terms: 2880, scale: 4 },
    );
  });

  for (const [ranks, tokens] of [
    [1, 1],
    [1, 5],
    [3, 6],
  ]) {
    it(`GPT-OSS moe_forward on the decode kernels, T=${tokens}, ${ranks} rank(s)`, async () => {
      await againstReference(
        `def forward(self, x: "bf16[s0, 3072]", logits: "bf16[s0, 32]"):
    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops.vllm.moe_forward.default, hidden_states = x, router_logits = logits, layer_name = 'model.layers.3.mlp.experts')
    getitem: "bf16[s0, 3072]" = auto_functionalized[0]
    return (getitem,)
`,
        { preset: 'tiny', tokens, ranks, ulps: 2, terms: 120 * 4, scale: 8 },
      );
    });
  }

  it('GPT-OSS moe_forward with every router logit tied: the routing keeps the lowest expert ids, as routeToken', async () => {
    // logits · 0: all 32 experts tie for every token, so only the tie rule decides the top 4.
    await againstReference(
      `def forward(self, x: "bf16[s0, 3072]", logits: "bf16[s0, 32]"):
    mul: "bf16[s0, 32]" = torch.ops.aten.mul.Tensor(logits, 0)
    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops.vllm.moe_forward.default, hidden_states = x, router_logits = mul, layer_name = 'model.layers.3.mlp.experts')
    getitem: "bf16[s0, 3072]" = auto_functionalized[0]
    return (getitem,)
`,
      { preset: 'tiny', tokens: 3, ranks: 1, ulps: 2, terms: 120 * 4, scale: 8 },
    );
  });

  for (const ranks of [1, 2, 3]) {
    it(`GPT-OSS moe_forward, T=37, ${ranks} rank(s) (intermediate 120/${ranks} rows each)`, async () => {
      // Roundings of h, a and w_k·y feed further sums: allow 2 ulps of each term's scale.
      await againstReference(
        `def forward(self, x: "bf16[s0, 3072]", logits: "bf16[s0, 32]"):
    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops.vllm.moe_forward.default, hidden_states = x, router_logits = logits, layer_name = 'model.layers.0.mlp.experts')
    getitem: "bf16[s0, 3072]" = auto_functionalized[0]
    return (getitem,)
`,
        { preset: 'tiny', tokens: 37, ranks, ulps: 2, terms: 120 * 4, scale: 8 },
      );
    });
  }
});
