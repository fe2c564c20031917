// vLLM's ops in their torch-native forms, as torch 2.13's Inductor hands them to vLLM's passes
// (post_grad_custom_post_pass; graphs captured from RMSNorm.forward_static and QuantFP8.forward_native
// static, dynamic per-tensor and per-token), planned and run on the CPU reference and WebGPU against
// the custom ops they decompose: _C.rms_norm, _C.static_scaled_fp8_quant,
// _C.dynamic_scaled_fp8_quant, _C.dynamic_per_token_scaled_fp8_quant; and FP8 GEMMs (_scaled_mm,
// cutlass_scaled_mm) against their definition.

import { describe, expect, it } from 'vitest';
import { f8e4m3fnBits, f8e4m3fnValue } from '../graph/fp8.ts';
import { runGraph, type RunOptions } from './index.ts';
import { buildPlan } from './plan.ts';
import { hostValues, toHostTensor, type HostTensor } from './hostTensor.ts';
import { compareTensor } from './compareOutputs.ts';
import { tinyRuns } from './testRuns.ts';
import { bf16Tensor as bf16, bf16Values as values, moduleGraph as graph } from './testGraphs.ts';

const run = tinyRuns({ ranks: 1 });
const T = 7; // the tiny preset's token count
const H = 64;

async function outputsOf(g: ReturnType<typeof graph>, o: RunOptions): Promise<HostTensor[]> {
  const r = await runGraph(g, o);
  return [...r.outputs[0]!.values()];
}

/** Max distance in fp8 steps between two tensors of e4m3fn values. */
function fp8Steps(a: HostTensor, b: HostTensor): number {
  const x = hostValues(a),
    y = hostValues(b);
  const key = (v: number) => {
    const bits = f8e4m3fnBits(v);
    return bits & 0x80 ? -(bits & 0x7f) : bits;
  };
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(key(x[i]!) - key(y[i]!)));
  return worst;
}

const NATIVE_RMS = graph('arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]", arg2_1: "bf16[64]"', [
  'convert_element_type: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(arg1_1, torch.float32);  arg1_1 = None',
  'pow_1: "f32[s77, 64]" = torch.ops.aten.pow.Tensor_Scalar(convert_element_type, 2)',
  'mean: "f32[s77, 1]" = torch.ops.aten.mean.dim(pow_1, [-1], True);  pow_1 = None',
  'add_9: "f32[s77, 1]" = torch.ops.aten.add.Tensor(mean, 1e-06);  mean = None',
  'rsqrt: "f32[s77, 1]" = torch.ops.aten.rsqrt.default(add_9);  add_9 = None',
  'mul_7: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type, rsqrt);  convert_element_type = rsqrt = None',
  'convert_element_type_1: "bf16[s77, 64]" = torch.ops.prims.convert_element_type.default(mul_7, torch.bfloat16);  mul_7 = None',
  'mul_12: "bf16[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_1, arg2_1);  convert_element_type_1 = arg2_1 = None',
  'return (mul_12,)',
]);
const CUSTOM_RMS = graph('arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]", arg2_1: "bf16[64]"', [
  'empty: "bf16[s77, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.bfloat16)',
  'auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty, input = arg1_1, weight = arg2_1, epsilon = 1e-06);  empty = arg1_1 = arg2_1 = None',
  'getitem: "bf16[s77, 64]" = auto_functionalized[1];  auto_functionalized = None',
  'return (getitem,)',
]);

// QuantFP8.forward_native: x · reciprocal(scale), clamp(±448), the cast.
const NATIVE_STATIC_QUANT = graph('arg0_1: "f32[1]", arg1_1: "Sym(s77)", arg2_1: "bf16[s77, 64]"', [
  'convert_element_type: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(arg2_1, torch.float32);  arg2_1 = None',
  'reciprocal: "f32[1]" = torch.ops.aten.reciprocal.default(arg0_1);  arg0_1 = None',
  'mul_2: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type, reciprocal);  convert_element_type = reciprocal = None',
  'clamp_min: "f32[s77, 64]" = torch.ops.aten.clamp_min.default(mul_2, -448.0);  mul_2 = None',
  'clamp_max: "f32[s77, 64]" = torch.ops.aten.clamp_max.default(clamp_min, 448.0);  clamp_min = None',
  'convert_element_type_1: "f8e4m3fn[s77, 64]" = torch.ops.prims.convert_element_type.default(clamp_max, torch.float8_e4m3fn);  clamp_max = None',
  'return (convert_element_type_1,)',
]);
const CUSTOM_STATIC_QUANT = graph('arg0_1: "f32[1]", arg1_1: "Sym(s77)", arg2_1: "bf16[s77, 64]"', [
  'empty: "f8e4m3fn[s77, 64]" = torch.ops.aten.empty.memory_format([arg1_1, 64], dtype = torch.float8_e4m3fn)',
  'auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.static_scaled_fp8_quant.default, result = empty, input = arg2_1, scale = arg0_1);  empty = arg2_1 = arg0_1 = None',
  'getitem: "f8e4m3fn[s77, 64]" = auto_functionalized[1];  auto_functionalized = None',
  'return (getitem,)',
]);

