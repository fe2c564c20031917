// Test fixtures: one two-layer decoder tail (an embedding all-reduce into the first layer's
// rms_norm, o_proj's all-reduce into fused_add_rms_norm) in each form vLLM's matchers accept, as
// Inductor's post-grad graph prints it. The native forms are printed by torch 2.13 from
// RMSNorm.forward_native (vllm/model_executor/layers/layernorm.py) under torch.compile with a
// post_grad_custom_post_pass; the custom form as the capture fixtures print it.
import type { OpForm } from './occurrence.ts';

const lines = (...l: string[]) => l.join('\n');

export type NormModelForm = OpForm | 'native-f32';

export const NORM_FORMS: Record<NormModelForm, string> = {
  custom: lines(
    'def forward(self, arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]", arg2_1: "bf16[64]", arg3_1: "bf16[64, 64]", arg4_1: "bf16[64]"):',
    '    all_reduce: "bf16[s77, 64]" = torch.ops.vllm.all_reduce.default(arg1_1, \'tp:0\');  arg1_1 = None',
    '    empty: "bf16[s77, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.bfloat16, device = device(type=\'cuda\', index=0), pin_memory = False)',
    '    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty, input = all_reduce, weight = arg2_1, epsilon = 1e-05);  empty = arg2_1 = None',
    '    getitem_1: "bf16[s77, 64]" = auto_functionalized[1];  auto_functionalized = None',
    '    mm: "bf16[s77, 64]" = torch.ops.aten.mm.default(getitem_1, arg3_1);  getitem_1 = None',
    '    all_reduce_1: "bf16[s77, 64]" = torch.ops.vllm.all_reduce.default(mm, \'tp:0\');  mm = None',
    '    auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = all_reduce_1, residual = all_reduce, weight = arg4_1, epsilon = 1e-05);  all_reduce_1 = all_reduce = arg4_1 = None',
    '    getitem_3: "bf16[s77, 64]" = auto_functionalized_1[1]',
    '    getitem_4: "bf16[s77, 64]" = auto_functionalized_1[2];  auto_functionalized_1 = None',
    '    mm_1: "bf16[s77, 64]" = torch.ops.aten.mm.default(getitem_3, arg3_1);  getitem_3 = arg3_1 = None',
    '    return (mm_1, getitem_4)',
  ),
  'vllm-ir': lines(
    'def forward(self, arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]", arg2_1: "bf16[64]", arg3_1: "bf16[64, 64]", arg4_1: "bf16[64]"):',
    '    all_reduce: "bf16[s77, 64]" = torch.ops.vllm.all_reduce.default(arg1_1, \'tp:0\');  arg1_1 = None',
    '    rms_norm: "bf16[s77, 64]" = torch.ops.vllm_ir.rms_norm.default(all_reduce, arg2_1, 1e-05);  arg2_1 = None',
    '    mm: "bf16[s77, 64]" = torch.ops.aten.mm.default(rms_norm, arg3_1);  rms_norm = None',
    '    all_reduce_1: "bf16[s77, 64]" = torch.ops.vllm.all_reduce.default(mm, \'tp:0\');  mm = None',
    '    fused_add_rms_norm = torch.ops.vllm_ir.fused_add_rms_norm.default(all_reduce_1, all_reduce, arg4_1, 1e-05);  all_reduce_1 = all_reduce = arg4_1 = None',
    '    getitem: "bf16[s77, 64]" = fused_add_rms_norm[0]',
    '    getitem_1: "bf16[s77, 64]" = fused_add_rms_norm[1];  fused_add_rms_norm = None',
    '    mm_1: "bf16[s77, 64]" = torch.ops.aten.mm.default(getitem, arg3_1);  getitem = arg3_1 = None',
    '    return (mm_1, getitem_1)',
  ),
  native: lines(
    'def forward(self, arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]", arg2_1: "bf16[64]", arg3_1: "bf16[64, 64]", arg4_1: "bf16[64]"):',
    '    all_reduce: "bf16[s77, 64]" = torch.ops.vllm.all_reduce.default(arg1_1, \'tp:0\');  arg1_1 = None',
    '    convert_element_type: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(all_reduce, torch.float32)',
    '    pow_1: "f32[s77, 64]" = torch.ops.aten.pow.Tensor_Scalar(convert_element_type, 2)',
    '    mean: "f32[s77, 1]" = torch.ops.aten.mean.dim(pow_1, [-1], True);  pow_1 = None',
    '    add_12: "f32[s77, 1]" = torch.ops.aten.add.Tensor(mean, 1e-05);  mean = None',
    '    rsqrt: "f32[s77, 1]" = torch.ops.aten.rsqrt.default(add_12);  add_12 = None',
    '    mul_9: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type, rsqrt);  convert_element_type = rsqrt = None',
    '    convert_element_type_1: "bf16[s77, 64]" = torch.ops.prims.convert_element_type.default(mul_9, torch.bfloat16);  mul_9 = None',
    '    mul_14: "bf16[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_1, arg2_1);  convert_element_type_1 = arg2_1 = None',
    '    mm: "bf16[s77, 64]" = torch.ops.aten.mm.default(mul_14, arg3_1);  mul_14 = None',
    '    all_reduce_1: "bf16[s77, 64]" = torch.ops.vllm.all_reduce.default(mm, \'tp:0\');  mm = None',
    '    convert_element_type_4: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(all_reduce_1, torch.float32);  all_reduce_1 = None',
    '    convert_element_type_5: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(all_reduce, torch.float32);  all_reduce = None',
    '    add_40: "f32[s77, 64]" = torch.ops.aten.add.Tensor(convert_element_type_4, convert_element_type_5);  convert_element_type_4 = convert_element_type_5 = None',
    '    pow_2: "f32[s77, 64]" = torch.ops.aten.pow.Tensor_Scalar(add_40, 2)',
    '    mean_1: "f32[s77, 1]" = torch.ops.aten.mean.dim(pow_2, [-1], True);  pow_2 = None',
    '    add_53: "f32[s77, 1]" = torch.ops.aten.add.Tensor(mean_1, 1e-05);  mean_1 = None',
    '    rsqrt_1: "f32[s77, 1]" = torch.ops.aten.rsqrt.default(add_53);  add_53 = None',
    '    mul_34: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(add_40, rsqrt_1);  rsqrt_1 = None',
    '    convert_element_type_7: "bf16[s77, 64]" = torch.ops.prims.convert_element_type.default(mul_34, torch.bfloat16);  mul_34 = None',
    '    mul_39: "bf16[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_7, arg4_1);  convert_element_type_7 = arg4_1 = None',
    '    mm_1: "bf16[s77, 64]" = torch.ops.aten.mm.default(mul_39, arg3_1);  mul_39 = arg3_1 = None',
    '    convert_element_type_6: "bf16[s77, 64]" = torch.ops.prims.convert_element_type.default(add_40, torch.bfloat16);  add_40 = None',
    '    return (mm_1, convert_element_type_6)',
  ),
  'native-f32': lines(
    'def forward(self, arg0_1: "Sym(s77)", arg1_1: "f32[s77, 64]", arg2_1: "f32[64]", arg3_1: "f32[64, 64]", arg4_1: "f32[64]"):',
    '    all_reduce: "f32[s77, 64]" = torch.ops.vllm.all_reduce.default(arg1_1, \'tp:0\');  arg1_1 = None',
    '    pow_1: "f32[s77, 64]" = torch.ops.aten.pow.Tensor_Scalar(all_reduce, 2)',
    '    mean: "f32[s77, 1]" = torch.ops.aten.mean.dim(pow_1, [-1], True);  pow_1 = None',
    '    add_9: "f32[s77, 1]" = torch.ops.aten.add.Tensor(mean, 1e-05);  mean = None',
    '    rsqrt: "f32[s77, 1]" = torch.ops.aten.rsqrt.default(add_9);  add_9 = None',
    '    mul_7: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(all_reduce, rsqrt);  rsqrt = None',
    '    mul_10: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(mul_7, arg2_1);  mul_7 = arg2_1 = None',
    '    mm: "f32[s77, 64]" = torch.ops.aten.mm.default(mul_10, arg3_1);  mul_10 = None',
    '    all_reduce_1: "f32[s77, 64]" = torch.ops.vllm.all_reduce.default(mm, \'tp:0\');  mm = None',
    '    add_28: "f32[s77, 64]" = torch.ops.aten.add.Tensor(all_reduce_1, all_reduce);  all_reduce_1 = all_reduce = None',
    '    pow_2: "f32[s77, 64]" = torch.ops.aten.pow.Tensor_Scalar(add_28, 2)',
    '    mean_1: "f32[s77, 1]" = torch.ops.aten.mean.dim(pow_2, [-1], True);  pow_2 = None',
    '    add_38: "f32[s77, 1]" = torch.ops.aten.add.Tensor(mean_1, 1e-05);  mean_1 = None',
    '    rsqrt_1: "f32[s77, 1]" = torch.ops.aten.rsqrt.default(add_38);  add_38 = None',
    '    mul_24: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(add_28, rsqrt_1);  rsqrt_1 = None',
    '    mul_27: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(mul_24, arg4_1);  mul_24 = arg4_1 = None',
    '    mm_1: "f32[s77, 64]" = torch.ops.aten.mm.default(mul_27, arg3_1);  mul_27 = arg3_1 = None',
    '    return (mm_1, add_28)',
  ),
};
