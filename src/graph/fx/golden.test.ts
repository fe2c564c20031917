// Pins what the FX importer makes of every fixture, of the generated samples and of seeded
// mutants of both: the graph, its warnings, the printed text, and for malformed input the error
// with its line, column and expectation. A change to the importer that changes any of these
// fails here; update the snapshot (`npx vitest run src/graph/fx/golden.test.ts -u`) only for a
// change meant to alter what users see.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GraphImportError } from '../errors.ts';
import { importGraph } from '../formats.ts';
import { mutateText, prng } from '../mutants.ts';
import { generateSample, SAMPLE_MODELS } from '../samples/index.ts';
import { importStageFolder, type StageFile } from '../stageFolder.ts';
import { parseFx } from './parse.ts';
import { printFx } from './print.ts';

const ROOT = new URL('../../../fixtures/', import.meta.url).pathname;

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = `${dir}/${name}`;
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

const FIXTURES = filesUnder(ROOT.replace(/\/$/, '')).map((path) => ({
  file: path.slice(ROOT.length),
  text: readFileSync(path, 'utf8'),
}));

/** Small texts of every form and statement the importer reads, beyond what the dumps hold. */
const FORMS: { file: string; text: string }[] = [
  {
    file: 'module with submodules',
    text: [
      'import torch',
      'b8: bool',
      'class GraphModule(torch.nn.Module):',
      '    def forward(self, x: "f32[4, 8]", w: "f32[8, 8]", n = 3):',
      '        submod_0 = self.submod_0(x, w);  x = w = None',
      '        getitem: "f32[4, 8]" = submod_0[0]',
      '        _tensor_constant0 = self._tensor_constant0',
      '        return (getitem,)',
      '        ',
      '    class submod_0(torch.nn.Module):',
      '        def forward(',
      '            self,',
      '            x: "f32[4, 8]",',
      '            w: "f32[8, 8]",',
      '            s0: "Sym(s0)",',
      '        ) -> "f32[4, 8]":',
      '             # File: /model.py:12 in forward, code: return x @ w',
      '            mm: "f32[4, 8]" = torch.ops.aten.mm.default(x, w);  x = w = None',
      '            twice: "Sym(2*s0)" = s0 * 2',
      '            # No stacktrace found for following nodes',
      '            flipped = -twice',
      '            lo: "f32[4, 8]" = torch.ops.aten.clamp.default(mm, -inf, inf)',
      '            af = torch.ops.higher_order.auto_functionalized(torch.ops._C.rms_norm.default, result = mm, input = lo, weight = w, epsilon = 1e-05)',
      "            odd = torch.ops.test.odd.default(lo, (1,), (), [(-2, 3.5)], 'it\\'s', \"q\", None, True, False, 1.0, 1e+20, {'a': 1}, 9223372036854775807)",
      '            blank: "f32[]" = torch.ops.aten.full.default([], nan, dtype = torch.float32, device = device(',
      "                type='cuda',",
      '                index=0))',
      '            return (mm,)',
      '        class submod_1(torch.nn.Module):',
      '            def forward(self):',
      '                return ()',
      '',
    ].join('\n'),
  },
  {
    file: 'bare forward',
    text: [
      '# a pasted forward',
      'def forward(self, t: "bf16[s0, 16]", s0: "Sym(s0)"):',
      '    split = torch.ops.aten.split.Tensor(t, 2)',
      '    a = operator.getitem(split, 0)',
      '    b = self.submod_2(a)',
      '    c: "c64[4]" = torch.ops.aten.view_as_complex.default(a)',
      '    return (a, b)',
    ].join('\n'),
  },
  {
    file: 'str(graph)',
    text: [
      'graph():',
      '    %a : [num_users=2] = placeholder[target=a] : "bf16[8, 8]"',
      '    %b : [#users=1] = placeholder[target=b](default=None)',
      '    %sum_1 : [num_users=1] = call_function[target=torch.ops.aten.add.Tensor](args = (%a, %b), kwargs = {alpha: 2, note: "a b"}) : "bf16[8, 8]"',
      '    %reduced : [num_users=1] = call_function[target=torch.ops.vllm.all_reduce.default](args = (%sum_1, tp:0), kwargs = {})',
      '    %parts : [num_users=1] = call_function[target=torch.ops.aten.split_with_sizes.default](args = (%reduced, [4, 4], 1), kwargs = {})',
      '    %first : [num_users=1] = call_function[target=operator.getitem](args = (%parts, 0), kwargs = {})',
      '    %rows : [num_users=1] = call_method[target=size](args = (%first, 0), kwargs = {})',
      '    %inner : [num_users=1] = call_module[target=inner](args = (%first,), kwargs = {})',
      '    %_tensor_constant0 : [num_users=0] = get_attr[target=_tensor_constant0]',
      '    return (inner, a)',
    ].join('\n'),
  },
  {
    file: 'str(graph) output node',
    text: [
      'graph():',
      '    %x : [num_users=1] = placeholder[target=x]',
      '    %neg : [num_users=1] = call_function[target=torch.ops.aten.neg.default](args = (%x,), kwargs = {})',
      '    %output : [num_users=0] = output[target=output](args = ((%neg, %x),), kwargs = {})',
    ].join('\n'),
  },
  {
    file: 'fragment',
    text: [
      '# before',
      ' # File: /vllm/model.py:1 in forward, code: x = f(y)',
      'all_reduce: "bf16[s72, 3072]" = torch.ops.vllm.all_reduce.default(moe, \'tp:0\')',
      'slice_1: "bf16[s72, 2880]" = torch.ops.aten.slice.Tensor(all_reduce, 1, 0, 2880)',
      'af = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = slice_1, residual = res, weight = w, epsilon = 1e-05)',
      'getitem_1: "bf16[s72, 2880]" = af[1]',
      'getitem_2: "bf16[s72, 2880]" = af[2]',
      'sub = self.submod_1(getitem_1)',
      'inv = ~getitem_2',
      'return (getitem_1, getitem_2)',
    ].join('\n'),
  },
];

