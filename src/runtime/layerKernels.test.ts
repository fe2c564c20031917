// The layer kernels real post-grad graphs need (scatter, rotary, attention, silu_and_mul): the
// CPU reference against properties worked out by hand, then WebGPU (Dawn on SwiftShader) against
// the CPU reference through small FX graphs with seeded inputs, within each kernel's declared
// rounding (src/graph/opTable.ts).

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { KERNELS, MAP_FNS, mapFnUlps } from '../graph/opTable.ts';
import { cpuAttention, cpuRotary, cpuScatter } from './cpuLayerKernels.ts';
import { compareTensor } from './compareOutputs.ts';
import { runGraph, planGraph } from './index.ts';
import { roundTo } from './weights.ts';
import { tinyRuns } from './testRuns.ts';

const id = (v: number) => v;

describe('CPU reference, by hand', () => {
  it('rotary: cos 1, sin 0 is the identity; cos 0, sin 1 turns each pair a quarter (neox halves, else neighbours)', () => {
    const x = Float64Array.of(1, 2, 3, 4);
    // cache rows: [cos, cos, sin, sin] for positions 0 and 1.
    const cache = Float64Array.of(1, 1, 0, 0, 0, 0, 1, 1);
    expect([...cpuRotary(x, 1, 4, Float64Array.of(0), cache, 4, 4, true, id)]).toEqual([1, 2, 3, 4]);
    expect([...cpuRotary(x, 1, 4, Float64Array.of(1), cache, 4, 4, true, id)]).toEqual([-3, -4, 1, 2]);
    expect([...cpuRotary(x, 1, 4, Float64Array.of(1), cache, 4, 4, false, id)]).toEqual([-2, 1, -4, 3]);
  });

  it('rotary: dims past the cache width are left as they are, and each head rotates alike', () => {
    const x = Float64Array.of(1, 2, 5, 6, 3, 4, 7, 8);
    const cache = Float64Array.of(0, 1); // rot 2: cos 0, sin 1 at position 0
    expect([...cpuRotary(x, 1, 8, Float64Array.of(0), cache, 2, 4, true, id)]).toEqual([
      -2, 1, 5, 6, -4, 3, 7, 8,
    ]);
  });

  it("rotary rounds each product and the sum to the storage dtype, as vLLM's scalar_t kernel", () => {
    // x·c = 1.51965…: bf16 rounds it up to 1.5234375 before the tiny x·s is taken off.
    const c = 1 + 2 ** -7,
      s = 2 ** -9;
    const x = Float64Array.of(1.5 + 2 ** -7, 1),
      cache = Float64Array.of(c, s);
    const bf = (v: number) => roundTo('bf16', v);
    const [x0] = cpuRotary(x, 1, 2, Float64Array.of(0), cache, 2, 2, true, bf);
    expect(x0).toBe(bf(bf(x[0] * c) - bf(x[1] * s)));
    expect(x0).toBe(1.5234375);
    expect(bf(x[0] * c - x[1] * s)).toBe(1.515625);
  });

  it('attention: the first token reads only itself; equal scores average the values seen so far', () => {
    const T = 3,
      H = 2,
      Hkv = 1,
      D = 2;
    const q = new Float64Array(T * H * D); // zero queries: every score equal
    const k = Float64Array.of(1, 2, 3, 4, 5, 6);
    const v = Float64Array.of(1, 10, 3, 20, 8, 60);
    const out = cpuAttention(q, k, v, T, H, Hkv, D);
    expect([...out.subarray(0, 4)]).toEqual([1, 10, 1, 10]);
    expect([...out.subarray(4, 6)]).toEqual([2, 15]);
    expect([...out.subarray(8, 10)]).toEqual([4, 30]);
  });

  it("attention: a query aligned with one key by a wide margin reads that key's value (GQA: heads share kv heads)", () => {
    const T = 2,
      H = 2,
      Hkv = 1,
      D = 1;
    const q = Float64Array.of(0, 0, 100, -100); // token 1: head 0 prefers key 1, head 1 key 0
    const k = Float64Array.of(-1, 1);
    const v = Float64Array.of(5, 7);
    const out = cpuAttention(q, k, v, T, H, Hkv, D);
    expect(out[2]).toBeCloseTo(7, 10);
    expect(out[3]).toBeCloseTo(5, 10);
  });

  it('scatter: the window at + Σ i·strides gets src, the rest stays base', () => {
    const base = Float64Array.from({ length: 12 }, (_, i) => i);
    // [3, 4] base, column 1 and 3 of every row: at 1, strides [4, 2], src [3, 2].
    const out = cpuScatter(base, Float64Array.of(-1, -2, -3, -4, -5, -6), [3, 2], 1, [4, 2]);
    expect([...out]).toEqual([0, -1, 2, -2, 4, -3, 6, -4, 8, -5, 10, -6]);
  });
});

