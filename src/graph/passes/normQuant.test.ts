// norm-quant and act-quant, as vLLM's RMSNormQuantFusionPass (vllm/compilation/passes/fusion/
// rms_quant_fusion.py @ 050d6da9) and ActivationQuantFusionPass (act_quant_fusion.py @ 00634b8a)
// count them: every spelling of the norm, the quant and silu_and_mul; the refusals vLLM's patterns
// and extra checks make, by content; and which pass claims a norm when the all-reduce fusion could
// take it too (pass_manager.py: AllReduceFusionPass before RMSNormQuantFusionPass).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import { parseFx } from '../fx/parse.ts';
import { printFx } from '../fx/print.ts';
import type { Graph } from '../ir.ts';
import { calledOp } from '../call.ts';
import { runPipeline } from './pipeline.ts';
import { NORM_FORMS } from './matchers/normForms.ts';
import { resolveVllmConfig, splitVllmArgs } from './vllmConfig.ts';

const lines = (...l: string[]) => l.join('\n');
const graph = (text: string): Graph => parseFx(text).graph;
const run = (g: Graph, passes: string[], opts = {}) => runPipeline(g, passes, opts);
const ops = (g: Graph) => g.nodes.map(calledOp);
const fusedOps = (g: Graph) => ops(g).filter((o) => /_quant\.default$/.test(o) && o.includes('_C.'));

