// The passes on graphs captured from a real torch.compile (fixtures/capture, made by
// scripts/capture/capture.py). Expected counts come from vLLM's rules as fixtures/capture/README.md
// derives them: 2L + 1 all-reduce + norm sites in an L-layer decoder, of which GPT-OSS before
// PR #28841 fuses only L + 1 until its L slices are hoisted.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import type { Graph } from '../ir.ts';
import { DEFAULT_PIPELINE, runPipeline } from './pipeline.ts';

const DIR = new URL('../../../fixtures/capture/', import.meta.url).pathname;
const load = (f: string): Graph => importGraph(readFileSync(DIR + f, 'utf8'), { fileName: f }).graph;
const L = 2;
const counts = (g: Graph, worldSize: number) => {
  const r = runPipeline(g, [...DEFAULT_PIPELINE], { worldSize });
  const of = (p: string) => r.stages.find((s) => s.pass === p)!;
  return {
    r,
    noop: of('noop-elimination'),
    hoists: of('slice-hoist').matches.length,
    fusions: of('allreduce-rmsnorm').matches.length,
  };
};

describe('captured GPT-OSS before PR #28841: view clean-up lets the slice hoist', () => {
  for (const tp of [2, 4, 8]) {
    it(`TP ${tp}: folds slice(slice_scatter) and drops the scatter, then L hoists and 2L + 1 fusions`, () => {
      const g = load(`gpt-oss-before-tp${tp}.py`);
      const { r, noop, hoists, fusions } = counts(g, tp);
      // Each FFN all-reduce's next norm wrote back through a scatter (slice_scatter_2, _5 in the
      // capture); the fold consumes the re-slice and the scatter.
      expect(noop.matches.map((m) => m.consumed)).toEqual([
        ['slice_2', 'slice_scatter_2'],
        ['slice_4', 'slice_scatter_5'],
      ]);
      expect(
        noop.graph.nodes.some(
          (n) => n.op === 'aten.slice_scatter.default' && n.name.startsWith('slice_scatter_2'),
        ),
      ).toBe(false);
      expect(hoists).toBe(L);
      expect(fusions).toBe(2 * L + 1);
      expect(r.diagnostics).toEqual([]);
      // The folded output is the final norm's result itself.
      expect(r.output.outputs).not.toEqual(g.outputs);
    });
  }

  it("without view clean-up the scatter is the all-reduce's second reader: L + 1 fusions, and the diagnostic names it", () => {
    const r = runPipeline(load('gpt-oss-before-tp2.py'), ['slice-hoist', 'allreduce-rmsnorm'], {
      worldSize: 2,
    });
    expect(r.stages[0]!.matches).toHaveLength(0);
    expect(r.stages[1]!.matches).toHaveLength(L + 1);
    expect(r.stages[0]!.diagnostics.map((d) => d.blocker)).toEqual(['slice_scatter_2', 'slice_scatter_5']);
  });

  it('a slice over another range than the scatter wrote is not folded', () => {
    const text = readFileSync(DIR + 'gpt-oss-before-tp2.py', 'utf8')
      .replace(
        'torch.ops.aten.slice.Tensor(slice_scatter_2, 1, 0, 96)',
        'torch.ops.aten.slice.Tensor(slice_scatter_2, 1, 0, 64)',
      )
      .replace('slice_2: "bf16[s72, 96]"', 'slice_2: "bf16[s72, 64]"');
    const { noop } = counts(importGraph(text).graph, 2);
    expect(noop.matches.map((m) => m.site)).toEqual(['slice_4']);
  });

  it('an open or negative bound over the same range folds like its literal form', () => {
    const text = readFileSync(DIR + 'gpt-oss-before-tp2.py', 'utf8').replace(
      'torch.ops.aten.slice.Tensor(slice_scatter_2, 1, 0, 96)',
      'torch.ops.aten.slice.Tensor(slice_scatter_2, -1, None, -32)',
    );
    const { noop, hoists } = counts(importGraph(text).graph, 2);
    expect(noop.matches.map((m) => m.site)).toEqual(['slice_2', 'slice_4']);
    expect(hoists).toBe(L);
  });
});

describe('captures that already fuse keep 2L + 1', () => {
  const cases: [string, number][] = [
    ['gpt-oss-after-tp2.py', 2],
    ['gpt-oss-after-tp4.py', 4],
    ['gpt-oss-after-tp8.py', 8],
    ['llama-tp2.py', 2],
    ['qwen3-moe-tp4.py', 4],
    ['llama-tp2.debug.fx_graph_readable.py', 2],
  ];
  for (const [file, tp] of cases) {
    it(file, () => {
      const { noop, hoists, fusions } = counts(load(file), tp);
      expect(noop.matches).toHaveLength(0);
      expect(hoists).toBe(0);
      expect(fusions).toBe(2 * L + 1);
    });
  }

  it('piecewise pieces: 1, 2 and 2 sites (embedding → first norm; o_proj and FFN → the next norm)', () => {
    expect([0, 1, 2].map((i) => counts(load(`llama-tp2-piecewise.piece${i}.py`), 2).fusions)).toEqual([
      1, 2, 2,
    ]);
  });
});

describe('str(graph) twins count as their print_readable twins', () => {
  const cases: [string, number][] = [
    ['gpt-oss-before-tp2', 2],
    ['gpt-oss-before-tp4', 4],
    ['gpt-oss-before-tp8', 8],
    ['gpt-oss-after-tp2', 2],
    ['llama-tp2', 2],
    ['qwen3-moe-tp4', 4],
    ['llama-tp2-v2', 2],
  ];
  for (const [name, tp] of cases) {
    it(`${name}: the same folds, hoists and fusions, with no shapes`, () => {
      const twin = counts(load(`${name}.graph.txt`), tp);
      const typed = counts(load(`${name}.py`), tp);
      expect(twin.noop.matches).toEqual(typed.noop.matches);
      expect([twin.hoists, twin.fusions]).toEqual([typed.hoists, typed.fusions]);
      expect(twin.fusions).toBe(2 * L + 1);
    });
  }
});
