// vLLM's AllReduceFusionPass as of PR #28841, rule by rule: the TP group literal, the quant
// patterns, matching through auto_functionalized_v2, fusing graphs that carry no shapes, and the
// norm in every form vLLM's matchers accept (custom, vLLM IR, native).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFx } from '../fx/parse.ts';
import type { Graph, Node, ValueType } from '../ir.ts';
import { float, ref } from '../ir.ts';
import { diagnose, runPipeline } from './pipeline.ts';
import { calledOp, functionalizedTarget } from '../call.ts';
import type { NormModelForm } from './matchers/normForms.ts';
import { NORM_FORMS } from './matchers/normForms.ts';
import { findNorms } from './matchers/index.ts';
import { indexGraph } from '../match.ts';
import { FUSED_ALLREDUCE_NORM } from './patternOps.ts';

const FX = new URL('../../../fixtures/fx/', import.meta.url).pathname;
const FUSED = FUSED_ALLREDUCE_NORM;
const fusedNodes = (g: Graph) => g.nodes.filter((n) => functionalizedTarget(n) === FUSED);
const byName = (g: Graph, name: string) => g.nodes.find((n) => n.name === name);
const fuse = (text: string, opts = {}) =>
  runPipeline(parseFx(text).graph, ['allreduce-rmsnorm'], { worldSize: 4, ...opts });
const lines = (...l: string[]) => l.join('\n');

// A decoder layer's tail as vLLM's post-grad graph prints it: o_proj's all-reduce into the
// post-attention norm, whose output feeds the next GEMM's FP8 quant.
const FUSED_ADD_THEN_FP8 = (extraReader = '') =>
  lines(
    'all_reduce_1: "bf16[s72, 4096]" = torch.ops.vllm.all_reduce.default(mm_1, \'tp:0\');  mm_1 = None',
    'auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = all_reduce_1, residual = getitem_5, weight = arg7_1, epsilon = 1e-05);  all_reduce_1 = getitem_5 = arg7_1 = None',
    'getitem_6: "bf16[s72, 4096]" = auto_functionalized_2[1]',
    'getitem_7: "bf16[s72, 4096]" = auto_functionalized_2[2];  auto_functionalized_2 = None',
    'empty_2: "f8e4m3fn[s72, 4096]" = torch.ops.aten.empty.memory_format([arg0_1, 4096], dtype = torch.float8_e4m3fn, device = device(type=\'cuda\', index=0), pin_memory = False)',
    'auto_functionalized_3 = torch.ops.higher_order.auto_functionalized(torch.ops._C.static_scaled_fp8_quant.default, result = empty_2, input = getitem_6, scale = arg8_1);  empty_2 = getitem_6 = None',
    'getitem_9: "f8e4m3fn[s72, 4096]" = auto_functionalized_3[1];  auto_functionalized_3 = None',
    extraReader,
  );

// The first layer's input norm: embedding all-reduce → rms_norm → FP8 quant; the residual
// stream reads the all-reduce too.
const RMS_THEN_FP8 = lines(
  'all_reduce: "bf16[s72, 4096]" = torch.ops.vllm.all_reduce.default(embedding, \'tp:0\');  embedding = None',
  'empty: "bf16[s72, 4096]" = torch.ops.aten.empty.memory_format([arg0_1, 4096], dtype = torch.bfloat16, device = device(type=\'cuda\', index=0), pin_memory = False)',
  'auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = empty, input = all_reduce, weight = arg2_1, epsilon = 1e-05);  empty = arg2_1 = None',
  'getitem_1: "bf16[s72, 4096]" = auto_functionalized[1];  auto_functionalized = None',
  'empty_1: "f8e4m3fn[s72, 4096]" = torch.ops.aten.empty.memory_format([arg0_1, 4096], dtype = torch.float8_e4m3fn, device = device(type=\'cuda\', index=0), pin_memory = False)',
  'auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops._C.static_scaled_fp8_quant.default, result = empty_1, input = getitem_1, scale = arg3_1);  empty_1 = getitem_1 = None',
  'getitem_3: "f8e4m3fn[s72, 4096]" = auto_functionalized_1[1];  auto_functionalized_1 = None',
  'add: "bf16[s72, 4096]" = torch.ops.aten.add.Tensor(all_reduce, 1);  all_reduce = None',
);