// RMSNorm.forward_native → QuantFP8.forward_native (static, then per token with a residual) and
// SiluAndMul.forward_native → static quant, as torch 2.13's Inductor prints them post-grad.
const NATIVE = lines(
  'def forward(self, arg0_1: "Sym(s22)", arg1_1: "bf16[s22, 64]", arg2_1: "bf16[64]", arg3_1: "f32[1]", arg4_1: "bf16[s22, 64]", arg5_1: "bf16[64]", arg6_1: "Sym(s75)", arg7_1: "bf16[s75, 128]"):',
  '    convert_element_type_4: "f32[s22, 64]" = torch.ops.prims.convert_element_type.default(arg1_1, torch.float32)',
  '    convert_element_type_5: "f32[s22, 64]" = torch.ops.prims.convert_element_type.default(arg4_1, torch.float32);  arg4_1 = None',
  '    add_43: "f32[s22, 64]" = torch.ops.aten.add.Tensor(convert_element_type_4, convert_element_type_5);  convert_element_type_4 = convert_element_type_5 = None',
  '    pow_2: "f32[s22, 64]" = torch.ops.aten.pow.Tensor_Scalar(add_43, 2)',
  '    mean_1: "f32[s22, 1]" = torch.ops.aten.mean.dim(pow_2, [-1], True);  pow_2 = None',
  '    add_56: "f32[s22, 1]" = torch.ops.aten.add.Tensor(mean_1, 1e-06);  mean_1 = None',
  '    rsqrt_1: "f32[s22, 1]" = torch.ops.aten.rsqrt.default(add_56);  add_56 = None',
  '    mul_36: "f32[s22, 64]" = torch.ops.aten.mul.Tensor(add_43, rsqrt_1);  rsqrt_1 = None',
  '    convert_element_type_7: "bf16[s22, 64]" = torch.ops.prims.convert_element_type.default(mul_36, torch.bfloat16);  mul_36 = None',
  '    mul_41: "bf16[s22, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_7, arg5_1);  convert_element_type_7 = arg5_1 = None',
  '    abs_1: "bf16[s22, 64]" = torch.ops.aten.abs.default(mul_41)',
  '    max_1 = torch.ops.aten.max.dim(abs_1, -1);  abs_1 = None',
  '    getitem: "bf16[s22]" = max_1[0];  max_1 = None',
  '    convert_element_type: "f32[s22, 64]" = torch.ops.prims.convert_element_type.default(arg1_1, torch.float32);  arg1_1 = None',
  '    pow_1: "f32[s22, 64]" = torch.ops.aten.pow.Tensor_Scalar(convert_element_type, 2)',
  '    mean: "f32[s22, 1]" = torch.ops.aten.mean.dim(pow_1, [-1], True);  pow_1 = None',
  '    add_9: "f32[s22, 1]" = torch.ops.aten.add.Tensor(mean, 1e-05);  mean = None',
  '    rsqrt: "f32[s22, 1]" = torch.ops.aten.rsqrt.default(add_9);  add_9 = None',
  '    mul_7: "f32[s22, 64]" = torch.ops.aten.mul.Tensor(convert_element_type, rsqrt);  convert_element_type = rsqrt = None',
  '    convert_element_type_1: "bf16[s22, 64]" = torch.ops.prims.convert_element_type.default(mul_7, torch.bfloat16);  mul_7 = None',
  '    mul_12: "bf16[s22, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_1, arg2_1);  convert_element_type_1 = arg2_1 = None',
  '    convert_element_type_2: "f32[s22, 64]" = torch.ops.prims.convert_element_type.default(mul_12, torch.float32);  mul_12 = None',
  '    reciprocal: "f32[1]" = torch.ops.aten.reciprocal.default(arg3_1)',
  '    mul_17: "f32[s22, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_2, reciprocal);  convert_element_type_2 = reciprocal = None',
  '    clamp_min: "f32[s22, 64]" = torch.ops.aten.clamp_min.default(mul_17, -448.0);  mul_17 = None',
  '    clamp_max: "f32[s22, 64]" = torch.ops.aten.clamp_max.default(clamp_min, 448.0);  clamp_min = None',
  '    convert_element_type_3: "f8e4m3fn[s22, 64]" = torch.ops.prims.convert_element_type.default(clamp_max, torch.float8_e4m3fn);  clamp_max = None',
  '    convert_element_type_9: "f32[s22, 64]" = torch.ops.prims.convert_element_type.default(mul_41, torch.float32);  mul_41 = None',
  '    unsqueeze: "bf16[s22, 1]" = torch.ops.aten.unsqueeze.default(getitem, -1);  getitem = None',
  '    convert_element_type_8: "f32[s22, 1]" = torch.ops.prims.convert_element_type.default(unsqueeze, torch.float32);  unsqueeze = None',
  '    div: "f32[s22, 1]" = torch.ops.aten.div.Tensor(convert_element_type_8, 448.0);  convert_element_type_8 = None',
  '    clamp_min_1: "f32[s22, 1]" = torch.ops.aten.clamp_min.default(div, 4.359654017857143e-06);  div = None',
  '    reciprocal_1: "f32[s22, 1]" = torch.ops.aten.reciprocal.default(clamp_min_1)',
  '    mul_55: "f32[s22, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_9, reciprocal_1);  convert_element_type_9 = reciprocal_1 = None',
  '    clamp_min_2: "f32[s22, 64]" = torch.ops.aten.clamp_min.default(mul_55, -448.0);  mul_55 = None',
  '    clamp_max_1: "f32[s22, 64]" = torch.ops.aten.clamp_max.default(clamp_min_2, 448.0);  clamp_min_2 = None',
  '    convert_element_type_10: "f8e4m3fn[s22, 64]" = torch.ops.prims.convert_element_type.default(clamp_max_1, torch.float8_e4m3fn);  clamp_max_1 = None',
  '    convert_element_type_6: "bf16[s22, 64]" = torch.ops.prims.convert_element_type.default(add_43, torch.bfloat16);  add_43 = None',
  '    slice_1: "bf16[s75, 64]" = torch.ops.aten.slice.Tensor(arg7_1, 1, 0, 64)',
  '    convert_element_type_11: "f32[s75, 64]" = torch.ops.prims.convert_element_type.default(slice_1, torch.float32);  slice_1 = None',
  '    neg: "f32[s75, 64]" = torch.ops.aten.neg.default(convert_element_type_11)',
  '    exp: "f32[s75, 64]" = torch.ops.aten.exp.default(neg);  neg = None',
  '    add_109: "f32[s75, 64]" = torch.ops.aten.add.Tensor(exp, 1);  exp = None',
  '    div_1: "f32[s75, 64]" = torch.ops.aten.div.Tensor(convert_element_type_11, add_109);  convert_element_type_11 = add_109 = None',
  '    convert_element_type_12: "bf16[s75, 64]" = torch.ops.prims.convert_element_type.default(div_1, torch.bfloat16);  div_1 = None',
  '    slice_2: "bf16[s75, 64]" = torch.ops.aten.slice.Tensor(arg7_1, 1, 64, 9223372036854775807);  arg7_1 = None',
  '    mul_67: "bf16[s75, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_12, slice_2);  convert_element_type_12 = slice_2 = None',
  '    convert_element_type_13: "f32[s75, 64]" = torch.ops.prims.convert_element_type.default(mul_67, torch.float32);  mul_67 = None',
  '    reciprocal_2: "f32[1]" = torch.ops.aten.reciprocal.default(arg3_1);  arg3_1 = None',
  '    mul_72: "f32[s75, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_13, reciprocal_2);  convert_element_type_13 = reciprocal_2 = None',
  '    clamp_min_3: "f32[s75, 64]" = torch.ops.aten.clamp_min.default(mul_72, -448.0);  mul_72 = None',
  '    clamp_max_2: "f32[s75, 64]" = torch.ops.aten.clamp_max.default(clamp_min_3, 448.0);  clamp_min_3 = None',
  '    convert_element_type_14: "f8e4m3fn[s75, 64]" = torch.ops.prims.convert_element_type.default(clamp_max_2, torch.float8_e4m3fn);  clamp_max_2 = None',
  '    return (convert_element_type_3, convert_element_type_10, clamp_min_1, convert_element_type_6, convert_element_type_14)',
);

