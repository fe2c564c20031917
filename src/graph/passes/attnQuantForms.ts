// Test fixtures: the attention block of the llama-fp8 capture (fixtures/capture/llama-fp8-tp1.py:43-66,
// unified_attention_with_output and its output reshaped to [tokens, heads · head_size]) with o_proj's
// input quantized, in each quant form vLLM's AttnQuantFusionPass meets, as Inductor's post-grad
// graph prints it (the native one as QuantFP8.forward_native prints under torch 2.13).
import { parseFx } from '../fx/parse.ts';
import type { Graph } from '../ir.ts';

const DEVICE = "device = device(type='cuda', index=0), pin_memory = False";

/**
 * `extraReader`: the graph also returns the attention output; `dtype`: the model dtype;
 * `blockScales`: NVFP4's block-scale buffer in vLLM's swizzled layout (its default) or linear
 * (`f8e4m3fn[T, 256 / 16]`, scaled_fp4_quant with is_sf_swizzled_layout = False).
 */
export function attentionGraph(
  o: {
    quant?: 'static' | 'native' | 'dynamic' | 'nvfp4';
    extraReader?: boolean;
    dtype?: string;
    blockScales?: 'swizzled' | 'linear';
  } = {},
): Graph {
  const d = o.dtype ?? 'bf16';
  const quant = {
    static: [
      `        empty_4: "f8e4m3fn[s72, 256]" = torch.ops.aten.empty.memory_format([arg0_1, 256], dtype = torch.float8_e4m3fn, ${DEVICE})`,
      '        auto_functionalized_6 = torch.ops.higher_order.auto_functionalized(torch.ops._C.static_scaled_fp8_quant.default, result = empty_4, input = view_6, scale = arg4_1);  empty_4 = view_6 = None',
      '        getitem_43: "f8e4m3fn[s72, 256]" = auto_functionalized_6[1];  auto_functionalized_6 = None',
    ],
    native: [
      '        convert_element_type_2: "f32[s72, 256]" = torch.ops.prims.convert_element_type.default(view_6, torch.float32);  view_6 = None',
      '        reciprocal: "f32[1]" = torch.ops.aten.reciprocal.default(arg4_1)',
      '        mul_17: "f32[s72, 256]" = torch.ops.aten.mul.Tensor(convert_element_type_2, reciprocal);  convert_element_type_2 = reciprocal = None',
      '        clamp_min: "f32[s72, 256]" = torch.ops.aten.clamp_min.default(mul_17, -448.0);  mul_17 = None',
      '        clamp_max: "f32[s72, 256]" = torch.ops.aten.clamp_max.default(clamp_min, 448.0);  clamp_min = None',
      '        getitem_43: "f8e4m3fn[s72, 256]" = torch.ops.prims.convert_element_type.default(clamp_max, torch.float8_e4m3fn);  clamp_max = None',
    ],
    // scaled_fp4_quant: two e2m1 a byte, the swizzled block scales (128 rows, 256 / 16 rounded to 4 columns).
    nvfp4: [
      `        empty_4: "u8[s72, 128]" = torch.ops.aten.empty.memory_format([arg0_1, 128], dtype = torch.uint8, ${DEVICE})`,
      `        empty_5: "i32[128, 4]" = torch.ops.aten.empty.memory_format([128, 4], dtype = torch.int32, ${DEVICE})`,
      '        auto_functionalized_6 = torch.ops.higher_order.auto_functionalized(torch.ops._C.scaled_fp4_quant.default, output = empty_4, input = view_6, output_scale = empty_5, input_scale = arg4_1);  empty_4 = view_6 = empty_5 = None',
      '        getitem_43: "u8[s72, 128]" = auto_functionalized_6[1]',
      '        getitem_44: "i32[128, 4]" = auto_functionalized_6[2];  auto_functionalized_6 = None',
    ],
    dynamic: [
      `        empty_4: "f8e4m3fn[s72, 256]" = torch.ops.aten.empty.memory_format([arg0_1, 256], dtype = torch.float8_e4m3fn, ${DEVICE})`,
      `        empty_5: "f32[s72, 1]" = torch.ops.aten.empty.memory_format([arg0_1, 1], dtype = torch.float32, ${DEVICE})`,
      '        auto_functionalized_6 = torch.ops.higher_order.auto_functionalized(torch.ops._C.dynamic_per_token_scaled_fp8_quant.default, result = empty_4, input = view_6, scale = empty_5, scale_ub = None);  empty_4 = view_6 = empty_5 = None',
      '        getitem_43: "f8e4m3fn[s72, 256]" = auto_functionalized_6[1];  auto_functionalized_6 = None',
    ],
  }[o.quant ?? 'static'];
  const blockScales =
    o.blockScales === 'linear'
      ? (line: string) =>
          line
            .replaceAll('"i32[128, 4]"', '"f8e4m3fn[s72, 16]"')
            .replace('([128, 4], dtype = torch.int32', '([arg0_1, 16], dtype = torch.float8_e4m3fn')
      : (line: string) => line;
  return parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      `    def forward(self, arg0_1: "Sym(s72)", arg1_1: "${d}[s72, 256]", arg2_1: "${d}[s72, 128]", arg3_1: "${d}[s72, 128]", arg4_1: "f32[1]"):`,
      `        view_4: "${d}[s72, 16, 16]" = torch.ops.aten.reshape.default(arg1_1, [-1, 16, 16]);  arg1_1 = None`,
      `        view_5: "${d}[s72, 8, 16]" = torch.ops.aten.reshape.default(arg2_1, [-1, 8, 16]);  arg2_1 = None`,
      `        view_3: "${d}[s72, 8, 16]" = torch.ops.aten.reshape.default(arg3_1, [-1, 8, 16]);  arg3_1 = None`,
      `        empty_3: "${d}[s72, 256]" = torch.ops.aten.empty.memory_format([arg0_1, 256], dtype = torch.${d === 'bf16' ? 'bfloat16' : d === 'f16' ? 'float16' : 'float32'}, ${DEVICE})`,
      `        view_1: "${d}[s72, 16, 16]" = torch.ops.aten.reshape.default(empty_3, [-1, 16, 16]);  empty_3 = None`,
      "        auto_functionalized_4 = torch.ops.higher_order.auto_functionalized(torch.ops.vllm.unified_attention_with_output.default, query = view_4, key = view_5, value = view_3, output = view_1, layer_name = 'model.layers.0.self_attn.attn', output_scale = None, output_block_scale = None);  view_4 = view_5 = view_3 = view_1 = None",
      `        getitem_37: "${d}[s72, 16, 16]" = auto_functionalized_4[1];  auto_functionalized_4 = None`,
      `        view_6: "${d}[s72, 256]" = torch.ops.aten.reshape.default(getitem_37, [arg0_1, 256])${o.extraReader ? '' : ';  getitem_37 = None'}`,
      ...quant.map(blockScales),
      o.extraReader
        ? '        return (getitem_43, getitem_37)'
        : o.quant === 'nvfp4'
          ? '        return (getitem_43, getitem_44)'
          : '        return (getitem_43,)',
    ].join('\n'),
  ).graph;
}