const NVFP4 = lines(
  'all_reduce_1: "bf16[s72, 4096]" = torch.ops.vllm.all_reduce.default(mm_1, \'tp:0\');  mm_1 = None',
  'auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = all_reduce_1, residual = getitem_5, weight = arg7_1, epsilon = 1e-06);  all_reduce_1 = getitem_5 = arg7_1 = None',
  'getitem_6: "bf16[s72, 4096]" = auto_functionalized_2[1]',
  'getitem_7: "bf16[s72, 4096]" = auto_functionalized_2[2];  auto_functionalized_2 = None',
  'empty_2: "u8[s72, 2048]" = torch.ops.aten.empty.memory_format([arg0_1, 2048], dtype = torch.uint8, device = device(type=\'cuda\', index=0), pin_memory = False)',
  'empty_3: "i32[128, 64]" = torch.ops.aten.empty.memory_format([128, 64], dtype = torch.int32, device = device(type=\'cuda\', index=0), pin_memory = False)',
  'auto_functionalized_3 = torch.ops.higher_order.auto_functionalized(torch.ops._C.scaled_fp4_quant.default, output = empty_2, input = getitem_6, output_scale = empty_3, input_scale = arg8_1);  empty_2 = getitem_6 = empty_3 = None',
  'getitem_9: "u8[s72, 2048]" = auto_functionalized_3[1]',
  'getitem_10: "i32[128, 64]" = auto_functionalized_3[2];  auto_functionalized_3 = None',
);

describe('the TP group is a literal of the pattern', () => {
  const overGroup = (group: string) =>
    lines(
      `all_reduce_1: "bf16[s72, 2880]" = torch.ops.vllm.all_reduce.default(mm_1, '${group}');  mm_1 = None`,
      'auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = all_reduce_1, residual = getitem_5, weight = arg7_1, epsilon = 1e-05)',
      'getitem_6: "bf16[s72, 2880]" = auto_functionalized_2[1]',
      'getitem_7: "bf16[s72, 2880]" = auto_functionalized_2[2]',
    );

  for (const group of ['dp:0', 'ep:0']) {
    it(`an all-reduce over '${group}' does not fuse, and the diagnostic names the group`, () => {
      const r = fuse(overGroup(group));
      expect(r.stages[0]!.matches).toEqual([]);
      expect(fusedNodes(r.output)).toEqual([]);
      expect(r.diagnostics).toHaveLength(1);
      expect(r.diagnostics[0]).toMatchObject({
        node: 'all_reduce_1',
        blocker: 'group',
        fix: `if '${group}' is the tensor-parallel group, --tp-group ${group}`,
      });
      expect(r.diagnostics[0]!.reason).toContain(`reduces over '${group}', not the TP group 'tp:0'`);
    });
  }

  it("fuses once the graph's group is named the TP group", () => {
    expect(fuse(overGroup('dp:0'), { tpGroup: 'dp:0' }).stages[0]!.matches).toHaveLength(1);
    expect(fuse(overGroup('tp:0'), { tpGroup: 'tp:1' }).stages[0]!.matches).toEqual([]);
  });

  it('slice-hoist moves a slice of any sum all-reduce, whatever its group (the sum commutes with slicing)', () => {
    const text = lines(
      'all_reduce_1: "bf16[s72, 3072]" = torch.ops.vllm.all_reduce.default(mm_1, \'dp:0\')',
      'slice_1: "bf16[s72, 2880]" = torch.ops.aten.slice.Tensor(all_reduce_1, 1, 0, 2880)',
      'auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = slice_1, residual = getitem_5, weight = arg7_1, epsilon = 1e-05)',
      'getitem_6: "bf16[s72, 2880]" = auto_functionalized_2[1]',
    );
    const r = runPipeline(parseFx(text).graph, ['slice-hoist', 'allreduce-rmsnorm'], { worldSize: 4 });
    expect(r.stages.map((s) => s.matches.length)).toEqual([1, 0]);
    expect(r.diagnostics[0]!.blocker).toBe('group');
  });
});