const HEAD =
  'def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 64]", arg2_1: "bf16[64]", arg3_1: "f32[1]", arg4_1: "bf16[s72, 64]", arg5_1: "bf16[64]", arg6_1: "bf16[s72, 128]", arg7_1: "bf16[64, 64]"):';
const DEVICE = "device = device(type='cuda', index=0), pin_memory = False";
const empty = (name: string, type: string, dims: string, dtype: string) =>
  `    ${name}: "${type}" = torch.ops.aten.empty.memory_format(${dims}, dtype = torch.${dtype}, ${DEVICE})`;

/** The first layer's rms_norm (custom) and a fused_add_rms_norm, as the capture fixtures print them. */
const CUSTOM_NORMS = [
  empty('empty', 'bf16[s72, 64]', '[arg0_1, 64]', 'bfloat16'),
  '    auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty, input = arg1_1, weight = arg2_1, epsilon = 1e-05);  empty = None',
  '    getitem_1: "bf16[s72, 64]" = auto_functionalized[1];  auto_functionalized = None',
  '    auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = arg4_1, residual = arg1_1, weight = arg5_1, epsilon = 1e-05)',
  '    getitem_5: "bf16[s72, 64]" = auto_functionalized_2[1]',
  '    getitem_6: "bf16[s72, 64]" = auto_functionalized_2[2];  auto_functionalized_2 = None',
];
const staticQuant = (n: string, input: string, scale = 'arg3_1') => [
  empty(`empty_q${n}`, 'f8e4m3fn[s72, 64]', '[arg0_1, 64]', 'float8_e4m3fn'),
  `    af_q${n} = torch.ops.higher_order.auto_functionalized(torch.ops._C.static_scaled_fp8_quant.default, result = empty_q${n}, input = ${input}, scale = ${scale})`,
  `    q${n}: "f8e4m3fn[s72, 64]" = af_q${n}[1];  af_q${n} = None`,
];
const perTokenQuant = (n: string, input: string) => [
  empty(`empty_q${n}`, 'f8e4m3fn[s72, 64]', '[arg0_1, 64]', 'float8_e4m3fn'),
  empty(`empty_s${n}`, 'f32[s72, 1]', '[arg0_1, 1]', 'float32'),
  `    af_q${n} = torch.ops.higher_order.auto_functionalized(torch.ops._C.dynamic_per_token_scaled_fp8_quant.default, result = empty_q${n}, input = ${input}, scale = empty_s${n}, scale_ub = None)`,
  `    q${n}: "f8e4m3fn[s72, 64]" = af_q${n}[1]`,
  `    s${n}: "f32[s72, 1]" = af_q${n}[2];  af_q${n} = None`,
];
const perTensorQuant = (n: string, input: string) => [
  empty(`empty_q${n}`, 'f8e4m3fn[s72, 64]', '[arg0_1, 64]', 'float8_e4m3fn'),
  empty(`empty_s${n}`, 'f32[1]', '[1]', 'float32'),
  `    af_q${n} = torch.ops.higher_order.auto_functionalized(torch.ops._C.dynamic_scaled_fp8_quant.default, result = empty_q${n}, input = ${input}, scale = empty_s${n})`,
  `    q${n}: "f8e4m3fn[s72, 64]" = af_q${n}[1]`,
  `    s${n}: "f32[1]" = af_q${n}[2];  af_q${n} = None`,
];
/** per_token_group_fp8_quant as vLLM's group patterns write it (RMSNormGroupQuantPattern.pattern). */
const groupQuant = (n: string, input: string, group: number, transposed = false) => [
  empty(`empty_q${n}`, 'f8e4m3fn[s72, 64]', '[arg0_1, 64]', 'float8_e4m3fn'),
  empty(`empty_s${n}`, `f32[s72, ${Math.ceil(64 / group)}]`, `[arg0_1, ${Math.ceil(64 / group)}]`, 'float32'),
  `    af_q${n} = torch.ops.higher_order.auto_functionalized(torch.ops._C.per_token_group_fp8_quant.default, input = ${input}, output_q = empty_q${n}, output_s = empty_s${n}, group_size = ${group}, eps = 1e-10, fp8_min = -448.0, fp8_max = 448.0, scale_ue8m0 = False, dummy_is_scale_transposed = ${transposed ? 'True' : 'False'}, dummy_is_tma_aligned = False)`,
  `    q${n}: "f8e4m3fn[s72, 64]" = af_q${n}[1]`,
  `    s${n}: "f32[s72, ${Math.ceil(64 / group)}]" = af_q${n}[2];  af_q${n} = None`,
];
const custom = (quants: string[], ret: string) =>
  graph(lines(HEAD, ...CUSTOM_NORMS, ...quants, `    return (${ret})`));

