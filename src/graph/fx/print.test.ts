import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { withoutSourceLines, type Graph } from '../ir.ts';
import { parseFx } from './parse.ts';
import { printFx } from './print.ts';
import { pyFloatRepr, pyIntRepr, pyStrRepr } from './pythonLiteral.ts';

const FIXTURES = new URL('../../../fixtures/fx/', import.meta.url);
const FILES = ['real', 'seed'].flatMap((d) =>
  readdirSync(new URL(`${d}/`, FIXTURES)).map((f) => `${d}/${f}`),
);
const fixture = (path: string): string => readFileSync(new URL(path, FIXTURES), 'utf8');

describe('printFx round trip: import → print → import is the same graph', () => {
  it('covers every fixture', () => {
    expect(FILES).toHaveLength(8);
  });

  for (const file of FILES) {
    it(file, () => {
      const g = parseFx(fixture(file)).graph;
      const text = printFx(g);
      const again = parseFx(text).graph;
      expect(withoutSourceLines(again)).toEqual(withoutSourceLines(g));
      // Printing is a fixed point after one round.
      expect(printFx(again)).toBe(text);
    });

    it(`${file} as str(graph)`, () => {
      const g = parseFx(fixture(file)).graph;
      const asGraph: Graph = { ...g, form: 'graph', name: 'graph', submodules: {} };
      const text = printFx(asGraph);
      expect(text.startsWith('graph():\n')).toBe(true);
      const again = parseFx(text).graph;
      // str(graph) carries no `# File:` comments.
      const expected = withoutSourceLines(asGraph);
      expected.nodes = expected.nodes.map((n) => ({ ...n, meta: {} }));
      expect(withoutSourceLines(again)).toEqual(expected);
    });
  }

  it('keeps # File: runs and the "No stacktrace" marker', () => {
    const text = [
      'class M(torch.nn.Module):',
      '    def forward(self, x: "f32[4]"):',
      '         # File: a.py:1 in f, code: y = -x',
      '        a: "f32[4]" = torch.ops.aten.neg.default(x)',
      '        b: "f32[4]" = torch.ops.aten.neg.default(a)',
      '        # No stacktrace found for following nodes',
      '        c: "f32[4]" = torch.ops.aten.neg.default(b)',
      '         # File: a.py:2 in f, code: z = y + 1',
      '        d: "f32[4]" = torch.ops.aten.add.Tensor(c, 1)',
      '        return (d,)',
    ].join('\n');
    const g = parseFx(text).graph;
    expect(g.nodes.map((n) => n.meta.file)).toEqual([
      'a.py:1 in f, code: y = -x',
      'a.py:1 in f, code: y = -x',
      undefined,
      'a.py:2 in f, code: z = y + 1',
    ]);
    const printed = printFx(g);
    expect(printed).toBe(
      [
        'class M(torch.nn.Module):',
        '    def forward(self, x: "f32[4]"):',
        '        ',
        '         # File: a.py:1 in f, code: y = -x',
        '        a: "f32[4]" = torch.ops.aten.neg.default(x)',
        '        b: "f32[4]" = torch.ops.aten.neg.default(a)',
        '        ',
        '        # No stacktrace found for following nodes',
        '        c: "f32[4]" = torch.ops.aten.neg.default(b)',
        '        ',
        '         # File: a.py:2 in f, code: z = y + 1',
        '        d: "f32[4]" = torch.ops.aten.add.Tensor(c, 1)',
        '        return (d,)',
        '',
      ].join('\n'),
    );
    expect(withoutSourceLines(parseFx(printed).graph)).toEqual(withoutSourceLines(g));
  });

  it('prints the PR fragment as node lines, without the freeing tails', () => {
    const text = printFx(parseFx(fixture('seed/pr28841-before.fragment.txt')).graph);
    expect(text).toBe(
      [
        "auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops.vllm.moe_forward.default, hidden_states = constant_pad_nd, router_logits = addmm_1, layer_name = 'model.layers.0.mlp.experts')",
        'getitem_3: "bf16[s72, 3072]" = auto_functionalized_1[0]',
        'all_reduce_1: "bf16[s72, 3072]" = torch.ops.vllm.all_reduce.default(getitem_3, \'tp:0\')',
        'slice_1: "bf16[s72, 2880]" = torch.ops.aten.slice.Tensor(all_reduce_1, 1, 0, 2880)',
        'auto_functionalized_2 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = slice_1, residual = getitem_18, weight = arg8_1, epsilon = 1e-05)',
        '',
      ].join('\n'),
    );
  });

  it('round-trips submodules, operators, symbolic types and every literal kind', () => {
    const text = [
      'class GraphModule(torch.nn.Module):',
      '    def forward(self, s0: "Sym(s0)", x: "bf16[s0, 2*s0]", y):',
      '        sym_size_int: "Sym(s0)" = torch.ops.aten.sym_size.int(x, 0)',
      '        mul: "Sym(2*s0)" = sym_size_int * 2',
      '        neg = -mul',
      '        _tensor_constant0 = self._tensor_constant0',
      '        submod_0 = self.submod_0(x, _tensor_constant0)',
      '        getitem = submod_0[-1]',
      "        misc = torch.ops.test.misc.default(y, (1,), (), [(-2, 3.5)], 'it\\'s', 'a\\nb', None, True, -inf, nan, 1e-05, 1e+16, 0.0001, 9223372036854775807, torch.ops._C.rms_norm.default, device(type='cuda', index=0))",
      '        return (getitem, misc)',
      '        ',
      '    class submod_0(torch.nn.Module):',
      '        def forward(self, a, b):',
      '            add = torch.ops.aten.add.Tensor(a, b, alpha = 2)',
      '            return (add,)',
    ].join('\n');
    const g = parseFx(text).graph;
    const printed = printFx(g);
    expect(printed).toContain(
      "torch.ops.test.misc.default(y, (1,), (), [(-2, 3.5)], \"it's\", 'a\\nb', None, True, -inf, nan, 1e-05, 1e+16, 0.0001, 9223372036854775807, torch.ops._C.rms_norm.default, device(type='cuda', index=0))",
    );
    expect(printed).toContain('        mul: "Sym(2*s0)" = sym_size_int * 2\n        neg = -mul\n');
    expect(printed).toContain(
      '    class submod_0(torch.nn.Module):\n        def forward(self, a, b):\n            add = torch.ops.aten.add.Tensor(a, b, alpha = 2)\n',
    );
    expect(withoutSourceLines(parseFx(printed).graph)).toEqual(withoutSourceLines(g));
  });
});