describe('static FP8 quant patterns', () => {
  it('fused_add_rms_norm → static_scaled_fp8_quant becomes one fused op with pattern_code 2, as AllReduceFusedAddRMSNormStaticQuantFP8Pattern', () => {
    const r = fuse(FUSED_ADD_THEN_FP8());
    expect(r.stages[0]!.matches).toHaveLength(1);
    const m = r.stages[0]!.matches[0]!;
    // Every node of the all-reduce, the norm and the quant, in graph order.
    expect(m.consumed).toEqual([
      'all_reduce_1',
      'auto_functionalized_2',
      'getitem_6',
      'getitem_7',
      'empty_2',
      'auto_functionalized_3',
      'getitem_9',
    ]);
    const g = r.output;
    const [fused] = fusedNodes(g);
    const quantBuf = byName(g, (fused!.kwargs['quant_out'] as { name: string }).name)!;
    expect([quantBuf.op, quantBuf.args, quantBuf.kwargs['dtype']]).toEqual([
      'aten.empty_like.default',
      [ref('mm_1')],
      { kind: 'expr', text: 'torch.float8_e4m3fn' },
    ]);
    expect(quantBuf.type).toEqual({ kind: 'tensor', dtype: 'f8e4m3fn', shape: ['s72', 4096] });
    expect(fused!.kwargs).toMatchObject({
      allreduce_in: ref('mm_1'),
      residual: ref('getitem_5'),
      norm_out: null,
      scale_out: null,
      rms_gamma: ref('arg7_1'),
      rms_eps: float(1e-5),
      pattern_code: 2,
      scale_factor: ref('arg8_1'),
      world_size: 4,
    });
    // quant_out, rms_norm_residual = allreduce[4], allreduce[2]
    expect(byName(g, 'getitem_9')!.args).toEqual([ref(fused!.name), 4]);
    expect(byName(g, 'getitem_7')!.args).toEqual([ref(fused!.name), 2]);
    expect(
      g.nodes.some(
        (n) =>
          n.name === 'auto_functionalized_3' || n.name === 'empty_2' || n.op === 'vllm.all_reduce.default',
      ),
    ).toBe(false);
  });

  it('when the normed output has another reader, the plain pattern fuses the norm and the quant stays', () => {
    const r = fuse(FUSED_ADD_THEN_FP8('mul: "bf16[s72, 4096]" = torch.ops.aten.mul.Tensor(getitem_6, 2)'));
    const [fused] = fusedNodes(r.output);
    expect(fused!.kwargs['pattern_code']).toBe(1);
    expect(fused!.kwargs['scale_factor']).toBeUndefined();
    const quant = byName(r.output, 'auto_functionalized_3')!;
    expect(quant.kwargs['input']).toEqual(ref('getitem_6'));
    expect(byName(r.output, 'getitem_6')!.args).toEqual([ref(fused!.name), 1]);
  });

  it('rms_norm → static_scaled_fp8_quant: zeros residual, a norm_out buffer, quant [4], the residual stream from [1]', () => {
    const r = fuse(RMS_THEN_FP8);
    const g = r.output;
    const [fused] = fusedNodes(g);
    expect(fused!.kwargs['pattern_code']).toBe(2);
    expect(fused!.kwargs['scale_factor']).toEqual(ref('arg3_1'));
    expect(byName(g, (fused!.kwargs['residual'] as { name: string }).name)!.op).toBe(
      'aten.zeros_like.default',
    );
    expect(byName(g, (fused!.kwargs['norm_out'] as { name: string }).name)!.op).toBe(
      'aten.empty_like.default',
    );
    expect(byName(g, 'getitem_3')!.args).toEqual([ref(fused!.name), 4]);
    const add = byName(g, 'add')!;
    const stream = byName(g, (add.args[0] as { name: string }).name)!;
    expect(stream.args).toEqual([ref(fused!.name), 1]);
    expect(
      ['empty', 'empty_1', 'auto_functionalized', 'auto_functionalized_1', 'getitem_1'].filter((n) =>
        byName(g, n),
      ),
    ).toEqual([]);
  });
});