describe('norm-quant (RMSNormQuantFusionPass)', () => {
  it("fuses torch 2.13's native norm → static quant and fused-add norm → per-token quant, as vLLM's matchers do", () => {
    const r = run(graph(NATIVE), ['norm-quant']);
    const s = r.stages[0]!;
    // RMSNormStaticQuantPattern and FusedAddRMSNormDynamicQuantPattern (eps 1e-5 and 1e-6 both registered).
    expect(s.matches.map((m) => m.site)).toEqual(['convert_element_type_4', 'convert_element_type']);
    expect(fusedOps(r.output)).toEqual([
      '_C.rms_norm_dynamic_per_token_quant.default',
      '_C.rms_norm_static_fp8_quant.default',
    ]);
    // Nothing of either native decomposition is left; the silu_and_mul → quant is act-quant's.
    expect(ops(r.output).filter((o) => o === 'aten.rsqrt.default' || o === 'aten.max.dim')).toEqual([]);
    expect(s.diagnostics).toEqual([]);
    const text = printFx(r.output);
    // vLLM's replacements: torch.empty(input.shape) for the static rms_norm one, empty_like and
    // make_scale ([tokens, 1] f32) for the dynamic one; keyword order as vLLM passes them.
    expect(text).toContain(
      'auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm_dynamic_per_token_quant.default, result = empty_like, input = arg1_1, weight = arg5_1, scale = empty, epsilon = 1e-06, scale_ub = None, residual = arg4_1)',
    );
    expect(text).toContain(
      'empty: "f32[s22, 1]" = torch.ops.aten.empty.memory_format([arg0_1, 1], dtype = torch.float32',
    );
    expect(text).toContain(
      'torch.ops._C.rms_norm_static_fp8_quant.default, result = empty_1, input = arg1_1, weight = arg2_1, scale = arg3_1, epsilon = 1e-05)',
    );
    // The outputs: quant [1], scale [2], residual [3]; the static one's quant [1].
    expect(r.output.outputs).toEqual([
      { kind: 'ref', name: 'getitem_4' },
      { kind: 'ref', name: 'getitem_1' },
      { kind: 'ref', name: 'getitem_2' },
      { kind: 'ref', name: 'getitem_3' },
      { kind: 'ref', name: 'convert_element_type_14' },
    ]);
    expect(printFx(parseFx(text).graph)).toBe(text);
  });

  it('fuses the custom ops: static after rms_norm and fused_add_rms_norm, per token, per group 128 and 64', () => {
    const cases: [string[], string, string][] = [
      [staticQuant('0', 'getitem_1'), 'q0, getitem_5, getitem_6', '_C.rms_norm_static_fp8_quant.default'],
      [
        staticQuant('1', 'getitem_5'),
        'q1, getitem_1, getitem_6',
        '_C.fused_add_rms_norm_static_fp8_quant.default',
      ],
      [
        perTokenQuant('1', 'getitem_5'),
        'q1, s1, getitem_6, getitem_1',
        '_C.rms_norm_dynamic_per_token_quant.default',
      ],
      [
        groupQuant('1', 'getitem_5', 128),
        'q1, s1, getitem_6, getitem_1',
        '_C.rms_norm_per_block_quant.default',
      ],
      [
        groupQuant('0', 'getitem_1', 64),
        'q0, s0, getitem_5, getitem_6',
        '_C.rms_norm_per_block_quant.default',
      ],
    ];
    for (const [quant, ret, fusedOp] of cases) {
      const r = run(custom(quant, ret), ['norm-quant']);
      expect(r.stages[0]!.matches, fusedOp).toHaveLength(1);
      expect(fusedOps(r.output)).toEqual([fusedOp]);
    }
  });

  it("passes the group quant's scale buffer and layout through, and reads [1] result, [2] scale, [3] residual", () => {
    const r = run(custom(groupQuant('1', 'getitem_5', 128, true), 'q1, s1, getitem_6'), ['norm-quant']);
    const text = printFx(r.output);
    expect(text).toContain(
      'torch.ops._C.rms_norm_per_block_quant.default, result = empty_like, input = arg4_1, weight = arg5_1, scale = empty_s1, epsilon = 1e-05, scale_ub = None, residual = arg1_1, group_size = 128, is_scale_transposed = True)',
    );
    const index = new Map(r.output.nodes.filter((n) => n.op === 'getitem').map((n) => [n.name, n.args[1]]));
    const outputs = (r.output.outputs ?? []).map((o) =>
      o && typeof o === 'object' && 'name' in o ? o.name : '',
    );
    expect(outputs.map((o) => index.get(o))).toEqual([1, 2, 3]);
    // The model's output_s buffer stays: the fused op writes the scales into it.
    expect(r.output.nodes.map((n) => n.name)).toContain('empty_s1');
  });

  it('matches the vLLM IR norm', () => {
    const text = NORM_FORMS['vllm-ir']
      .replace(
        '    mm: "bf16[s77, 64]" = torch.ops.aten.mm.default(rms_norm, arg3_1);  rms_norm = None',
        [
          '    empty_q: "f8e4m3fn[s77, 64]" = torch.ops.aten.empty.memory_format([arg0_1, 64], dtype = torch.float8_e4m3fn)',
          '    af_q = torch.ops.higher_order.auto_functionalized(torch.ops._C.static_scaled_fp8_quant.default, result = empty_q, input = rms_norm, scale = arg5_1)',
          '    q: "f8e4m3fn[s77, 64]" = af_q[1]',
          '    mm: "bf16[s77, 64]" = torch.ops.aten.mm.default(arg1_1, arg3_1)',
        ].join('\n'),
      )
      .replace('arg4_1: "bf16[64]"):', 'arg4_1: "bf16[64]", arg5_1: "f32[1]"):')
      .replace('return (mm_1, getitem_1)', 'return (mm_1, getitem_1, q)');
    const r = run(graph(text), ['norm-quant']);
    expect(r.stages[0]!.matches.map((m) => m.site)).toEqual(['rms_norm']);
    expect(fusedOps(r.output)).toEqual(['_C.rms_norm_static_fp8_quant.default']);
  });

  describe('refusals, each naming the node or gate', () => {
    const refusal = (g: Graph, opts = {}) => {
      const s = run(g, ['norm-quant'], opts).stages[0]!;
      expect(s.matches).toEqual([]);
      return s.diagnostics;
    };

    it('a second reader of the normed output keeps the norm (Inductor refuses an escaping value)', () => {
      const g = custom(
        [
          ...staticQuant('0', 'getitem_1'),
          '    mm: "bf16[s72, 64]" = torch.ops.aten.mm.default(getitem_1, arg7_1)',
        ],
        'q0, mm',
      );
      expect(refusal(g)).toEqual([
        expect.objectContaining({
          pass: 'norm-quant',
          node: 'auto_functionalized',
          blocker: 'mm',
          reason: expect.stringMatching(
            /getitem_1, the normed output of the rms_norm at auto_functionalized, is also read by mm/,
          ),
        }),
      ]);
    });

    it('a dynamic per-tensor scale: vLLM has no such fused op', () => {
      expect(refusal(custom(perTensorQuant('0', 'getitem_1'), 'q0, s0'))[0]!.reason).toMatch(
        /over the whole tensor: vLLM fuses a norm with a static per-tensor, a dynamic per-token or a per-group/,
      );
    });

    it('an epsilon vLLM registers no pattern for', () => {
      const g = custom(staticQuant('0', 'getitem_1'), 'q0');
      const text = printFx(g).replace('epsilon = 1e-05)', 'epsilon = 0.001)');
      expect(refusal(graph(text))[0]!.reason).toMatch(/eps 0.001 .*1e-5 and 1e-6 only/);
    });

    it('an input and a weight of different dtypes (_rms_input_weight_dtype_match)', () => {
      const g = graph(
        printFx(custom(staticQuant('0', 'getitem_1'), 'q0')).replace(
          'arg2_1: "bf16[64]"',
          'arg2_1: "f32[64]"',
        ),
      );
      expect(refusal(g)[0]!.reason).toMatch(/reads a bf16 input and a f32 weight/);
    });

    it('a group size vLLM does not register', () => {
      expect(refusal(custom(groupQuant('0', 'getitem_1', 32), 'q0, s0'))[0]!.reason).toMatch(
        /group size 32 .* 128 and 64 only/,
      );
    });

    it('an NVFP4 quant after a norm: the pass has no NVFP4 pattern', () => {
      const g = custom(
        [
          '    empty_q: "u8[s72, 32]" = torch.ops.aten.empty.memory_format([arg0_1, 32], dtype = torch.uint8)',
          '    empty_s: "i32[128, 4]" = torch.ops.aten.empty.memory_format([128, 4], dtype = torch.int32)',
          '    af_q = torch.ops.higher_order.auto_functionalized(torch.ops._C.scaled_fp4_quant.default, output = empty_q, input = getitem_1, output_scale = empty_s, input_scale = arg3_1)',
          '    q: "u8[s72, 32]" = af_q[1]',
          '    s: "i32[128, 4]" = af_q[2]',
        ],
        'q, s',
      );
      expect(refusal(g)[0]!.reason).toMatch(/no NVFP4 pattern/);
    });

    it("a native norm whose interior value is read elsewhere: the matcher's refusal, naming the reader", () => {
      const text = NATIVE.replace(
        'return (convert_element_type_3,',
        'return (convert_element_type_1, convert_element_type_3,',
      ).replace('convert_element_type_1 = arg2_1 = None', 'arg2_1 = None');
      const s = run(graph(text), ['norm-quant']).stages[0]!;
      expect(s.matches.map((m) => m.site)).toEqual(['convert_element_type_4']);
      expect(s.diagnostics).toEqual([
        expect.objectContaining({
          node: 'convert_element_type',
          blocker: 'output',
          reason: expect.stringMatching(
            /^convert_element_type_1, inside the rms_norm at convert_element_type \(native form\), is read by the graph's return/,
          ),
        }),
      ]);
    });

    it('a quant whose input no norm produced names what did', () => {
      const g = custom(staticQuant('0', 'arg4_1'), 'q0, getitem_1');
      expect(refusal(g)).toEqual([
        expect.objectContaining({
          node: 'af_q0',
          reason:
            'the static per-tensor FP8 quant at af_q0 quantizes the graph input arg4_1, not the normed output of an RMSNorm',
        }),
      ]);
    });
  });

  it('takes the norm the all-reduce fusion could take only when that fusion does not (pass_manager.py order)', () => {
    // TP 2: all_reduce → fused_add_rms_norm → static quant. Both AllReduceFusedAddRMSNormStaticQuantFP8Pattern
    // and FusedAddRMSNormStaticQuantPattern match it; vLLM runs the all-reduce fusion first, which
    // takes the norm and its quant (pattern_code 2), so norm-quant finds no norm.
    const tp2 = lines(
      'def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, 64]", arg3_1: "f32[1]", arg4_1: "bf16[s72, 64]", arg5_1: "bf16[64]"):',
      '    all_reduce: "bf16[s72, 64]" = torch.ops.vllm.all_reduce.default(arg4_1, \'tp:0\')',
      '    auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = all_reduce, residual = arg1_1, weight = arg5_1, epsilon = 1e-05)',
      '    getitem_5: "bf16[s72, 64]" = auto_functionalized_2[1]',
      '    getitem_6: "bf16[s72, 64]" = auto_functionalized_2[2];  auto_functionalized_2 = None',
      ...staticQuant('1', 'getitem_5'),
      '    return (q1, getitem_6)',
    );
    const both = run(graph(tp2), ['allreduce-rmsnorm', 'norm-quant'], { worldSize: 2 });
    expect(both.stages.map((s) => [s.pass, s.matches.length])).toEqual([
      ['allreduce-rmsnorm', 1],
      ['norm-quant', 0],
    ]);
    expect(
      both.output.nodes.find((n) => n.kwargs['pattern_code'] !== undefined)!.kwargs['pattern_code'],
    ).toBe(2);
    expect(fusedOps(both.output)).toEqual([]);
    // Where the all-reduce fusion refuses (world size 3 is not one FlashInfer serves), norm-quant
    // takes the norm after it and the all-reduce stays.
    const ws3 = run(graph(tp2), ['allreduce-rmsnorm', 'norm-quant'], { worldSize: 3 });
    expect(ws3.stages.map((s) => [s.pass, s.matches.length])).toEqual([
      ['allreduce-rmsnorm', 0],
      ['norm-quant', 1],
    ]);
    expect(ops(ws3.output)).toContain('vllm.all_reduce.default');
    expect(fusedOps(ws3.output)).toEqual(['_C.fused_add_rms_norm_static_fp8_quant.default']);
  });
});

