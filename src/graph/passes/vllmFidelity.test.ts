// The passes on graphs from a real torch.compile (fixtures/capture, see its README for how each
// was made and why each count is what vLLM's rules give), and on the generated samples at the
// sizes vLLM's e2e test checks. Every `.graph.txt` is the str(graph) twin of its `.py`: no shapes,
// the same counts (the run-time token fallback needs none), each site saying what it assumed.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import type { Graph } from '../ir.ts';
import { generateSample } from '../samples/index.ts';
import { DEFAULT_PIPELINE, runPipeline } from './pipeline.ts';
import { functionalizedTarget } from '../call.ts';
import { FUSED_ALLREDUCE_NORM } from './patternOps.ts';

const DIR = new URL('../../../fixtures/capture/', import.meta.url).pathname;
const load = (f: string): Graph => importGraph(readFileSync(DIR + f, 'utf8'), { fileName: f }).graph;
const FUSED = FUSED_ALLREDUCE_NORM;
const patternCodes = (g: Graph) =>
  g.nodes.filter((n) => functionalizedTarget(n) === FUSED).map((n) => n.kwargs['pattern_code']);

/** file stem, world size, fused pattern codes in graph order (1 plain, 2 + static FP8 quant). */
const CAPTURES: [string, number, number[]][] = [
  // Before the PR: fused after view clean-up and the L slice hoists (captures.test.ts pins those).
  ['gpt-oss-before-tp2', 2, [1, 1, 1, 1, 1]],
  ['gpt-oss-before-tp4', 4, [1, 1, 1, 1, 1]],
  ['gpt-oss-before-tp8', 8, [1, 1, 1, 1, 1]],
  ['gpt-oss-after-tp2', 2, [1, 1, 1, 1, 1]],
  ['gpt-oss-after-tp4', 4, [1, 1, 1, 1, 1]],
  ['gpt-oss-after-tp8', 8, [1, 1, 1, 1, 1]],
  ['llama-tp2', 2, [1, 1, 1, 1, 1]],
  ['qwen3-moe-tp4', 4, [1, 1, 1, 1, 1]],
  // The four norms that feed a projection absorb its quant; the final norm feeds none.
  ['llama-fp8-tp2', 2, [2, 2, 2, 2, 1]],
  ['llama-tp2-v2', 2, [1, 1, 1, 1, 1]],
  ['llama-tp2-piecewise.piece0', 2, [1]],
  ['llama-tp2-piecewise.piece1', 2, [1, 1]],
  ['llama-tp2-piecewise.piece2', 2, [1, 1]],
];