describe('NVFP4 quant patterns (registered on SM ≥ 100 only)', () => {
  it("on Blackwell: pattern_code 3, the model's quant and scale buffers become quant_out / scale_out, [4] and [5]", () => {
    const r = fuse(NVFP4, { gpu: 'blackwell' });
    const g = r.output;
    const [fused] = fusedNodes(g);
    expect(fused!.kwargs).toMatchObject({
      pattern_code: 3,
      quant_out: ref('empty_2'),
      scale_out: ref('empty_3'),
      scale_factor: ref('arg8_1'),
      norm_out: null,
      rms_eps: float(1e-6),
    });
    expect(byName(g, 'getitem_9')!.args).toEqual([ref(fused!.name), 4]);
    expect(byName(g, 'getitem_10')!.args).toEqual([ref(fused!.name), 5]);
    expect(byName(g, 'getitem_7')!.args).toEqual([ref(fused!.name), 2]);
  });

  it('on Hopper: the plain pattern fuses the norm; scaled_fp4_quant stays', () => {
    const g = fuse(NVFP4, { gpu: 'hopper' }).output;
    const [fused] = fusedNodes(g);
    expect(fused!.kwargs['pattern_code']).toBe(1);
    expect(byName(g, 'auto_functionalized_3')!.kwargs['input']).toEqual(ref('getitem_6'));
  });
});

