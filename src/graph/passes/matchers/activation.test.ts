// silu_and_mul in the custom form and SiluAndMul.forward_native as torch 2.13 prints it post-grad
// (bf16: silu in f32 between converts; f32: no converts).
import { describe, expect, it } from 'vitest';
import { parseFx } from '../../fx/parse.ts';
import { ref } from '../../ir.ts';
import { indexGraph } from '../../match.ts';
import { findActivations } from './index.ts';

const lines = (...l: string[]) => l.join('\n');
const found = (text: string) => findActivations(indexGraph(parseFx(text).graph));

const NATIVE_BF16 = lines(
  'def forward(self, arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]", arg2_1: "bf16[64, 128]"):',
  '    mm: "bf16[s77, 128]" = torch.ops.aten.mm.default(arg1_1, arg2_1);  arg1_1 = arg2_1 = None',
  '    slice_1: "bf16[s77, 64]" = torch.ops.aten.slice.Tensor(mm, 1, 0, 64)',
  '    convert_element_type_2: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(slice_1, torch.float32);  slice_1 = None',
  '    neg: "f32[s77, 64]" = torch.ops.aten.neg.default(convert_element_type_2)',
  '    exp: "f32[s77, 64]" = torch.ops.aten.exp.default(neg);  neg = None',
  '    add_6: "f32[s77, 64]" = torch.ops.aten.add.Tensor(exp, 1);  exp = None',
  '    div: "f32[s77, 64]" = torch.ops.aten.div.Tensor(convert_element_type_2, add_6);  convert_element_type_2 = add_6 = None',
  '    convert_element_type_3: "bf16[s77, 64]" = torch.ops.prims.convert_element_type.default(div, torch.bfloat16);  div = None',
  '    slice_2: "bf16[s77, 64]" = torch.ops.aten.slice.Tensor(mm, 1, 64, 9223372036854775807);  mm = None',
  '    mul_8: "bf16[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_3, slice_2);  convert_element_type_3 = slice_2 = None',
  '    return (mul_8,)',
);
const NATIVE_F32 = lines(
  'def forward(self, arg0_1: "Sym(s77)", arg1_1: "f32[s77, 64]", arg2_1: "f32[64, 128]"):',
  '    mm: "f32[s77, 128]" = torch.ops.aten.mm.default(arg1_1, arg2_1);  arg1_1 = arg2_1 = None',
  '    slice_1: "f32[s77, 64]" = torch.ops.aten.slice.Tensor(mm, 1, 0, 64)',
  '    neg: "f32[s77, 64]" = torch.ops.aten.neg.default(slice_1)',
  '    exp: "f32[s77, 64]" = torch.ops.aten.exp.default(neg);  neg = None',
  '    add_6: "f32[s77, 64]" = torch.ops.aten.add.Tensor(exp, 1);  exp = None',
  '    div: "f32[s77, 64]" = torch.ops.aten.div.Tensor(slice_1, add_6);  slice_1 = add_6 = None',
  '    slice_2: "f32[s77, 64]" = torch.ops.aten.slice.Tensor(mm, 1, 64, 9223372036854775807);  mm = None',
  '    mul_8: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(div, slice_2);  div = slice_2 = None',
  '    return (mul_8,)',
);
const CUSTOM = lines(
  'def forward(self, arg0_1: "Sym(s77)", arg1_1: "bf16[s77, 64]", arg2_1: "bf16[64, 128]"):',
  '    mm: "bf16[s77, 128]" = torch.ops.aten.mm.default(arg1_1, arg2_1);  arg1_1 = arg2_1 = None',
  '    empty: "bf16[s77, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.bfloat16, device = device(type=\'cuda\', index=0), pin_memory = False)',
  '    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.silu_and_mul.default, result = empty, input = mm);  empty = mm = None',
  '    getitem_1: "bf16[s77, 64]" = auto_functionalized[1];  auto_functionalized = None',
  '    return (getitem_1,)',
);

describe('findActivations', () => {
  it('finds silu_and_mul in the custom, native bf16 and native f32 forms', () => {
    expect(found(CUSTOM).occurrences).toEqual([
      {
        op: 'silu_and_mul',
        form: 'custom',
        nodes: ['empty', 'auto_functionalized', 'getitem_1'],
        outputs: { out: 'getitem_1' },
        anchor: 'auto_functionalized',
        input: ref('mm'),
      },
    ]);
    const [bf16] = found(NATIVE_BF16).occurrences;
    expect(bf16).toMatchObject({ form: 'native', input: ref('mm'), outputs: { out: 'mul_8' } });
    expect(bf16!.nodes).toEqual([
      'slice_1',
      'convert_element_type_2',
      'neg',
      'exp',
      'add_6',
      'div',
      'convert_element_type_3',
      'slice_2',
      'mul_8',
    ]);
    const [f32] = found(NATIVE_F32).occurrences;
    expect(f32!.nodes).toEqual(['slice_1', 'neg', 'exp', 'add_6', 'div', 'slice_2', 'mul_8']);
  });

  it('matches silu(a) and a · sigmoid(a), and refuses an escaping gate', () => {
    const sigmoid = NATIVE_F32.replace(
      '    neg: "f32[s77, 64]" = torch.ops.aten.neg.default(slice_1)',
      '    sig: "f32[s77, 64]" = torch.ops.aten.sigmoid.default(slice_1)',
    )
      .replace(/ {4}exp: .*\n/, '')
      .replace(/ {4}add_6: .*\n/, '')
      .replace(/ {4}div: .*\n/, '    div: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(slice_1, sig)\n');
    expect(found(sigmoid).occurrences.map((o) => o.nodes)).toEqual([
      ['slice_1', 'sig', 'div', 'slice_2', 'mul_8'],
    ]);
    const escaping = NATIVE_F32.replace('    return (mul_8,)', '    return (mul_8, div)');
    expect(found(escaping).refusals).toMatchObject([{ value: 'div', reader: 'output' }]);
    // The halves must meet: x[..., :64] · x[..., 65:] is no silu_and_mul.
    expect(
      found(NATIVE_F32.replace('(mm, 1, 64, 9223372036854775807)', '(mm, 1, 65, 9223372036854775807)'))
        .occurrences,
    ).toEqual([]);
  });
});
