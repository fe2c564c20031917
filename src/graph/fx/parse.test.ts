import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GraphImportError } from '../errors.ts';
import { float, ref, type Graph, type Node } from '../ir.ts';
import { lookupOp } from '../ops.ts';
import { parseFx } from './parse.ts';

const FIXTURES = new URL('../../../fixtures/fx/', import.meta.url);
const fixture = (path: string): string => readFileSync(new URL(path, FIXTURES), 'utf8');

function node(g: Graph, name: string): Node {
  const n = g.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no node ${name}`);
  return n;
}

function importError(text: string, opts?: Parameters<typeof parseFx>[1]): GraphImportError {
  try {
    parseFx(text, opts);
  } catch (e) {
    if (e instanceof GraphImportError) return e;
    throw e;
  }
  throw new Error('expected a GraphImportError');
}

/** Ops named by `torch.ops.X` on code lines (not in `# File:` comments). */
function opsInText(text: string): Set<string> {
  const ops = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.trimStart().startsWith('#')) continue;
    for (const m of line.matchAll(/torch\.ops\.([A-Za-z0-9_.]+)/g)) ops.add(m[1]);
  }
  return ops;
}

describe('parseFx on the real dumps', () => {
  it('qwen2-paral2 rank 0: inputs, node count, outputs, the three all_reduce sites', () => {
    const text = fixture('real/qwen2-paral2_layer1-r0.py');
    const { graph: g, warnings } = parseFx(text);
    expect(g.form).toBe('module');
    expect(g.name).toBe('<lambda>');
    expect(g.inputs.map((i) => [i.name, i.type])).toEqual([
      ['arg0_1', { kind: 'tensor', dtype: 'i64', shape: [32768] }],
      ['arg1_1', { kind: 'tensor', dtype: 'bf16', shape: [75968, 1536] }],
      ['arg2_1', { kind: 'tensor', dtype: 'bf16', shape: [1536] }],
      ['arg3_1', { kind: 'tensor', dtype: 'bf16', shape: [1024] }],
      ['arg4_1', { kind: 'tensor', dtype: 'bf16', shape: [1024, 1536] }],
      ['arg5_1', { kind: 'tensor', dtype: 'bf16', shape: [32768, 128] }],
      ['arg6_1', { kind: 'tensor', dtype: 'i64', shape: [32768] }],
      ['arg7_1', { kind: 'tensor', dtype: 'bf16', shape: [1536, 768] }],
      ['arg8_1', { kind: 'tensor', dtype: 'bf16', shape: [1536] }],
      ['arg9_1', { kind: 'tensor', dtype: 'bf16', shape: [8960, 1536] }],
      ['arg10_1', { kind: 'tensor', dtype: 'bf16', shape: [1536, 4480] }],
      ['arg11_1', { kind: 'tensor', dtype: 'bf16', shape: [1536] }],
    ]);
    // grep -cE '^\s*[A-Za-z_][A-Za-z0-9_]*(: "[^"]*")? = ' → 67
    expect(g.nodes).toHaveLength(67);
    expect(g.outputs).toEqual([ref('getitem_34'), ref('arg5_1')]);
    expect(g.submodules).toEqual({});

    const allReduces = g.nodes.filter((n) => n.op === 'vllm.all_reduce.default');
    expect(allReduces.map((n) => [n.name, n.args])).toEqual([
      ['all_reduce', [ref('masked_fill'), 'tp:0']],
      ['all_reduce_1', [ref('mm'), 'tp:0']],
      ['all_reduce_2', [ref('mm_2'), 'tp:0']],
    ]);

    const af5 = node(g, 'auto_functionalized_5');
    expect(af5.op).toBe('higher_order.auto_functionalized');
    expect(af5.type).toBeNull();
    expect(af5.args).toEqual([{ kind: 'op', target: '_C.fused_add_rms_norm.default' }]);
    expect(af5.kwargs).toEqual({
      input: ref('all_reduce_2'),
      residual: ref('getitem_30'),
      weight: ref('detach_2'),
      epsilon: float(1e-6),
    });
    expect(af5.meta.line).toBe(165);

    const g34 = node(g, 'getitem_34');
    expect(g34.op).toBe('getitem');
    expect(g34.args).toEqual([ref('auto_functionalized_5'), 1]);
    expect(g34.type).toEqual({ kind: 'tensor', dtype: 'bf16', shape: [32768, 1536] });

    const empty = node(g, 'empty');
    expect(empty.args).toEqual([[32768, 4480]]);
    expect(empty.kwargs).toEqual({
      dtype: { kind: 'expr', text: 'torch.bfloat16' },
      device: { kind: 'expr', text: "device(type='cuda', index=0)" },
      pin_memory: false,
    });
    expect(node(g, 'unsqueeze').args).toEqual([ref('bitwise_not'), -1]);

    // `# File:` holds for the run of nodes after it: sub has its own comment, mul_2 follows it.
    expect(node(g, 'ge').meta.file).toBe(
      '/opt/tiger/vllm/vllm/model_executor/layers/vocab_parallel_embedding.py:146 in get_masked_input_and_mask, code: org_vocab_mask = (input_ >= org_vocab_start_index) & (',
    );
    expect(node(g, 'mul_2').meta.file).toBe(node(g, 'sub').meta.file);
    expect(node(g, 'sub').meta.file).toMatch(/vocab_parallel_embedding\.py:155 in get_masked_input_and_mask/);

    // One warning per distinct op the registry does not know, naming its first line.
    const unknown = [...opsInText(text)].filter((op) => !lookupOp(op));
    expect(unknown.length).toBeGreaterThan(0);
    expect(warnings.map((w) => w.message.match(/unknown op '([^']+)'/)?.[1]).sort()).toEqual(
      [...unknown].sort(),
    );
    for (const w of warnings) {
      const op = w.message.match(/unknown op '([^']+)'/)![1];
      const first = g.nodes.find(
        (n) =>
          n.op === op ||
          n.args.some(
            (a) =>
              typeof a === 'object' && a !== null && !Array.isArray(a) && a.kind === 'op' && a.target === op,
          ),
      )!;
      expect(w.line).toBe(first.meta.line);
      expect(w.node).toBe(first.name);
    }
  });

  it('CRLF line endings and tab indentation give the same graph', () => {
    const text = fixture('real/qwen2-paral2_layer1-r0.py');
    const lf = parseFx(text);
    const crlf = parseFx(text.replace(/\n/g, '\r\n').replace(/^ {8}/gm, '\t\t'));
    expect(crlf.graph).toEqual(lf.graph);
    expect(crlf.warnings).toEqual(lf.warnings);
  });

  it('qwen2 TP1, TP2 rank 1 and TP4 import whole', () => {
    const tp1 = parseFx(fixture('real/qwen2-paral1_layer1-r0.py')).graph;
    expect(tp1.nodes).toHaveLength(49);
    expect(tp1.nodes.filter((n) => n.op === 'vllm.all_reduce.default')).toHaveLength(0);
    for (const f of ['real/qwen2-paral2_layer1-r1.py', 'real/qwen2-paral4_layer1-r0.py']) {
      const g = parseFx(fixture(f)).graph;
      expect(g.nodes).toHaveLength(67);
      expect(g.inputs).toHaveLength(12);
      expect(g.nodes.filter((n) => n.op === 'vllm.all_reduce.default')).toHaveLength(3);
    }
  });

  it('Megatron GPT, 2 layers: c10d collectives, get_attr constants, sys.maxsize, tuple-valued nodes', () => {
    const g = parseFx(fixture('real/gpt-paral2_layer2-r0.py')).graph;
    expect(g.name).toBe('GraphModule');
    expect(g.inputs).toHaveLength(34);
    expect(g.inputs[0]).toEqual({
      name: 'primals_1',
      type: { kind: 'tensor', dtype: 'f32', shape: [49152, 768] },
      meta: { line: 30 },
    });
    expect(g.nodes).toHaveLength(250);
    expect(g.outputs).toHaveLength(70);
    expect(g.nodes.filter((n) => n.op === 'get_attr').map((n) => [n.name, n.args])).toEqual([
      ['_tensor_constant0', ['_tensor_constant0']],
      ['_tensor_constant1', ['_tensor_constant1']],
      ['_tensor_constant2', ['_tensor_constant2']],
      ['_tensor_constant3', ['_tensor_constant3']],
    ]);
    expect(node(g, 'all_reduce').op).toBe('_c10d_functional.all_reduce.default');
    expect(node(g, 'all_reduce').args).toEqual([ref('slice_scatter'), 'sum', '12']);
    expect(g.nodes.filter((n) => n.op === '_c10d_functional.wait_tensor.default')).toHaveLength(13);
    expect(node(g, 'slice_scatter').args).toEqual([
      ref('index'),
      ref('index_put_1'),
      1,
      0,
      9223372036854775807,
    ]);
    expect(node(g, 'lift_fresh_copy').type).toEqual({ kind: 'tensor', dtype: 'i64', shape: [] });
    expect(node(g, 'max_1')).toMatchObject({ op: 'aten.max.dim', type: null, args: [ref('view_43'), -1] });
    expect(node(g, 'masked_fill').args[2]).toEqual(float(-10000));
    expect(node(g, '_to_copy').kwargs).toEqual({
      dtype: { kind: 'expr', text: 'torch.int64' },
      layout: { kind: 'expr', text: 'torch.strided' },
      device: { kind: 'expr', text: "device(type='cuda', index=0)" },
    });
    expect(node(g, 'fused_layer_norm_affine_fwd').args).toEqual([
      ref('getitem'),
      ref('primals_2'),
      ref('primals_3'),
      [768],
      float(1e-5),
    ]);
  });

  it('Megatron GPT, 8 layers (140 KB) imports whole', () => {
    const g = parseFx(fixture('real/gpt-paral2_layer8-r0.py')).graph;
    expect(g.inputs).toHaveLength(106);
    expect(g.nodes).toHaveLength(718);
    expect(g.nodes.filter((n) => n.op === '_c10d_functional.wait_tensor.default')).toHaveLength(37);
  });
});