describe('auto_functionalized_v2', () => {
  const v2 = (inputBase: number, residualBase: number) => {
    const bases = inputBase === 0 ? 'all_reduce_1, getitem_5' : 'getitem_5, all_reduce_1';
    return lines(
      'all_reduce_1: "bf16[s72, 2880]" = torch.ops.vllm.all_reduce.default(mm_1, \'tp:0\');  mm_1 = None',
      `auto_functionalized_v2 = torch.ops.higher_order.auto_functionalized_v2(torch.ops._C.fused_add_rms_norm.default, weight = arg7_1, epsilon = 1e-05, _input_base_index = ${inputBase}, _residual_base_index = ${residualBase}, _all_bases = [${bases}]);  all_reduce_1 = getitem_5 = arg7_1 = None`,
      'getitem_6: "bf16[s72, 2880]" = auto_functionalized_v2[1]',
      'getitem_7: "bf16[s72, 2880]" = auto_functionalized_v2[2];  auto_functionalized_v2 = None',
    );
  };

  it('imports with no warning: the op is known', () => {
    expect(parseFx(v2(0, 1)).warnings).toEqual([]);
  });

  it('fused_add_rms_norm through v2 fuses as through v1; results follow _all_bases order', () => {
    for (const [inputBase, residualBase] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const r = fuse(v2(inputBase, residualBase));
      expect(r.stages[0]!.matches).toHaveLength(1);
      const g = r.output;
      const [fused] = fusedNodes(g);
      expect(fused!.kwargs['allreduce_in']).toEqual(ref('mm_1'));
      expect(fused!.kwargs['residual']).toEqual(ref('getitem_5'));
      // getitem_6 is base 0: the normed output when input is base 0, else the new residual.
      expect(byName(g, 'getitem_6')!.args[1]).toBe(inputBase === 0 ? 1 : 2);
      expect(byName(g, 'getitem_7')!.args[1]).toBe(inputBase === 0 ? 2 : 1);
    }
  });

  it('rms_norm through v2 (_result_base_index) fuses with the normed output from [3]', () => {
    const text = lines(
      'all_reduce: "bf16[s72, 1536]" = torch.ops.vllm.all_reduce.default(masked_fill, \'tp:0\')',
      'empty_like: "bf16[s72, 1536]" = torch.ops.aten.empty_like.default(all_reduce, pin_memory = False)',
      'auto_functionalized_v2 = torch.ops.higher_order.auto_functionalized_v2(torch.ops._C.rms_norm.default, input = all_reduce, weight = arg2_1, epsilon = 1e-06, _result_base_index = 0, _all_bases = [empty_like]);  empty_like = None',
      'getitem_1: "bf16[s72, 1536]" = auto_functionalized_v2[1];  auto_functionalized_v2 = None',
      'add: "bf16[s72, 1536]" = torch.ops.aten.add.Tensor(all_reduce, getitem_1)',
    );
    const g = fuse(text).output;
    const [fused] = fusedNodes(g);
    expect(byName(g, 'getitem_1')!.args).toEqual([ref(fused!.name), 3]);
    expect(byName(g, 'empty_like')).toBeUndefined();
  });

  it('a mutated argument that is a view of its base (_input_size / _input_stride) is not the all-reduce: no match', () => {
    const text = v2(0, 1).replace(
      '_input_base_index = 0,',
      '_input_base_index = 0, _input_size = (s72, 2880), _input_stride = (3072, 1), _input_storage_offset = 0,',
    );
    const r = fuse(text);
    expect(r.stages[0]!.matches).toEqual([]);
  });
});

describe('graphs without shapes (str(graph) dumps): the run-time fallback needs none', () => {
  const stripTypes = (g: Graph): Graph => ({
    ...g,
    inputs: g.inputs.map((i) => ({
      ...i,
      type: i.type?.kind === 'sym' ? i.type : (null as ValueType | null),
    })),
    nodes: g.nodes.map((n): Node => ({ ...n, type: null })),
  });
  const qwen = parseFx(readFileSync(FX + 'real/qwen2-paral2_layer1-r0.py', 'utf8')).graph;

  it('the Qwen2 TP2 dump without its annotations fuses the same 3 sites, each saying which gate it could not evaluate', () => {
    const typed = runPipeline(qwen, ['noop-elimination', 'slice-hoist', 'allreduce-rmsnorm'], {
      worldSize: 2,
    });
    const bare = runPipeline(stripTypes(qwen), ['noop-elimination', 'slice-hoist', 'allreduce-rmsnorm'], {
      worldSize: 2,
    });
    const sites = (r: typeof typed) => r.stages[2]!.matches.map((m) => m.site);
    expect(sites(bare)).toEqual(sites(typed));
    expect(sites(bare)).toHaveLength(3);
    expect(typed.stages[2]!.matches.every((m) => m.unevaluated === undefined)).toBe(true);
    for (const m of bare.stages[2]!.matches) {
      expect(m.unevaluated).toEqual([
        expect.stringContaining(`token capacity: ${m.site}'s input shape is unknown`),
      ]);
    }
    expect(fusedNodes(bare.output).map((n) => n.kwargs['max_token_num'])).toEqual([8192, 8192, 8192]);
  });

  it('under the compile-range token gate a shapeless site is refused, naming the missing shape', () => {
    const r = runPipeline(stripTypes(qwen), ['allreduce-rmsnorm'], {
      worldSize: 2,
      tokenGate: 'compile-range',
    });
    expect(r.stages[0]!.matches).toEqual([]);
    expect(r.diagnostics.map((d) => d.blocker)).toEqual(['shape', 'shape', 'shape']);
    expect(r.diagnostics[0]!.reason).toContain(
      "the all-reduce input's shape is unknown: the compile-range token gate needs",
    );
  });

  it('a str(graph) text, as torch prints it, fuses', () => {
    const text = lines(
      'graph():',
      '    %mm_1 : [num_users=1] = placeholder[target=mm_1]',
      '    %getitem_5 : [num_users=1] = placeholder[target=getitem_5]',
      '    %arg7_1 : [num_users=1] = placeholder[target=arg7_1]',
      '    %all_reduce_1 : [num_users=1] = call_function[target=torch.ops.vllm.all_reduce.default](args = (%mm_1, tp:0), kwargs = {})',
      '    %auto_functionalized_2 : [num_users=2] = call_function[target=torch.ops.higher_order.auto_functionalized](args = (_C.fused_add_rms_norm.default,), kwargs = {input: %all_reduce_1, residual: %getitem_5, weight: %arg7_1, epsilon: 1e-05})',
      '    %getitem_6 : [num_users=1] = call_function[target=operator.getitem](args = (%auto_functionalized_2, 1), kwargs = {})',
      '    %getitem_7 : [num_users=1] = call_function[target=operator.getitem](args = (%auto_functionalized_2, 2), kwargs = {})',
      '    return (getitem_6, getitem_7)',
    );
    const r = fuse(text);
    expect(r.stages[0]!.matches).toHaveLength(1);
    expect(r.stages[0]!.matches[0]!.unevaluated).toHaveLength(1);
    expect(r.diagnostics).toEqual([]);
  });

  it('a known shape that is not 2-d is still refused', () => {
    const text = lines(
      'all_reduce_1: "bf16[2, s72, 2880]" = torch.ops.vllm.all_reduce.default(mm_1, \'tp:0\')',
      'auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = all_reduce_1, residual = getitem_5, weight = arg7_1, epsilon = 1e-05)',
      'getitem_6: "bf16[2, s72, 2880]" = auto_functionalized_2[1]',
    );
    expect(fuse(text).diagnostics[0]!.blocker).toBe('shape');
  });
});