const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

/** One import as a short line: the graph, warnings and printed text, or where and why it failed. */
function outcome(text: string, fileName?: string): string {
  try {
    const { graph, warnings } = parseFx(text, fileName === undefined ? {} : { fileName });
    const nodes = graph.nodes.length;
    return `graph ${nodes} nodes ${warnings.length} warnings ${hash(JSON.stringify({ graph, warnings }))} printed ${hash(printFx(graph))}`;
  } catch (e) {
    if (!(e instanceof GraphImportError)) return `threw ${String(e)}`;
    return `error ${e.line}:${e.col} ${hash(JSON.stringify([e.format(), e.expected ?? null]))}`;
  }
}

/** The outcome of each of `cases` seeded mutants of the sources, picked at random. */
function mutantOutcomes(sources: { file: string; text: string }[], seed: number, cases: number): string[] {
  const rnd = prng(seed);
  const got: string[] = [];
  for (let c = 0; c < cases; c++) {
    const src = sources[Math.floor(rnd() * sources.length)]!;
    got.push(`${c} ${src.file}: ${outcome(mutateText(src.text, rnd).text)}`);
  }
  return got;
}

describe('golden imports', () => {
  it('every fixture file', () => {
    const got: Record<string, string> = {};
    for (const f of FIXTURES) {
      let format = '-';
      try {
        format = importGraph(f.text, { fileName: f.file }).format;
      } catch {
        // the outcome below says why
      }
      got[f.file] = `${format}: ${outcome(f.text, f.file)}`;
    }
    expect(FIXTURES.length).toBeGreaterThan(30);
    expect(got).toMatchSnapshot();
  });

  it('the dump folders as stages', () => {
    const folder = (prefix: string): StageFile[] =>
      FIXTURES.filter((f) => f.file.startsWith(prefix)).map((f) => ({ path: f.file, text: f.text }));
    const summary = (files: StageFile[]) => {
      const r = importStageFolder(files);
      return {
        stages: r.stages.map((s) => `${s.name} ${s.format} ${hash(JSON.stringify([s.graph, s.warnings]))}`),
        skipped: r.skipped,
      };
    };
    expect({
      vllm: summary(folder('capture/vllm-dump-gpt-oss-before-tp2/')),
      inductor: summary(folder('capture/llama-tp2.debug.')),
      fixtures: summary(folder('fx/')),
    }).toMatchSnapshot();
  });

  it('the generated samples', () => {
    const got: Record<string, string> = {};
    for (const model of SAMPLE_MODELS) {
      for (const [layers, tp] of [
        [1, 2],
        [3, 4],
        [2, 8],
      ] as const) {
        const text = generateSample(model, { layers, tp });
        got[`${model} L${layers} tp${tp}`] = `text ${hash(text)}: ${outcome(text)}`;
      }
    }
    expect(got).toMatchSnapshot();
  });

  it('the forms', () => {
    expect(Object.fromEntries(FORMS.map((f) => [f.file, outcome(f.text)]))).toMatchSnapshot();
  });

  it('seeded mutants of every form', () => {
    expect(mutantOutcomes(FORMS, 2880, 1500)).toMatchSnapshot();
  });

  it('seeded mutants of the fixtures and samples: same graphs, same errors at the same places', () => {
    const sources = [
      ...FIXTURES.filter((f) => !f.file.endsWith('.md')),
      { file: 'sample llama', text: generateSample('llama', { layers: 1, tp: 2 }) },
    ];
    expect(mutantOutcomes(sources, 28841, 1000)).toMatchSnapshot();
  });
});
