// The FP8 quant recognizers on QuantFP8.forward_native as torch 2.13 prints it post-grad (static,
// dynamic per token, dynamic per tensor), and on the custom ops through auto_functionalized.
import { describe, expect, it } from 'vitest';
import { parseFx } from '../../fx/parse.ts';
import { ref } from '../../ir.ts';
import { indexGraph } from '../../match.ts';
import { findQuants } from './index.ts';

const quants = (text: string) => findQuants(indexGraph(parseFx(text).graph));
const lines = (...l: string[]) => l.join('\n');

const HEAD =
  'def forward(self, arg0_1: "f32[1]", arg1_1: "Sym(s77)", arg2_1: "bf16[s77, 64]", arg3_1: "bf16[s77, 64]", arg4_1: "bf16[s77, 64]"):';

const NATIVE_STATIC = [
  '    convert_element_type: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(arg2_1, torch.float32)',
  '    reciprocal: "f32[1]" = torch.ops.aten.reciprocal.default(arg0_1);  arg0_1 = None',
  '    mul_2: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type, reciprocal);  convert_element_type = reciprocal = None',
  '    clamp_min: "f32[s77, 64]" = torch.ops.aten.clamp_min.default(mul_2, -448.0);  mul_2 = None',
  '    clamp_max: "f32[s77, 64]" = torch.ops.aten.clamp_max.default(clamp_min, 448.0);  clamp_min = None',
  '    convert_element_type_1: "f8e4m3fn[s77, 64]" = torch.ops.prims.convert_element_type.default(clamp_max, torch.float8_e4m3fn);  clamp_max = None',
];
const NATIVE_PER_TOKEN = [
  '    abs_1: "bf16[s77, 64]" = torch.ops.aten.abs.default(arg3_1)',
  '    max_1 = torch.ops.aten.max.dim(abs_1, -1);  abs_1 = None',
  '    getitem: "bf16[s77]" = max_1[0];  max_1 = None',
  '    convert_element_type_3: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(arg3_1, torch.float32)',
  '    unsqueeze: "bf16[s77, 1]" = torch.ops.aten.unsqueeze.default(getitem, -1);  getitem = None',
  '    convert_element_type_2: "f32[s77, 1]" = torch.ops.prims.convert_element_type.default(unsqueeze, torch.float32);  unsqueeze = None',
  '    div: "f32[s77, 1]" = torch.ops.aten.div.Tensor(convert_element_type_2, 448.0);  convert_element_type_2 = None',
  '    clamp_min_1: "f32[s77, 1]" = torch.ops.aten.clamp_min.default(div, 4.359654017857143e-06);  div = None',
  '    reciprocal_1: "f32[s77, 1]" = torch.ops.aten.reciprocal.default(clamp_min_1)',
  '    mul_21: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_3, reciprocal_1);  convert_element_type_3 = reciprocal_1 = None',
  '    clamp_min_2: "f32[s77, 64]" = torch.ops.aten.clamp_min.default(mul_21, -448.0);  mul_21 = None',
  '    clamp_max_1: "f32[s77, 64]" = torch.ops.aten.clamp_max.default(clamp_min_2, 448.0);  clamp_min_2 = None',
  '    convert_element_type_4: "f8e4m3fn[s77, 64]" = torch.ops.prims.convert_element_type.default(clamp_max_1, torch.float8_e4m3fn);  clamp_max_1 = None',
];
const NATIVE_PER_TENSOR = [
  '    convert_element_type_6: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(arg4_1, torch.float32)',
  '    abs_2: "bf16[s77, 64]" = torch.ops.aten.abs.default(arg4_1)',
  '    max_2: "bf16[]" = torch.ops.aten.max.default(abs_2);  abs_2 = None',
  '    unsqueeze_1: "bf16[1]" = torch.ops.aten.unsqueeze.default(max_2, -1);  max_2 = None',
  '    convert_element_type_5: "f32[1]" = torch.ops.prims.convert_element_type.default(unsqueeze_1, torch.float32);  unsqueeze_1 = None',
  '    div_1: "f32[1]" = torch.ops.aten.div.Tensor(convert_element_type_5, 448.0);  convert_element_type_5 = None',
  '    clamp_min_3: "f32[1]" = torch.ops.aten.clamp_min.default(div_1, 4.359654017857143e-06);  div_1 = None',
  '    reciprocal_2: "f32[1]" = torch.ops.aten.reciprocal.default(clamp_min_3)',
  '    mul_33: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_6, reciprocal_2);  convert_element_type_6 = reciprocal_2 = None',
  '    clamp_min_4: "f32[s77, 64]" = torch.ops.aten.clamp_min.default(mul_33, -448.0);  mul_33 = None',
  '    clamp_max_2: "f32[s77, 64]" = torch.ops.aten.clamp_max.default(clamp_min_4, 448.0);  clamp_min_4 = None',
  '    convert_element_type_7: "f8e4m3fn[s77, 64]" = torch.ops.prims.convert_element_type.default(clamp_max_2, torch.float8_e4m3fn);  clamp_max_2 = None',
];
const NATIVE = lines(
  HEAD,
  ...NATIVE_STATIC,
  ...NATIVE_PER_TOKEN,
  ...NATIVE_PER_TENSOR,
  '    return (convert_element_type_1, convert_element_type_4, clamp_min_1, convert_element_type_7, clamp_min_3)',
);