describe('every form of the norm fuses alike (the matcher layer)', () => {
  const forms = Object.keys(NORM_FORMS) as NormModelForm[];
  const fuseForm = (form: NormModelForm) => fuse(NORM_FORMS[form], { worldSize: 2 });
  /** The output graph as ops, each getitem with its index: names differ between forms, structure must not. */
  const shape = (g: Graph) =>
    g.nodes
      .map((n) => (n.op === 'getitem' ? `getitem[${String(n.args[1])}]` : calledOp(n)))
      .filter((op) => op !== 'aten.empty.memory_format')
      .sort();
  const fusedKwargs = (g: Graph) =>
    fusedNodes(g).map((n) => {
      const { residual, norm_out, ...rest } = n.kwargs;
      const producer = (a: unknown) =>
        a && typeof a === 'object' && 'name' in a ? calledOp(byName(g, (a as { name: string }).name)!) : a;
      return { ...rest, residual: producer(residual), norm_out: producer(norm_out) };
    });

  it('custom, vLLM IR, native bf16 and native f32: 2 sites each, the same fused ops, the same graph after', () => {
    const custom = fuseForm('custom');
    expect(custom.stages[0]!.matches.map((m) => m.site)).toEqual(['all_reduce', 'all_reduce_1']);
    expect(custom.diagnostics).toEqual([]);
    for (const form of forms) {
      const r = fuseForm(form);
      expect(
        r.stages[0]!.matches.map((m) => m.site),
        form,
      ).toEqual(['all_reduce', 'all_reduce_1']);
      expect(r.diagnostics, form).toEqual([]);
      expect(fusedKwargs(r.output), form).toEqual(fusedKwargs(custom.output));
      expect(shape(r.output), form).toEqual(shape(custom.output));
    }
  });

  it('consumes every node of the native norm, and the readers read the fused results under their names', () => {
    const r = fuseForm('native');
    const [first, second] = r.stages[0]!.matches;
    const [norm1, norm2] = findNorms(indexGraph(parseFx(NORM_FORMS.native).graph)).occurrences;
    expect(first!.consumed).toEqual(['all_reduce', ...norm1!.nodes]);
    expect(second!.consumed).toEqual(['all_reduce_1', ...norm2!.nodes]);
    const g = r.output;
    const [f1, f2] = fusedNodes(g);
    expect(byName(g, 'mul_14')!.args).toEqual([ref(f1!.name), 3]);
    expect(byName(g, 'mul_39')!.args).toEqual([ref(f2!.name), 1]);
    expect(byName(g, 'convert_element_type_6')!.args).toEqual([ref(f2!.name), 2]);
    // The second norm's residual was the first all-reduce: now the first fused op's [1].
    const residual = byName(g, (f2!.kwargs['residual'] as { name: string }).name)!;
    expect(residual.args).toEqual([ref(f1!.name), 1]);
    expect(g.nodes.some((n) => n.op.startsWith('aten.rsqrt') || n.op.startsWith('aten.pow'))).toBe(false);
  });

  it('a native static FP8 quant after a native norm is absorbed (pattern_code 2)', () => {
    const text = NORM_FORMS.native
      .replace('arg4_1: "bf16[64]"):', 'arg4_1: "bf16[64]", arg5_1: "f32[]"):')
      .replace(
        / {4}mm_1: .*\n/,
        [
          '    convert_element_type_8: "f32[s77, 64]" = torch.ops.prims.convert_element_type.default(mul_39, torch.float32)',
          '    reciprocal: "f32[]" = torch.ops.aten.reciprocal.default(arg5_1)',
          '    mul_40: "f32[s77, 64]" = torch.ops.aten.mul.Tensor(convert_element_type_8, reciprocal)',
          '    clamp_min: "f32[s77, 64]" = torch.ops.aten.clamp_min.default(mul_40, -448.0)',
          '    clamp_max: "f32[s77, 64]" = torch.ops.aten.clamp_max.default(clamp_min, 448.0)',
          '    mm_1: "f8e4m3fn[s77, 64]" = torch.ops.prims.convert_element_type.default(clamp_max, torch.float8_e4m3fn)',
          '',
        ].join('\n'),
      );
    const r = fuse(text, { worldSize: 2 });
    const [, f2] = fusedNodes(r.output);
    expect(f2!.kwargs).toMatchObject({ pattern_code: 2, scale_factor: ref('arg5_1') });
    expect(byName(r.output, 'mm_1')!.args).toEqual([ref(f2!.name), 4]);
    expect(r.stages[0]!.matches[1]!.consumed).toContain('clamp_max');
  });

  it('a native norm whose interior value is read from outside stays unfused; the diagnostic names the reader', () => {
    const text = NORM_FORMS.native.replace(
      '    mm_1: "bf16',
      '    spy: "f32[s77, 1]" = torch.ops.aten.mul.Tensor(rsqrt_1, 2)\n    mm_1: "bf16',
    );
    const r = fuse(text, { worldSize: 2 });
    expect(r.stages[0]!.matches.map((m) => m.site)).toEqual(['all_reduce']);
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]).toMatchObject({ node: 'all_reduce_1', blocker: 'spy' });
    expect(r.diagnostics[0]!.reason).toContain('rsqrt_1');
    expect(r.diagnostics[0]!.reason).toContain('is read by spy');
  });
});