describe('captured graphs: all-reduce + norm fusions as vLLM counts them', () => {
  for (const [stem, worldSize, codes] of CAPTURES) {
    it(`${stem}: ${codes.length} fused (${codes.join('')}), and its str(graph) twin the same`, () => {
      const typed = runPipeline(load(`${stem}.py`), [...DEFAULT_PIPELINE], { worldSize });
      expect(patternCodes(typed.output)).toEqual(codes);
      expect(typed.diagnostics).toEqual([]);
      expect(typed.stages[2]!.matches.every((m) => m.unevaluated === undefined)).toBe(true);
      const bare = runPipeline(load(`${stem}.graph.txt`), [...DEFAULT_PIPELINE], { worldSize });
      expect(bare.stages[1]!.matches.map((m) => m.site)).toEqual(typed.stages[1]!.matches.map((m) => m.site));
      expect(bare.stages[2]!.matches.map((m) => m.site)).toEqual(typed.stages[2]!.matches.map((m) => m.site));
      expect(patternCodes(bare.output)).toEqual(codes);
      for (const m of bare.stages[2]!.matches)
        expect(m.unevaluated, m.site).toEqual([expect.stringContaining('token capacity')]);
    });
  }

  it("llama-fp8-tp2: a quant site takes the quant's scale as scale_factor and an fp8 buffer as quant_out", () => {
    const g = runPipeline(load('llama-fp8-tp2.py'), [...DEFAULT_PIPELINE], { worldSize: 2 }).output;
    const fused = g.nodes.filter((n) => n.kwargs['pattern_code'] === 2);
    for (const f of fused) {
      const buf = g.nodes.find((n) => n.name === (f.kwargs['quant_out'] as { name: string }).name)!;
      expect(buf.kwargs['dtype']).toEqual({ kind: 'expr', text: 'torch.float8_e4m3fn' });
      expect(f.kwargs['scale_factor']).toMatchObject({ kind: 'ref' });
    }
    expect(fused).toHaveLength(4);
    // Every quant was absorbed: none is left to run on its own.
    expect(g.nodes.some((n) => JSON.stringify(n.args[0] ?? null).includes('static_scaled_fp8_quant'))).toBe(
      false,
    );
  });

  it('TORCH_COMPILE_DEBUG: fx_graph_readable fuses 5; fx_graph_transformed (in-place calls, no auto_functionalized) 0, each all-reduce named', () => {
    expect(
      patternCodes(
        runPipeline(load('llama-tp2.debug.fx_graph_readable.py'), [...DEFAULT_PIPELINE], { worldSize: 2 })
          .output,
      ),
    ).toHaveLength(5);
    const t = runPipeline(load('llama-tp2.debug.fx_graph_transformed.py'), [...DEFAULT_PIPELINE], {
      worldSize: 2,
    });
    expect(t.stages[2]!.matches).toEqual([]);
    expect(t.diagnostics).toHaveLength(5);
    // Each names the in-place norm and where the fusable form is.
    for (const d of t.diagnostics) {
      expect(d.reason).toContain(
        "called in place: vLLM's patterns match the norm through auto_functionalized",
      );
      expect(d.blocker).toMatch(/^(fused_add_)?rms_norm_default/);
    }
  });

  it('an all-reduce over another group in a capture stays unfused, its diagnostic naming the group', () => {
    const text = readFileSync(DIR + 'llama-tp2.py', 'utf8').replaceAll("'tp:0'", "'dp:0'");
    const r = runPipeline(importGraph(text).graph, [...DEFAULT_PIPELINE], { worldSize: 2 });
    expect(patternCodes(r.output)).toEqual([]);
    expect(r.diagnostics.map((d) => d.blocker)).toEqual(Array(5).fill('group'));
    expect(r.diagnostics[0]!.reason).toContain("reduces over 'dp:0', not the TP group 'tp:0'");
  });
});

describe('bad input stays a clear message', () => {
  it('an unknown higher-order op imports as an opaque node with a warning naming it and its line; the passes run past it', () => {
    const text = [
      'def forward(self, x: "bf16[s72, 96]"):',
      "    invoke_subgraph = torch.ops.higher_order.invoke_subgraph(self.subgraph_0, 'subgraph_0', x);  x = None",
      '    getitem: "bf16[s72, 96]" = invoke_subgraph[0]',
      '    return (getitem,)',
    ].join('\n');
    const r = importGraph(text);
    expect(r.warnings).toEqual([
      expect.objectContaining({
        line: 2,
        message: expect.stringContaining("unknown op 'higher_order.invoke_subgraph'"),
      }),
    ]);
    expect(runPipeline(r.graph, [...DEFAULT_PIPELINE]).diagnostics).toEqual([]);
  });
});

describe("vLLM's e2e counts on the generated models", () => {
  // tests/compile/distributed/test_fusions_e2e.py: 2L + 1 all-reduce + norm matches.
  const cases: [Parameters<typeof generateSample>[0], number, number][] = [
    ['gpt-oss-20b', 24, 49],
    ['llama', 32, 65],
    ['qwen3-moe', 48, 97],
  ];
  for (const [model, layers, count] of cases) {
    it(`${model} (${layers} layers): ${count} at TP 2, 4 and 8`, () => {
      for (const tp of [2, 4, 8]) {
        const r = runPipeline(importGraph(generateSample(model, { tp })).graph, [...DEFAULT_PIPELINE], {
          worldSize: tp,
        });
        expect(r.stages[2]!.matches, `${model} tp ${tp}`).toHaveLength(count);
        expect(r.diagnostics).toEqual([]);
      }
    });
  }
});