describe('act-quant (ActivationQuantFusionPass)', () => {
  const SILU = [
    empty('empty_a', 'bf16[s72, 64]', '[arg0_1, 64]', 'bfloat16'),
    '    af_a = torch.ops.higher_order.auto_functionalized(torch.ops._C.silu_and_mul.default, result = empty_a, input = arg6_1);  empty_a = None',
    '    act: "bf16[s72, 64]" = af_a[1];  af_a = None',
  ];
  const NVFP4 = [
    '    empty_q: "u8[s72, 32]" = torch.ops.aten.empty.memory_format([arg0_1, 32], dtype = torch.uint8)',
    '    empty_s: "i32[128, 4]" = torch.ops.aten.empty.memory_format([128, 4], dtype = torch.int32)',
    '    af_q = torch.ops.higher_order.auto_functionalized(torch.ops._C.scaled_fp4_quant.default, output = empty_q, input = act, output_scale = empty_s, input_scale = arg3_1)',
    '    q: "u8[s72, 32]" = af_q[1]',
    '    s: "i32[128, 4]" = af_q[2]',
  ];
  const g = (quant: string[], ret: string) => graph(lines(HEAD, ...SILU, ...quant, `    return (${ret})`));

  it('fuses the native silu_and_mul → static quant of torch 2.13', () => {
    const r = run(graph(NATIVE), ['act-quant']);
    expect(r.stages[0]!.matches.map((m) => m.site)).toEqual(['slice_1']);
    expect(printFx(r.output)).toContain(
      'torch.ops._C.silu_and_mul_quant.default, result = empty, input = arg7_1, scale = arg3_1)',
    );
    expect(printFx(r.output)).toContain(
      'empty: "f8e4m3fn[s75, 64]" = torch.ops.aten.empty.memory_format([arg6_1, 64], dtype = torch.float8_e4m3fn',
    );
  });

  it('fuses the custom silu_and_mul → static FP8 quant (SiluMulFp8StaticQuantPattern)', () => {
    const r = run(g(staticQuant('0', 'act'), 'q0'), ['act-quant']);
    expect(r.stages[0]!.matches).toHaveLength(1);
    expect(fusedOps(r.output)).toEqual(['_C.silu_and_mul_quant.default']);
    expect(ops(r.output)).not.toContain('_C.static_scaled_fp8_quant.default');
  });

  it('fuses NVFP4 only on Blackwell, where silu_and_mul_nvfp4_quant exists, writing the same buffers', () => {
    const hopper = run(g(NVFP4, 'q, s'), ['act-quant']).stages[0]!;
    expect(hopper.matches).toEqual([]);
    expect(hopper.diagnostics).toEqual([
      expect.objectContaining({ node: 'af_a', blocker: 'gpu', fix: '--gpu blackwell' }),
    ]);
    const r = run(g(NVFP4, 'q, s'), ['act-quant'], { gpu: 'blackwell' });
    expect(r.stages[0]!.matches).toHaveLength(1);
    expect(printFx(r.output)).toContain(
      'torch.ops._C.silu_and_mul_nvfp4_quant.default, result = empty_q, result_block_scale = empty_s, input = arg6_1, input_global_scale = arg3_1)',
    );
  });

  it('refuses a second reader, a dynamic quant, an interior value read elsewhere, and names them', () => {
    const second = run(
      g(
        [...staticQuant('0', 'act'), '    mm: "bf16[s72, 64]" = torch.ops.aten.mm.default(act, arg7_1)'],
        'q0, mm',
      ),
      ['act-quant'],
    ).stages[0]!;
    expect(second.matches).toEqual([]);
    expect(second.diagnostics[0]).toMatchObject({ node: 'af_a', blocker: 'mm' });
    const dyn = run(g(perTokenQuant('0', 'act'), 'q0, s0'), ['act-quant']).stages[0]!;
    expect(dyn.matches).toEqual([]);
    const native = NATIVE.replace(
      'return (convert_element_type_3,',
      'return (convert_element_type_12, convert_element_type_3,',
    ).replace('convert_element_type_12 = slice_2 = None', 'slice_2 = None');
    const refused = run(graph(native), ['act-quant']).stages[0]!;
    expect(refused.matches).toEqual([]);
    expect(refused.diagnostics).toEqual([
      expect.objectContaining({
        node: 'slice_1',
        blocker: 'output',
        reason: expect.stringMatching(/convert_element_type_12/),
      }),
    ]);
    expect(dyn.diagnostics[0]!.reason).toMatch(
      /dynamic per-token FP8 quant at af_q0: vLLM fuses silu_and_mul with a static FP8, a per-group FP8 \(128, 64\) or an NVFP4 quant/,
    );
  });
});