describe("a model captured with custom ops off (vLLM's default under Inductor)", () => {
  const CAPTURES = new URL('../../../fixtures/capture/', import.meta.url).pathname;
  const NATIVE = new URL('./matchers/fixtures/', import.meta.url).pathname;
  const load = (path: string) => parseFx(readFileSync(path, 'utf8')).graph;
  const pipeline = (g: Graph) =>
    runPipeline(g, ['noop-elimination', 'slice-hoist', 'allreduce-rmsnorm'], { worldSize: 2 });

  it('llama TP2 with RMSNorm.forward_native fuses 2L + 1 = 5 sites, as its custom-op capture does, into the same fused ops', () => {
    const native = pipeline(load(NATIVE + 'llama-tp2-native.py'));
    const custom = pipeline(load(CAPTURES + 'llama-tp2.py'));
    const sites = (r: typeof native) => r.stages[2]!.matches.map((m) => m.site);
    expect(sites(native)).toHaveLength(5);
    expect(sites(native)).toEqual(sites(custom));
    expect(native.diagnostics).toEqual([]);
    const codes = (r: typeof native) =>
      fusedNodes(r.output).map((n) => [n.kwargs['pattern_code'], n.kwargs['rms_eps']]);
    expect(codes(native)).toEqual(codes(custom));
    // No piece of a norm is left behind.
    expect(native.output.nodes.filter((n) => n.op === 'aten.rsqrt.default')).toEqual([]);
  });
});