const GRAPHS = {
  rotary: `def forward(self, positions: "i64[7]", qkv: "bf16[7, 48]", cache: "bf16[16, 8]"):
    split_with_sizes = torch.ops.aten.split_with_sizes.default(qkv, [32, 8, 8], -1)
    q: "bf16[7, 32]" = split_with_sizes[0]
    k: "bf16[7, 8]" = split_with_sizes[1]
    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rotary_embedding.default, positions = positions, query = q, key = k, head_size = 8, cos_sin_cache = cache, is_neox = False)
    q2: "bf16[7, 32]" = auto_functionalized[1]
    k2: "bf16[7, 8]" = auto_functionalized[2]
    return (q2, k2)`,
  attention: `def forward(self, q: "bf16[7, 4, 8]", k: "bf16[7, 2, 8]", v: "bf16[7, 2, 8]"):
    empty: "bf16[7, 4, 8]" = torch.ops.aten.empty.memory_format([7, 4, 8], dtype = torch.bfloat16, device = device(type='cpu'), pin_memory = False)
    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops.vllm.unified_attention_with_output.default, query = q, key = k, value = v, output = empty, layer_name = 'model.layers.0.self_attn.attn', output_scale = None, output_block_scale = None)
    out: "bf16[7, 4, 8]" = auto_functionalized[1]
    return (out,)`,
  scatter: `def forward(self, base: "bf16[7, 24]", src: "bf16[7, 8]"):
    slice_scatter: "bf16[7, 24]" = torch.ops.aten.slice_scatter.default(base, src, 1, 4, 20, 2)
    return (slice_scatter,)`,
  // A strided view of a flat storage written in place (Inductor's decomposed in-place calls).
  stridedWrite: `def forward(self, flat: "bf16[200]", src: "bf16[7, 16]"):
    as_strided: "bf16[7, 16]" = torch.ops.aten.as_strided.default(flat, [7, 16], [24, 1], 8)
    copy_: "bf16[7, 16]" = torch.ops.aten.copy_.default(as_strided, src)
    return (flat,)`,
  silu: `def forward(self, x: "bf16[7, 32]"):
    empty: "bf16[7, 16]" = torch.ops.aten.empty.memory_format([7, 16], dtype = torch.bfloat16, device = device(type='cpu'), pin_memory = False)
    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.silu_and_mul.default, result = empty, input = x)
    out: "bf16[7, 16]" = auto_functionalized[1]
    return (out,)`,
};

const base = tinyRuns({ backend: 'cpu', ranks: 1, seed: 11 });

describe('WebGPU against the CPU reference', { timeout: 300_000 }, () => {
  const allowed: Record<keyof typeof GRAPHS, number> = {
    rotary: 0,
    scatter: 0,
    stridedWrite: 0,
    attention: KERNELS.attention.rounding.ulps.bf16,
    silu: mapFnUlps(MAP_FNS.silu_mul_bf16.rounding, 'bf16'),
  };
  for (const [name, text] of Object.entries(GRAPHS) as [keyof typeof GRAPHS, string][]) {
    it(`${name}: every value computed (nothing fed) and within ${allowed[name]} bf16 ulps`, async () => {
      const g = parseFx(text).graph;
      expect(planGraph(g, base()).fed).toEqual([]);
      const cpu = await runGraph(g, base());
      const gpuRun = await runGraph(g, base({ backend: 'webgpu' }));
      for (const [out, t] of cpu.outputs[0]) {
        const c = compareTensor(out, t, gpuRun.outputs[0].get(out)!, allowed[name], 'declared rounding');
        expect(c.pass, `${name} ${out}: ${c.ulps} ulps`).toBe(true);
        // The kernel changed its input: a rotation, a scatter or an attention that copied would pass vacuously.
        expect([...t.data].some((x) => x !== 0)).toBe(true);
      }
    });
  }

  it("rotary: positions are seeded as token positions inside the cache (i32, range = the cache's rows)", async () => {
    const g = parseFx(GRAPHS.rotary).graph;
    const plan = planGraph(g, base());
    const step = plan.steps.find((s) => s.kernel === 'rotary')!;
    expect(step.kernel === 'rotary' && step.positions.dtype).toBe('i32');
    const seeded = plan.steps.find((s) => s.kernel === 'seed' && s.name === 'positions')!;
    expect(seeded.kernel === 'seed' && seeded.range).toBe(16);
  });
});