describe('parseFx on the PR #28841 fragments', () => {
  it('before: names used but never defined are the inputs, in order of first use', () => {
    const { graph: g, warnings } = parseFx(fixture('seed/pr28841-before.fragment.txt'));
    expect(g.form).toBe('fragment');
    expect(g.inputs.map((i) => i.name)).toEqual(['constant_pad_nd', 'addmm_1', 'getitem_18', 'arg8_1']);
    expect(g.inputs.every((i) => i.type === null)).toBe(true);
    expect(g.nodes.map((n) => n.name)).toEqual([
      'auto_functionalized_1',
      'getitem_3',
      'all_reduce_1',
      'slice_1',
      'auto_functionalized_2',
    ]);
    expect(g.outputs).toBeNull();
    expect(node(g, 'auto_functionalized_1').kwargs).toEqual({
      hidden_states: ref('constant_pad_nd'),
      router_logits: ref('addmm_1'),
      layer_name: 'model.layers.0.mlp.experts',
    });
    expect(node(g, 'slice_1')).toMatchObject({
      op: 'aten.slice.Tensor',
      args: [ref('all_reduce_1'), 1, 0, 2880],
      type: { kind: 'tensor', dtype: 'bf16', shape: ['s72', 2880] },
      meta: { line: 9 },
    });
    expect(node(g, 'auto_functionalized_2').kwargs).toEqual({
      input: ref('slice_1'),
      residual: ref('getitem_18'),
      weight: ref('arg8_1'),
      epsilon: float(1e-5),
    });
    expect(warnings).toEqual([]);
  });

  it('a fragment input gets the type its use implies, through the registry', () => {
    const { graph: g } = parseFx(
      [
        'auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = x, residual = res, weight = w, epsilon = 1e-05)',
        'getitem_2: "bf16[s72, 2880]" = auto_functionalized[2]',
        'all_reduce: "bf16[s72, 3072]" = torch.ops.vllm.all_reduce.default(moe_out, \'tp:0\')',
        'slice_1: "bf16[s72, 2880]" = torch.ops.aten.slice.Tensor(padded, 1, 0, 2880)',
      ].join('\n'),
    );
    expect(g.inputs.map((i) => [i.name, i.type])).toEqual([
      ['x', null],
      // [2] is the second mutated argument of fused_add_rms_norm: residual.
      ['res', { kind: 'tensor', dtype: 'bf16', shape: ['s72', 2880] }],
      ['w', null],
      // all_reduce's result has its input's type; slice's does not.
      ['moe_out', { kind: 'tensor', dtype: 'bf16', shape: ['s72', 3072] }],
      ['padded', null],
    ]);
  });

  it('after: the fused all-reduce + norm call with all its kwargs', () => {
    const { graph: g } = parseFx(fixture('seed/pr28841-after.fragment.txt'));
    expect(g.inputs.map((i) => i.name)).toEqual(['constant_pad_nd', 'addmm_1', 'getitem_14', 'arg8_1']);
    const fused = node(g, 'auto_functionalized_1');
    expect(fused.args).toEqual([
      { kind: 'op', target: 'vllm.flashinfer_trtllm_fused_allreduce_norm.default' },
    ]);
    expect(fused.kwargs).toEqual({
      allreduce_in: ref('slice_1'),
      residual: ref('getitem_14'),
      norm_out: null,
      quant_out: null,
      scale_out: null,
      rms_gamma: ref('arg8_1'),
      rms_eps: float(1e-5),
      pattern_code: 1,
      world_rank: 0,
      world_size: 4,
      launch_with_pdl: true,
      trigger_completion_at_end: true,
      fp32_acc: true,
      max_token_num: 5825,
    });
  });
});