describe('why it did not fire, in every form of the norm', () => {
  const forms = Object.keys(NORM_FORMS) as NormModelForm[];

  for (const form of forms) {
    it(`${form}: before the pass, each all-reduce is explained as a match; at world size 3, by the gate`, () => {
      const g = parseFx(NORM_FORMS[form]).graph;
      const before = diagnose(g, { worldSize: 2 });
      expect(before.map((d) => [d.node, d.fix])).toEqual([
        ['all_reduce', 'run allreduce-rmsnorm'],
        ['all_reduce_1', 'run allreduce-rmsnorm'],
      ]);
      expect(before[0]!.reason).toContain("matches vLLM's pattern");
      const gated = runPipeline(g, ['allreduce-rmsnorm'], { worldSize: 3 });
      expect(gated.stages[0]!.matches).toEqual([]);
      expect(gated.diagnostics.map((d) => d.blocker)).toEqual(['world size', 'world size']);
    });
  }

  it('an all-reduce that only reaches a vLLM IR or native norm as its residual is named so', () => {
    const ir = lines(
      'def forward(self, arg0_1: "bf16[s77, 64]", arg1_1: "bf16[s77, 64]", arg2_1: "bf16[64]"):',
      '    all_reduce: "bf16[s77, 64]" = torch.ops.vllm.all_reduce.default(arg0_1, \'tp:0\')',
      '    fused_add_rms_norm = torch.ops.vllm_ir.fused_add_rms_norm.default(arg1_1, all_reduce, arg2_1, 1e-05)',
      '    getitem: "bf16[s77, 64]" = fused_add_rms_norm[0]',
      '    getitem_1: "bf16[s77, 64]" = fused_add_rms_norm[1]',
      '    return (getitem, getitem_1)',
    );
    const [d] = diagnose(parseFx(ir).graph, { worldSize: 2 });
    expect(d).toMatchObject({ node: 'all_reduce', blocker: 'fused_add_rms_norm' });
    expect(d!.reason).toContain('as its residual, not its input');
    const native = parseFx(
      NORM_FORMS.native.replace(
        'add_40: "f32[s77, 64]" = torch.ops.aten.add.Tensor(convert_element_type_4, convert_element_type_5)',
        'add_40: "f32[s77, 64]" = torch.ops.aten.add.Tensor(convert_element_type_5, convert_element_type_4)',
      ),
    ).graph;
    const explained = diagnose(native, { worldSize: 2 });
    // Now the first all-reduce is the second norm's input and o_proj's is its residual.
    expect(explained.map((x) => x.node)).toEqual(['all_reduce', 'all_reduce_1']);
    expect(explained[1]!.reason).toContain('as its residual, not its input');
    expect(explained[1]!.reason).toContain('the native fused_add_rms_norm at convert_element_type_4');
  });
});