describe('vLLM order: norm-quant then act-quant', () => {
  it('both fire on the native graph, and norm-quant leaves the silu_and_mul quant to act-quant unexplained', () => {
    const r = run(graph(NATIVE), ['norm-quant', 'act-quant']);
    expect(r.stages.map((s) => [s.pass, s.matches.length, s.diagnostics.length])).toEqual([
      ['norm-quant', 2, 0],
      ['act-quant', 1, 0],
    ]);
    expect(fusedOps(r.output)).toHaveLength(3);
  });
});

describe('the FP8 Llama capture at TP 1 (fixtures/capture/llama-fp8-tp1.py)', () => {
  const DIR = new URL('../../../fixtures/capture/', import.meta.url).pathname;
  const load = (f: string) => importGraph(readFileSync(DIR + f, 'utf8'), { fileName: f }).graph;

  it("counts 2L norm + quant and L silu_and_mul + quant sites with vLLM's flags, the final norm unquantized", () => {
    // vLLM's -O2 with quant_fp8 as a custom op (enable_norm_fusion / enable_act_fusion): TP 1, so no
    // all-reduce fusion; RMSNormQuantFusionPass then ActivationQuantFusionPass (pass_manager.py).
    const { vllm } = splitVllmArgs(['-O2', '-cc.custom_ops=["+quant_fp8"]']);
    const cfg = resolveVllmConfig(vllm!);
    expect(cfg.passes).toEqual(['noop-elimination', 'norm-quant', 'act-quant', 'vllm-ir-lowering']);
    for (const file of ['llama-fp8-tp1.py', 'llama-fp8-tp1.graph.txt']) {
      const r = run(load(file), cfg.passes, cfg.options);
      // L = 2: each layer's input norm and post-attention norm feed a static quant (qkv, gate_up);
      // each MLP's silu_and_mul feeds the down projection's quant. The model's final norm is returned.
      expect(
        r.stages.map((s) => [s.pass, s.matches.length]),
        file,
      ).toEqual([
        ['noop-elimination', 0],
        ['norm-quant', 4],
        ['act-quant', 2],
        ['vllm-ir-lowering', 0],
      ]);
      expect(r.stages[1]!.diagnostics, file).toEqual([]);
      expect(ops(r.output).filter((o) => o === '_C.static_scaled_fp8_quant.default')).toEqual([]);
    }
  });
});