describe('Python literal reprs', () => {
  it('floats as Python prints them', () => {
    expect(
      [1e-5, 1e-6, 0.1, 1, -10000, 1e16, 1e15, 0.0001, 0.00001234, 1.5e300, -0, 0, 123.456].map(pyFloatRepr),
    ).toEqual([
      '1e-05',
      '1e-06',
      '0.1',
      '1.0',
      '-10000.0',
      '1e+16',
      '1000000000000000.0',
      '0.0001',
      '1.234e-05',
      '1.5e+300',
      '-0.0',
      '0.0',
      '123.456',
    ]);
    expect([Infinity, -Infinity, NaN].map(pyFloatRepr)).toEqual(['inf', '-inf', 'nan']);
  });

  it('ints, including sys.maxsize which arrives as 2^63', () => {
    expect(pyIntRepr(Number('9223372036854775807'))).toBe('9223372036854775807');
    expect(pyIntRepr(-(2 ** 63))).toBe('-9223372036854775808');
    expect(pyIntRepr(2 ** 60)).toBe('1152921504606846976');
    expect(pyIntRepr(-3)).toBe('-3');
  });

  it('strings with Python quoting', () => {
    expect(pyStrRepr('tp:0')).toBe("'tp:0'");
    expect(pyStrRepr("it's")).toBe('"it\'s"');
    expect(pyStrRepr('both \' and "')).toBe("'both \\' and \"'");
    expect(pyStrRepr('a\\b\n\x01')).toBe("'a\\\\b\\n\\x01'");
  });
});