const NATIVE_DYNAMIC_TENSOR = graph('arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]"', [
  'convert_element_type_1: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(arg1_1, torch.float32)',
  'abs_1: "bf16[s77, 64]" = torch.ops.aten.abs.default(arg1_1);  arg1_1 = None',
  'max_1: "bf16[]" = torch.ops.aten.max.default(abs_1);  abs_1 = None',
  'unsqueeze: "bf16[1]" = torch.ops.aten.unsqueeze.default(max_1, -1);  max_1 = None',
  'convert_element_type: "f32[1]" = torch.ops.prims.convert_element_type.default(unsqueeze, torch.float32);  unsqueeze = None',
  'div: "f32[1]" = torch.ops.aten.div.Tensor(convert_element_type, 448.0);  convert_element_type = None',
  'clamp_min: "f32[1]" = torch.ops.aten.clamp_min.default(div, 4.359654017857143e-06);  div = None',
  'reciprocal: "f32[1]" = torch.ops.aten.reciprocal.default(clamp_min)',
  'mul_4: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_1, reciprocal);  convert_element_type_1 = reciprocal = None',
  'clamp_min_1: "f32[s77, 64]" = torch.ops.aten.clamp_min.default(mul_4, -448.0);  mul_4 = None',
  'clamp_max: "f32[s77, 64]" = torch.ops.aten.clamp_max.default(clamp_min_1, 448.0);  clamp_min_1 = None',
  'convert_element_type_2: "f8e4m3fn[s77, 64]" = torch.ops.prims.convert_element_type.default(clamp_max, torch.float8_e4m3fn);  clamp_max = None',
  'return (convert_element_type_2, clamp_min)',
]);
const CUSTOM_DYNAMIC_TENSOR = graph('arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]"', [
  'empty: "f8e4m3fn[s77, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.float8_e4m3fn)',
  'empty_1: "f32[1]" = torch.ops.aten.empty.memory_format([1], dtype = torch.float32)',
  'auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.dynamic_scaled_fp8_quant.default, result = empty, input = arg1_1, scale = empty_1);  empty = arg1_1 = empty_1 = None',
  'getitem: "f8e4m3fn[s77, 64]" = auto_functionalized[1]',
  'getitem_1: "f32[1]" = auto_functionalized[2];  auto_functionalized = None',
  'return (getitem, getitem_1)',
]);