const CUSTOM = lines(
  HEAD,
  '    empty: "f8e4m3fn[s77, 64]" = torch.ops.aten.empty.memory_format([arg1_1, 64], dtype = torch.float8_e4m3fn, device = device(type=\'cuda\', index=0), pin_memory = False)',
  '    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.static_scaled_fp8_quant.default, result = empty, input = arg2_1, scale = arg0_1);  empty = None',
  '    getitem_1: "f8e4m3fn[s77, 64]" = auto_functionalized[1];  auto_functionalized = None',
  '    empty_1: "f8e4m3fn[s77, 64]" = torch.ops.aten.empty.memory_format([arg1_1, 64], dtype = torch.float8_e4m3fn, device = device(type=\'cuda\', index=0), pin_memory = False)',
  '    empty_2: "f32[s77, 1]" = torch.ops.aten.empty.memory_format([arg1_1, 1], dtype = torch.float32, device = device(type=\'cuda\', index=0), pin_memory = False)',
  '    auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops._C.dynamic_per_token_scaled_fp8_quant.default, result = empty_1, input = arg3_1, scale = empty_2, scale_ub = None);  empty_1 = empty_2 = None',
  '    getitem_3: "f8e4m3fn[s77, 64]" = auto_functionalized_1[1]',
  '    getitem_4: "f32[s77, 1]" = auto_functionalized_1[2];  auto_functionalized_1 = None',
  '    empty_3: "f8e4m3fn[s77, 64]" = torch.ops.aten.empty.memory_format([arg1_1, 64], dtype = torch.float8_e4m3fn, device = device(type=\'cuda\', index=0), pin_memory = False)',
  '    empty_4: "f32[1]" = torch.ops.aten.empty.memory_format([1], dtype = torch.float32, device = device(type=\'cuda\', index=0), pin_memory = False)',
  '    auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.dynamic_scaled_fp8_quant.default, result = empty_3, input = arg4_1, scale = empty_4);  empty_3 = empty_4 = None',
  '    getitem_6: "f8e4m3fn[s77, 64]" = auto_functionalized_2[1]',
  '    getitem_7: "f32[1]" = auto_functionalized_2[2];  auto_functionalized_2 = None',
  '    return (getitem_1, getitem_3, getitem_4, getitem_6, getitem_7)',
);

describe('findQuants', () => {
  for (const [form, text] of [
    ['native', NATIVE],
    ['custom', CUSTOM],
  ] as const) {
    it(`finds static, per-token and per-tensor FP8 quants in the ${form} form`, () => {
      const { occurrences, refusals } = quants(text);
      expect(refusals).toEqual([]);
      expect(occurrences.map((o) => [o.op, o.form, o.input, Object.keys(o.outputs).sort()])).toEqual([
        ['fp8_static_tensor', form, ref('arg2_1'), ['quant']],
        ['fp8_dynamic_token', form, ref('arg3_1'), ['quant', 'scale']],
        ['fp8_dynamic_tensor', form, ref('arg4_1'), ['quant', 'scale']],
      ]);
      expect(occurrences[0]!.scale).toEqual(ref('arg0_1'));
      expect(occurrences[1]!.scale).toBeNull();
    });
  }

  it('names every node and the outputs of a native quant', () => {
    const [st, tok, ten] = quants(NATIVE).occurrences;
    expect(st!.nodes).toEqual(NATIVE_STATIC.map((l) => l.trim().split(/[: ]/)[0]));
    expect(tok!.nodes).toEqual(NATIVE_PER_TOKEN.map((l) => l.trim().split(/[: ]/)[0]));
    expect(ten!.nodes).toEqual(NATIVE_PER_TENSOR.map((l) => l.trim().split(/[: ]/)[0]));
    expect(tok!.outputs).toEqual({ quant: 'convert_element_type_4', scale: 'clamp_min_1' });
  });

  it("takes the custom ops' scratch buffers and reports them", () => {
    const [st, tok] = quants(CUSTOM).occurrences;
    expect(st!.nodes).toEqual(['empty', 'auto_functionalized', 'getitem_1']);
    expect(st!.buffers).toEqual({ quant: ref('empty') });
    expect(tok!.outputs).toEqual({ quant: 'getitem_3', scale: 'getitem_4' });
    expect(tok!.nodes).toEqual(['empty_1', 'empty_2', 'auto_functionalized_1', 'getitem_3', 'getitem_4']);
  });

  it('matches x / scale and clamp(x, -448, 448) as the static quant', () => {
    const text = lines(
      HEAD,
      '    convert_element_type: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(arg2_1, torch.float32)',
      '    div: "f32[s77, 64]" = torch.ops.aten.div.Tensor(convert_element_type, arg0_1)',
      '    clamp: "f32[s77, 64]" = torch.ops.aten.clamp.default(div, -448.0, 448.0)',
      '    q: "f8e4m3fn[s77, 64]" = torch.ops.prims.convert_element_type.default(clamp, torch.float8_e4m3fn)',
      '    return (q,)',
    );
    const [o] = quants(text).occurrences;
    expect([o!.op, o!.scale, o!.nodes]).toEqual([
      'fp8_static_tensor',
      ref('arg0_1'),
      ['convert_element_type', 'div', 'clamp', 'q'],
    ]);
  });

  it('refuses a quant whose clamped value is read from outside', () => {
    const text = NATIVE.replace(
      '    return (',
      '    spy: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(clamp_max, 2)\n    return (spy, ',
    );
    const { occurrences, refusals } = quants(text);
    expect(occurrences.map((o) => o.op)).toEqual(['fp8_dynamic_token', 'fp8_dynamic_tensor']);
    expect(refusals).toMatchObject([{ op: 'fp8_static_tensor', value: 'clamp_max', reader: 'spy' }]);
  });
});