describe('parseFx forms', () => {
  it('nested submodules and call_module', () => {
    const text = [
      'class GraphModule(torch.nn.Module):',
      '    def forward(self, x: "f32[4, 8]", w: "f32[8, 8]"):',
      '        submod_0 = self.submod_0(x, w);  x = w = None',
      '        getitem: "f32[4, 8]" = submod_0[0]',
      '        return (getitem,)',
      '        ',
      '    class submod_0(torch.nn.Module):',
      '        def forward(self, x: "f32[4, 8]", w: "f32[8, 8]"):',
      '            mm: "f32[4, 8]" = torch.ops.aten.mm.default(x, w);  x = w = None',
      '            return (mm,)',
      '',
    ].join('\n');
    const g = parseFx(text).graph;
    expect(g.nodes.map((n) => [n.name, n.op, n.module, n.args])).toEqual([
      ['submod_0', 'call_module', 'submod_0', [ref('x'), ref('w')]],
      ['getitem', 'getitem', undefined, [ref('submod_0'), 0]],
    ]);
    expect(Object.keys(g.submodules)).toEqual(['submod_0']);
    const sub = g.submodules.submod_0;
    expect(sub.form).toBe('module');
    expect(sub.inputs.map((i) => i.name)).toEqual(['x', 'w']);
    expect(sub.nodes.map((n) => n.op)).toEqual(['aten.mm.default']);
    expect(sub.outputs).toEqual([ref('mm')]);
  });

  it('a call to a submodule that has no class is an error naming it', () => {
    const e = importError(
      [
        'class GraphModule(torch.nn.Module):',
        '    def forward(self, x: "f32[4]"):',
        '        submod_3 = self.submod_3(x)',
        '        return (submod_3,)',
      ].join('\n'),
    );
    expect([e.line, e.col]).toEqual([3, 25]);
    expect(e.message).toContain('defines no submodule submod_3');
  });

  it('str(graph) form: placeholders, %refs, unquoted strings, kwargs, output types', () => {
    const text = [
      'graph():',
      '    %x : [num_users=1] = placeholder[target=x]',
      '    %w : [num_users=1] = placeholder[target=w] : "bf16[8, 8]"',
      '    %mm : [num_users=2] = call_function[target=torch.ops.aten.mm.default](args = (%x, %w), kwargs = {})',
      '    %all_reduce : [num_users=1] = call_function[target=torch.ops.vllm.all_reduce.default](args = (%mm, tp:0), kwargs = {})',
      '    %split : [#users=1] = call_function[target=torch.ops.aten.split_with_sizes.default](args = (%all_reduce, [4, 4], 1), kwargs = {})',
      '    %getitem : [num_users=1] = call_function[target=operator.getitem](args = (%split, 0), kwargs = {})',
      '    %add : [num_users=1] = call_function[target=torch.ops.aten.add.Tensor](args = (%getitem, %mm), kwargs = {alpha: 2, name: "a b"}) : "bf16[4, 4]"',
      '    %_tensor_constant0 : [num_users=0] = get_attr[target=_tensor_constant0]',
      '    return (add,)',
    ].join('\n');
    const g = parseFx(text).graph;
    expect(g.form).toBe('graph');
    expect(g.inputs).toEqual([
      { name: 'x', type: null, meta: { line: 2 } },
      { name: 'w', type: { kind: 'tensor', dtype: 'bf16', shape: [8, 8] }, meta: { line: 3 } },
    ]);
    expect(g.nodes.map((n) => [n.name, n.op, n.args, n.kwargs])).toEqual([
      ['mm', 'aten.mm.default', [ref('x'), ref('w')], {}],
      ['all_reduce', 'vllm.all_reduce.default', [ref('mm'), 'tp:0'], {}],
      ['split', 'aten.split_with_sizes.default', [ref('all_reduce'), [4, 4], 1], {}],
      ['getitem', 'getitem', [ref('split'), 0], {}],
      ['add', 'aten.add.Tensor', [ref('getitem'), ref('mm')], { alpha: 2, name: 'a b' }],
      ['_tensor_constant0', 'get_attr', ['_tensor_constant0'], {}],
    ]);
    expect(node(g, 'add').type).toEqual({ kind: 'tensor', dtype: 'bf16', shape: [4, 4] });
    expect(g.outputs).toEqual([ref('add')]);
  });

  it('str(graph) with an output node instead of return', () => {
    const g = parseFx(
      [
        'graph():',
        '    %x : [num_users=1] = placeholder[target=x]',
        '    %neg : [num_users=1] = call_function[target=torch.ops.aten.neg.default](args = (%x,), kwargs = {})',
        '    %output : [num_users=0] = output[target=output](args = ((%neg, %x),), kwargs = {})',
      ].join('\n'),
    ).graph;
    expect(g.outputs).toEqual([ref('neg'), ref('x')]);
    expect(g.nodes.map((n) => n.name)).toEqual(['neg']);
  });

  it('multi-line forward signature, symbolic sizes, Sym inputs, operator calls and literals', () => {
    const text = [
      'class <lambda>(torch.nn.Module):',
      '    def forward(',
      '        self,',
      '        s0: "Sym(s0)",',
      '        x: "bf16[s0, 2*s0, s0 + 1]",',
      '        y,',
      '    ):',
      '        sym_size_int: "Sym(s0)" = torch.ops.aten.sym_size.int(x, 0)',
      '        mul: "Sym(2*s0)" = sym_size_int * 2',
      '        neg = -mul',
      '        prod = operator.mul(mul, 3)',
      '        clamp: "bf16[s0, 2*s0, s0 + 1]" = torch.ops.aten.clamp.default(x, -inf, inf)',
      '        full: "f32[]" = torch.ops.aten.full.default([], nan, dtype = torch.float32, layout = torch.strided)',
      "        misc = torch.ops.test.misc.default(y, (1,), (), [(-2, 3.5)], 'it\\'s', \"q\", None, True, False, 1.0, 1e+20, torch.ops._C.rms_norm.default)",
      '        return clamp',
    ].join('\n');
    const g = parseFx(text).graph;
    expect(g.name).toBe('<lambda>');
    expect(g.inputs.map((i) => [i.name, i.type])).toEqual([
      ['s0', { kind: 'sym', expr: 's0' }],
      ['x', { kind: 'tensor', dtype: 'bf16', shape: ['s0', '2*s0', 's0 + 1'] }],
      ['y', null],
    ]);
    expect(node(g, 'sym_size_int')).toMatchObject({
      op: 'aten.sym_size.int',
      args: [ref('x'), 0],
      type: { kind: 'sym', expr: 's0' },
    });
    expect(node(g, 'mul')).toMatchObject({
      op: 'operator.mul',
      args: [ref('sym_size_int'), 2],
      type: { kind: 'sym', expr: '2*s0' },
    });
    expect(node(g, 'neg')).toMatchObject({ op: 'operator.neg', args: [ref('mul')] });
    expect(node(g, 'prod')).toMatchObject({ op: 'operator.mul', args: [ref('mul'), 3] });
    expect(node(g, 'clamp').args).toEqual([ref('x'), float(-Infinity), float(Infinity)]);
    expect(node(g, 'full').args).toEqual([[], float(NaN)]);
    expect(node(g, 'misc').args).toEqual([
      ref('y'),
      { kind: 'tuple', items: [1] },
      { kind: 'tuple', items: [] },
      [{ kind: 'tuple', items: [-2, float(3.5)] }],
      "it's",
      'q',
      null,
      true,
      false,
      float(1),
      float(1e20),
      { kind: 'op', target: '_C.rms_norm.default' },
    ]);
    expect(g.outputs).toEqual([ref('clamp')]);
  });

  it('an argument spread over lines is kept on one line', () => {
    const g = parseFx(
      "empty = torch.ops.aten.empty.memory_format([4], device = device(\n    type='cuda',   \n    index=0))\n",
    ).graph;
    expect(node(g, 'empty').kwargs.device).toEqual({ kind: 'expr', text: "device( type='cuda', index=0)" });
  });

  it('operator.getitem(x, 0) is getitem; a bare def forward is a module', () => {
    const g = parseFx(
      [
        'def forward(self, t):',
        '    split = torch.ops.aten.split.Tensor(t, 2)',
        '    a = operator.getitem(split, 0)',
        '    return (a,)',
      ].join('\n'),
    ).graph;
    expect(g.form).toBe('module');
    expect(node(g, 'a')).toMatchObject({ op: 'getitem', args: [ref('split'), 0] });
  });

  it('a dtype the IR has no name for keeps the node, drops the type, and warns', () => {
    const { graph: g, warnings } = parseFx('y: "c64[4]" = torch.ops.aten.view_as_complex.default(x)\n');
    expect(node(g, 'y').type).toBeNull();
    expect(warnings.find((w) => w.node === 'y' && w.message.includes("dtype 'c64'"))?.line).toBe(1);
  });
});