const NATIVE_DYNAMIC_TOKEN = graph('arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]"', [
  'abs_1: "bf16[s77, 64]" = torch.ops.aten.abs.default(arg1_1)',
  'max_1 = torch.ops.aten.max.dim(abs_1, -1);  abs_1 = None',
  'getitem: "bf16[s77]" = max_1[0];  max_1 = None',
  'convert_element_type_1: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(arg1_1, torch.float32);  arg1_1 = None',
  'unsqueeze: "bf16[s77, 1]" = torch.ops.aten.unsqueeze.default(getitem, -1);  getitem = None',
  'convert_element_type: "f32[s77, 1]" = torch.ops.prims.convert_element_type.default(unsqueeze, torch.float32);  unsqueeze = None',
  'div: "f32[s77, 1]" = torch.ops.aten.div.Tensor(convert_element_type, 448.0);  convert_element_type = None',
  'clamp_min: "f32[s77, 1]" = torch.ops.aten.clamp_min.default(div, 4.359654017857143e-06);  div = None',
  'reciprocal: "f32[s77, 1]" = torch.ops.aten.reciprocal.default(clamp_min)',
  'mul_11: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_1, reciprocal);  convert_element_type_1 = reciprocal = None',
  'clamp_min_1: "f32[s77, 64]" = torch.ops.aten.clamp_min.default(mul_11, -448.0);  mul_11 = None',
  'clamp_max: "f32[s77, 64]" = torch.ops.aten.clamp_max.default(clamp_min_1, 448.0);  clamp_min_1 = None',
  'convert_element_type_2: "f8e4m3fn[s77, 64]" = torch.ops.prims.convert_element_type.default(clamp_max, torch.float8_e4m3fn);  clamp_max = None',
  'return (convert_element_type_2, clamp_min)',
]);
const CUSTOM_DYNAMIC_TOKEN = graph('arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]"', [
  'empty: "f8e4m3fn[s77, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.float8_e4m3fn)',
  'empty_1: "f32[s77, 1]" = torch.ops.aten.empty.memory_format([arg0_1, 1], dtype = torch.float32)',
  'auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.dynamic_per_token_scaled_fp8_quant.default, result = empty, input = arg1_1, scale = empty_1, scale_ub = None);  empty = arg1_1 = empty_1 = None',
  'getitem: "f8e4m3fn[s77, 64]" = auto_functionalized[1]',
  'getitem_1: "f32[s77, 1]" = auto_functionalized[2];  auto_functionalized = None',
  'return (getitem, getitem_1)',
]);

const BACKENDS = ['cpu', 'webgpu'] as const;

