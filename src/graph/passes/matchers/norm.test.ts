// The RMSNorm recognizers: the same two-layer tail in every form vLLM's matchers accept gives the
// same occurrences (op, captured values, outputs readers read), and an interior value read from
// outside is refused with the node that reads it.
import { describe, expect, it } from 'vitest';
import { parseFx } from '../../fx/parse.ts';
import { float, ref } from '../../ir.ts';
import type { Arg } from '../../ir.ts';
import { indexGraph } from '../../match.ts';
import { findNorms } from './index.ts';
import type { NormModelForm } from './normForms.ts';
import { NORM_FORMS } from './normForms.ts';

const norms = (text: string) => findNorms(indexGraph(parseFx(text).graph));
const eps = (a: Arg) =>
  typeof a === 'number' ? a : a && typeof a === 'object' && 'value' in a ? a.value : a;

describe('findNorms', () => {
  const forms = Object.keys(NORM_FORMS) as NormModelForm[];
  for (const form of forms) {
    it(`finds the first layer's rms_norm and the fused_add_rms_norm in the ${form} form`, () => {
      const { occurrences, refusals } = norms(NORM_FORMS[form]);
      expect(refusals).toEqual([]);
      expect(occurrences.map((o) => [o.op, o.form])).toEqual([
        ['rms_norm', form === 'native-f32' ? 'native' : form],
        ['fused_add_rms_norm', form === 'native-f32' ? 'native' : form],
      ]);
      const [rms, add] = occurrences;
      expect([rms!.input, rms!.weight, eps(rms!.epsilon)]).toEqual([ref('all_reduce'), ref('arg2_1'), 1e-5]);
      expect([add!.input, add!.residual, add!.weight, eps(add!.epsilon)]).toEqual([
        ref('all_reduce_1'),
        ref('all_reduce'),
        ref('arg4_1'),
        1e-5,
      ]);
      expect(Object.keys(rms!.outputs)).toEqual(['normed']);
      expect(Object.keys(add!.outputs).sort()).toEqual(['normed', 'residual']);
    });
  }

  it('names every node of a native occurrence, and the values readers read', () => {
    const [rms, add] = norms(NORM_FORMS.native).occurrences;
    expect(rms!.nodes).toEqual([
      'convert_element_type',
      'pow_1',
      'mean',
      'add_12',
      'rsqrt',
      'mul_9',
      'convert_element_type_1',
      'mul_14',
    ]);
    expect(rms!.outputs).toEqual({ normed: 'mul_14' });
    expect(rms!.anchor).toBe('convert_element_type');
    expect(add!.nodes).toEqual([
      'convert_element_type_4',
      'convert_element_type_5',
      'add_40',
      'pow_2',
      'mean_1',
      'add_53',
      'rsqrt_1',
      'mul_34',
      'convert_element_type_7',
      'mul_39',
      'convert_element_type_6',
    ]);
    expect(add!.outputs).toEqual({ normed: 'mul_39', residual: 'convert_element_type_6' });
    // In an f32 model z = x + residual is itself the new residual.
    const [, add32] = norms(NORM_FORMS['native-f32']).occurrences;
    expect(add32!.outputs).toEqual({ normed: 'mul_27', residual: 'add_28' });
  });

  it("takes the custom rms_norm's scratch result buffer, and reads results through getitems", () => {
    const [rms, add] = norms(NORM_FORMS.custom).occurrences;
    expect(rms!.nodes).toEqual(['empty', 'auto_functionalized', 'getitem_1']);
    expect(rms!.outputs).toEqual({ normed: 'getitem_1' });
    expect(add!.outputs).toEqual({ normed: 'getitem_3', residual: 'getitem_4' });
    const [irRms, irAdd] = norms(NORM_FORMS['vllm-ir']).occurrences;
    expect(irRms!.outputs).toEqual({ normed: 'rms_norm' });
    expect(irAdd!.outputs).toEqual({ normed: 'getitem', residual: 'getitem_1' });
  });

  it('tolerates x·x for pow(x, 2), mean over [H-1], and the weight multiplied before the convert', () => {
    const text = NORM_FORMS.native
      .replace(
        'pow_1: "f32[s77, 64]" = torch.ops.aten.pow.Tensor_Scalar(convert_element_type, 2)',
        'pow_1: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type, convert_element_type)',
      )
      .replace('torch.ops.aten.mean.dim(pow_2, [-1], True)', 'torch.ops.aten.mean.dim(pow_2, [1], True)')
      .replace(
        [
          'convert_element_type_7: "bf16[s77, 64]" = torch.ops.prims.convert_element_type.default(mul_34, torch.bfloat16);  mul_34 = None',
          'mul_39: "bf16[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_7, arg4_1);  convert_element_type_7 = arg4_1 = None',
        ].join('\n    '),
        [
          'mul_35: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(mul_34, arg4_1);  mul_34 = None',
          'mul_39: "bf16[s77, 64]" = torch.ops.prims.convert_element_type.default(mul_35, torch.bfloat16);  mul_35 = None',
        ].join('\n    '),
      );
    const { occurrences, refusals } = norms(text);
    expect(refusals).toEqual([]);
    expect(occurrences.map((o) => o.op)).toEqual(['rms_norm', 'fused_add_rms_norm']);
    expect(occurrences[1]!.weight).toEqual(ref('arg4_1'));
    expect(occurrences[1]!.outputs.normed).toBe('mul_39');
    expect(occurrences[1]!.nodes).toContain('mul_35');
  });

  it('refuses a native norm whose interior value is read from outside, naming the reader', () => {
    const text = NORM_FORMS.native.replace(
      '    mm_1: "bf16',
      '    spy: "f32[s77, 1]" = torch.ops.aten.mul.Tensor(rsqrt_1, 2)\n    mm_1: "bf16',
    );
    const { occurrences, refusals } = norms(text);
    expect(occurrences.map((o) => o.op)).toEqual(['rms_norm']);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({
      op: 'fused_add_rms_norm',
      form: 'native',
      value: 'rsqrt_1',
      reader: 'spy',
    });
    expect(refusals[0]!.reason).toContain('rsqrt_1');
    expect(refusals[0]!.reason).toContain('read by spy');
  });

  it('refuses a custom norm whose tuple is read other than through getitems', () => {
    const text = NORM_FORMS.custom.replace(
      '    return (mm_1, getitem_4)',
      '    return (mm_1, auto_functionalized_1)',
    );
    const { refusals } = norms(text);
    expect(refusals).toMatchObject([
      { op: 'fused_add_rms_norm', value: 'auto_functionalized_1', reader: 'output' },
    ]);
  });

  it('keeps the epsilon as written', () => {
    expect(norms(NORM_FORMS.native).occurrences[0]!.epsilon).toEqual(float(1e-5));
  });
});