describe('parseFx errors name the line, the column and what was expected', () => {
  it('a truncated line', () => {
    const e = importError(
      'mm: "f32[4, 8]" = torch.ops.aten.mm.default(x, w\nadd = torch.ops.aten.add.Tensor(mm, mm)\n',
    );
    expect(e.message).toBe("line 1, col 49: expected ')' to close '(' opened at col 44");
    expect(e.expected).toBe("')'");
  });

  it('a line cut inside its type annotation', () => {
    const e = importError(
      'class M(torch.nn.Module):\n    def forward(self, x: "f32[4]"):\n        y: "f32[4\n',
    );
    expect(e.message).toBe(
      'line 3, col 18: unterminated string: expected " to close the string opened at col 12',
    );
  });

  it('a name used before its definition in a module', () => {
    const e = importError(
      [
        'class M(torch.nn.Module):',
        '    def forward(self, x: "f32[4]"):',
        '        a: "f32[4]" = torch.ops.aten.neg.default(b)',
        '        b: "f32[4]" = torch.ops.aten.neg.default(x)',
        '        return (a,)',
      ].join('\n'),
    );
    expect(e.message).toBe("line 3, col 50: 'b' is used before its definition at line 4");
  });

  it('a name defined nowhere in a module', () => {
    const e = importError(
      'class M(torch.nn.Module):\n    def forward(self, x):\n        a = torch.ops.aten.neg.default(zz)\n        return (a,)\n',
    );
    expect([e.line, e.col]).toEqual([3, 40]);
    expect(e.message).toContain("name 'zz' is not defined");
  });

  it('in a fragment, a name used before a later definition (not an input)', () => {
    const e = importError('a = torch.ops.aten.neg.default(b)\nb = torch.ops.aten.neg.default(x)\n');
    expect(e.message).toBe("line 1, col 32: 'b' is used before its definition at line 2");
  });

  it('duplicate names', () => {
    const e = importError('a = torch.ops.aten.neg.default(x)\n\na = torch.ops.aten.neg.default(x)\n');
    expect(e.message).toBe("line 3, col 1: duplicate name 'a': already defined at line 1");
    const p = importError('class M(torch.nn.Module):\n    def forward(self, x, x):\n        return (x,)\n');
    expect([p.line, p.col]).toEqual([2, 26]);
  });

  it('unbalanced brackets and quotes', () => {
    expect(importError('a = torch.ops.aten.neg.default(x))\n').message).toBe(
      "line 1, col 34: unmatched ')': no bracket is open here",
    );
    expect(importError('a = torch.ops.aten.cat.default([x, y)\n').message).toBe(
      "line 1, col 37: expected ']' to close '[' opened at col 32, found ')'",
    );
    expect(importError("a = torch.ops.vllm.all_reduce.default(x, 'tp:0)\n").message).toBe(
      "line 1, col 48: unterminated string: expected ' to close the string opened at col 42",
    );
  });

  it('binary garbage: NUL bytes and invalid UTF-8', () => {
    const nul = importError('a = torch.ops.aten.neg.default(x)\nb\0\0c\n');
    expect([nul.line, nul.col]).toEqual([2, 2]);
    expect(nul.message).toContain('NUL byte');
    const bytes = Buffer.from([0x61, 0x20, 0x3d, 0x20, 0xff, 0xfe, 0x0a]);
    const bad = importError(new TextDecoder().decode(bytes));
    expect([bad.line, bad.col]).toEqual([1, 5]);
    expect(bad.message).toContain('invalid UTF-8');
  });

  it('a 50 MB paste is refused by size before any other check', () => {
    // NUL bytes throughout: had any scan run first, the error would name them instead.
    const e = importError('\0'.repeat(50 * 1024 * 1024));
    expect(e.message).toBe(
      'line 1, col 1: input is at least 50.0 MB (52428800 characters), over the limit of 16.0 MB (maxBytes = 16777216); import a smaller dump or raise maxBytes',
    );
    // 68 characters, 70 bytes in UTF-8: the limit counts bytes.
    const small = importError('a = torch.ops.aten.neg.default(é)\n'.repeat(2), { maxBytes: 69 });
    expect(small.message).toContain('input is 70 bytes, over the limit of 69 bytes (maxBytes = 69)');
  });

  it('hostile nesting is refused with a limit, not a stack overflow', () => {
    expect(
      importError(`a = torch.ops.x.y.default(${'['.repeat(100_000)}${']'.repeat(100_000)})\n`).message,
    ).toBe('line 1, col 90: brackets nested deeper than 64 levels');
    const classes = Array.from(
      { length: 40 },
      (_, k) => `${' '.repeat(4 * k)}class M${k}(torch.nn.Module):`,
    ).join('\n');
    const e = importError(`${classes}\n`);
    expect(e.message).toBe('line 33, col 129: submodule classes nested deeper than 32 levels');
  });

  it('too many nodes', () => {
    const e = importError(fixture('real/qwen2-paral2_layer1-r0.py'), { maxNodes: 10 });
    expect(e.message).toBe(
      "line 62, col 9: too many nodes: node 'sub' is number 11, over the limit of 10 (maxNodes)",
    );
  });

  it('what a node line must look like', () => {
    expect(importError('a: "f32[4]" torch.ops.aten.neg.default(x)\n').message).toBe(
      "line 1, col 13: expected '=' after 'a: \"…\"', found 'torch'",
    );
    expect(importError('a: f32 = torch.ops.aten.neg.default(x)\n').message).toContain(
      'expected a quoted type like "bf16[4, 8]"',
    );
    expect(importError('a: "f32[4" = torch.ops.aten.neg.default(x)\n').message).toBe(
      'line 1, col 10: expected \']\' to close the shape in type "f32[4"',
    );
    expect(importError('a = 3\n').message).toContain('expected an op call');
    expect(importError('').message).toContain('no graph found');
  });

  it('format() gives file:line:col, the line and a caret', () => {
    const e = importError('x = torch.ops.aten.neg.default(a)\ny = torch.ops.aten.add.Tensor(x, x, , 1)\n', {
      fileName: 'g.fx',
    });
    expect(e.format()).toBe(
      [
        "g.fx:2:37: expected an argument (a name, number, string, list or tuple), found ','",
        'y = torch.ops.aten.add.Tensor(x, x, , 1)',
        '                                    ^',
      ].join('\n'),
    );
    expect(e.source).toBe('g.fx');
  });
});