describe("vLLM's native forms, planned and run", { timeout: 300_000 }, () => {
  it('native RMSNorm keeps its f32 values in f32 storages in a bf16 run, and is within 1 bf16 ulp of _C.rms_norm on CPU and WebGPU', async () => {
    const plan = buildPlan(NATIVE_RMS, { preset: 'tiny', dtype: 'bf16', ranks: 1 });
    const dtypeOf = (name: string) => plan.storages.get(name)?.dtype;
    expect(['convert_element_type', 'pow_1', 'mean', 'add_9', 'rsqrt', 'mul_7'].map(dtypeOf)).toEqual(
      Array(6).fill('f32'),
    );
    expect(['convert_element_type_1', 'mul_12'].map(dtypeOf)).toEqual(['bf16', 'bf16']);
    expect(plan.steps.filter((s) => s.kernel === 'reduce_rows')).toHaveLength(1);
    expect(plan.fed).toEqual([]);
    const inputs = new Map([
      ['arg1_1', bf16([T, H], values(1, T * H, 4))],
      ['arg2_1', bf16([H], values(2, H, 2))],
    ]);
    const got: HostTensor[] = [];
    for (const backend of BACKENDS) {
      const [native] = await outputsOf(NATIVE_RMS, run({ backend, inputs }));
      const [custom] = await outputsOf(CUSTOM_RMS, run({ backend, inputs }));
      const c = compareTensor('rms', custom!, native!, 1, 'native vs _C.rms_norm');
      expect(c.pass, `${backend}: ${c.ulps} ulps`).toBe(true);
      got.push(native!);
    }
    const c = compareTensor('rms', got[0]!, got[1]!, 1, 'cpu vs webgpu');
    expect(c.pass, `cpu vs webgpu: ${c.ulps} ulps`).toBe(true);
  });

  it('aten._to_copy casts by its dtype keyword (f32 widens into an f32 storage, none copies), and a reduction over another dim than the last is refused by node', () => {
    const g = graph('arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]"', [
      '_to_copy: "f32[s77, 64]" = torch.ops.aten._to_copy.default(arg1_1, dtype = torch.float32)',
      '_to_copy_1: "bf16[s77, 64]" = torch.ops.aten._to_copy.default(arg1_1)',
      'amax: "f32[s77]" = torch.ops.aten.amax.default(_to_copy, [1])',
      'return (_to_copy, _to_copy_1, amax)',
    ]);
    const plan = buildPlan(g, { preset: 'tiny', dtype: 'bf16', ranks: 1 });
    expect(['_to_copy', '_to_copy_1', 'amax'].map((n) => plan.storages.get(n)?.dtype)).toEqual([
      'f32',
      'bf16',
      'f32',
    ]);
    const byDim0 = graph('arg1_1: "bf16[8, 64]"', [
      'mean: "bf16[64]" = torch.ops.aten.mean.dim(arg1_1, [0])',
      'return (mean,)',
    ]);
    expect(() => buildPlan(byDim0, { preset: 'tiny', dtype: 'bf16', ranks: 1 })).toThrow(
      'node mean (aten.mean.dim): reduces over dims [0] of a 2-d tensor: only the last dim has a kernel',
    );
  });

  it('native static FP8 quant is bitwise _C.static_scaled_fp8_quant on CPU and WebGPU; its values are e4m3fn, some clamped', async () => {
    // 3/64: 1/scale is not exact, so the one correctly rounded reciprocal both take matters.
    const inputs = new Map([
      ['arg0_1', toHostTensor('f32', [1], [0.046875])],
      ['arg2_1', bf16([T, H], values(3, T * H, 30))],
    ]);
    for (const backend of BACKENDS) {
      const [native] = await outputsOf(NATIVE_STATIC_QUANT, run({ backend, inputs }));
      const [custom] = await outputsOf(CUSTOM_STATIC_QUANT, run({ backend, inputs }));
      expect(compareTensor('q', custom!, native!, 0, 'bitwise').pass, backend).toBe(true);
      const q = [...hostValues(native!)];
      expect(q.every((v) => f8e4m3fnValue(f8e4m3fnBits(v)) === v)).toBe(true);
      expect(q.filter((v) => Math.abs(v) === 448).length).toBeGreaterThan(0);
      expect(new Set(q).size).toBeGreaterThan(20);
    }
  });

  it('native dynamic per-tensor FP8 quant is bitwise _C.dynamic_scaled_fp8_quant (values and scale) on CPU and WebGPU', async () => {
    const inputs = new Map([['arg1_1', bf16([T, H], values(4, T * H, 30))]]);
    const absmax = Math.max(...hostValues(inputs.get('arg1_1')!).map(Math.abs));
    for (const backend of BACKENDS) {
      const [nq, ns] = await outputsOf(NATIVE_DYNAMIC_TENSOR, run({ backend, inputs }));
      const [cq, cs] = await outputsOf(CUSTOM_DYNAMIC_TENSOR, run({ backend, inputs }));
      expect([...hostValues(cs!)]).toEqual([Math.fround(absmax / 448)]);
      expect(compareTensor('scale', cs!, ns!, 0, 'bitwise').pass, backend).toBe(true);
      expect(compareTensor('q', cq!, nq!, 0, 'bitwise').pass, backend).toBe(true);
      // The largest magnitude lands on ±448.
      expect(Math.max(...hostValues(nq!).map(Math.abs))).toBe(448);
    }
  });

  it('native dynamic per-token FP8 quant: the same scales as _C.dynamic_per_token_scaled_fp8_quant, values within one fp8 step (x · (1/s) against x / s)', async () => {
    const inputs = new Map([['arg1_1', bf16([T, H], values(5, T * H, 30))]]);
    for (const backend of BACKENDS) {
      const [nq, ns] = await outputsOf(NATIVE_DYNAMIC_TOKEN, run({ backend, inputs }));
      const [cq, cs] = await outputsOf(CUSTOM_DYNAMIC_TOKEN, run({ backend, inputs }));
      expect(cs!.shape).toEqual([T, 1]);
      expect(compareTensor('scale', cs!, ns!, 0, 'bitwise').pass, backend).toBe(true);
      expect(fp8Steps(cq!, nq!), backend).toBeLessThanOrEqual(1);
      // Every row's largest magnitude is 448 in the custom op's result.
      const q = hostValues(cq!);
      for (let t = 0; t < T; t++)
        expect(Math.max(...[...q.slice(t * H, (t + 1) * H)].map(Math.abs))).toBe(448);
    }
  });

  it('vllm_ir.rms_norm and vllm_ir.fused_add_rms_norm compute what _C.rms_norm and _C.fused_add_rms_norm do, bitwise, on CPU and WebGPU', async () => {
    const args = 'arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]", arg2_1: "bf16[s77, 64]", arg3_1: "bf16[64]"';
    const ir = graph(args, [
      'rms_norm: "bf16[s77, 64]" = torch.ops.vllm_ir.rms_norm.default(arg1_1, arg3_1, 1e-05)',
      'fused_add_rms_norm = torch.ops.vllm_ir.fused_add_rms_norm.default(rms_norm, arg2_1, arg3_1, 1e-05);  rms_norm = None',
      'getitem: "bf16[s77, 64]" = fused_add_rms_norm[0]',
      'getitem_1: "bf16[s77, 64]" = fused_add_rms_norm[1];  fused_add_rms_norm = None',
      'rms_norm_1: "bf16[s77, 64]" = torch.ops.vllm_ir.rms_norm.default(getitem, None, 1e-06)',
      'return (getitem, getitem_1, rms_norm_1)',
    ]);
    const custom = graph(args, [
      'empty: "bf16[s77, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.bfloat16)',
      'auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty, input = arg1_1, weight = arg3_1, epsilon = 1e-05)',
      'getitem_2: "bf16[s77, 64]" = auto_functionalized[1]',
      'auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = getitem_2, residual = arg2_1, weight = arg3_1, epsilon = 1e-05)',
      'getitem: "bf16[s77, 64]" = auto_functionalized_1[1]',
      'getitem_1: "bf16[s77, 64]" = auto_functionalized_1[2]',
      'full: "bf16[64]" = torch.ops.aten.full.default([64], 1.0)',
      'empty_1: "bf16[s77, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.bfloat16)',
      'auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty_1, input = getitem, weight = full, epsilon = 1e-06)',
      'rms_norm_1: "bf16[s77, 64]" = auto_functionalized_2[1]',
      'return (getitem, getitem_1, rms_norm_1)',
    ]);
    const inputs = new Map([
      ['arg1_1', bf16([T, H], values(11, T * H, 4))],
      ['arg2_1', bf16([T, H], values(12, T * H, 4))],
      ['arg3_1', bf16([H], values(13, H, 2))],
    ]);
    for (const backend of BACKENDS) {
      const got = await outputsOf(ir, run({ backend, inputs }));
      const want = await outputsOf(custom, run({ backend, inputs }));
      expect(got).toHaveLength(3);
      got.forEach((g, i) =>
        expect(compareTensor(`out${i}`, want[i]!, g, 0, 'bitwise').pass, `${backend} ${i}`).toBe(true),
      );
    }
  });

  it('native SiluAndMul (slice, silu as x / (1 + e^−x) in f32, the cast, the product) equals _C.silu_and_mul bitwise on CPU and WebGPU', async () => {
    const args = 'arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 128]"';
    const native = graph(args, [
      'slice_1: "bf16[s77, 64]" = torch.ops.aten.slice.Tensor(arg1_1, 1, 0, 64)',
      'convert_element_type: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(slice_1, torch.float32);  slice_1 = None',
      'neg: "f32[s77, 64]" = torch.ops.aten.neg.default(convert_element_type)',
      'exp: "f32[s77, 64]" = torch.ops.aten.exp.default(neg);  neg = None',
      'add_3: "f32[s77, 64]" = torch.ops.aten.add.Tensor(exp, 1);  exp = None',
      'div: "f32[s77, 64]" = torch.ops.aten.div.Tensor(convert_element_type, add_3);  convert_element_type = add_3 = None',
      'convert_element_type_1: "bf16[s77, 64]" = torch.ops.prims.convert_element_type.default(div, torch.bfloat16);  div = None',
      'slice_2: "bf16[s77, 64]" = torch.ops.aten.slice.Tensor(arg1_1, 1, 64, 9223372036854775807);  arg1_1 = None',
      'mul_6: "bf16[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_1, slice_2);  convert_element_type_1 = slice_2 = None',
      'return (mul_6,)',
    ]);
    const custom = graph(args, [
      'empty: "bf16[s77, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.bfloat16)',
      'auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.silu_and_mul.default, result = empty, input = arg1_1);  empty = arg1_1 = None',
      'getitem: "bf16[s77, 64]" = auto_functionalized[1];  auto_functionalized = None',
      'return (getitem,)',
    ]);
    const inputs = new Map([['arg1_1', bf16([T, 2 * H], values(15, 2 * T * H, 8))]]);
    for (const backend of BACKENDS) {
      const [n] = await outputsOf(native, run({ backend, inputs }));
      const [c] = await outputsOf(custom, run({ backend, inputs }));
      // Both round silu to bf16 before the product, as vLLM's silu_kernel returns (T).
      const cmp = compareTensor('silu', c!, n!, 0, 'native vs _C.silu_and_mul');
      expect(cmp.pass, `${backend}: ${cmp.ulps} ulps`).toBe(true);
    }
  });
});
