import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseFx } from './fx/parse.ts';
import { generateSample } from './samples/index.ts';
import { DEFAULT_PIPELINE, runPipeline } from './passes/pipeline.ts';
import { changeMarks, diffGraphs } from './diff.ts';

const tally = (m: Map<string, string>) => {
  const c: Record<string, number> = {};
  for (const v of m.values()) c[v] = (c[v] ?? 0) + 1;
  return c;
};

describe('diffGraphs', () => {
  it('maps the PR fragment through slice-hoist and the fusion', () => {
    const before = parseFx(
      readFileSync(new URL('../../fixtures/fx/seed/pr28841-before.fragment.txt', import.meta.url), 'utf8'),
    ).graph;
    const r = runPipeline(before, DEFAULT_PIPELINE, { worldSize: 4 });
    const d = diffGraphs(
      before,
      r.output,
      r.stages.flatMap((s) => s.matches),
    );
    expect([...d.before]).toEqual([
      ['auto_functionalized_1', 'unchanged'],
      ['getitem_3', 'unchanged'],
      ['slice_1', 'moved'],
      ['all_reduce_1', 'removed'],
      ['auto_functionalized_2', 'removed'],
    ]);
    expect([...d.after]).toEqual([
      ['auto_functionalized_1', 'unchanged'],
      ['getitem_3', 'unchanged'],
      ['slice_1', 'moved'],
      ['auto_functionalized', 'fused'],
    ]);
    // The all-reduce and the norm both went into the fused kernel.
    expect([...d.mergedInto]).toEqual([
      ['all_reduce_1', 'auto_functionalized'],
      ['auto_functionalized_2', 'auto_functionalized'],
    ]);
    expect(d.afterToBefore.get('slice_1')).toBe('slice_1');
    expect(d.beforeToAfter.has('all_reduce_1')).toBe(false);
    expect([...changeMarks(d.after)]).toEqual([
      ['slice_1', 'moved'],
      ['auto_functionalized', 'fused'],
    ]);
  });

  it('counts the 24-layer GPT-OSS rewrite: 24 hoisted slices, 49 fused sites', () => {
    const before = parseFx(generateSample('gpt-oss-20b', { layers: 24, tp: 4 })).graph;
    const r = runPipeline(before, DEFAULT_PIPELINE);
    const d = diffGraphs(
      before,
      r.output,
      r.stages.flatMap((s) => s.matches),
    );
    const after = tally(d.after);
    expect(after.fused).toBe(49);
    // Moved: the 24 slices, and the first layer's norm buffer that now reads the pre-all-reduce value.
    expect(after.moved).toBe(25);
    expect(
      [...d.after].filter(
        ([n, c]) => c === 'moved' && r.output.nodes.find((x) => x.name === n)!.op === 'aten.slice.Tensor',
      ).length,
    ).toBe(24);
    // Added: the first layer's zero residual and the fused op's extra result.
    expect(after.added).toBe(2);
    // Every before-node is accounted for once, and every after-node too.
    expect(d.before.size).toBe(before.nodes.length);
    expect(d.after.size).toBe(r.output.nodes.length);
    expect(tally(d.before).removed).toBe(before.nodes.length - d.beforeToAfter.size);
    // Each removed all_reduce merged into a fused node.
    const removedAllReduces = before.nodes.filter(
      (n) => n.op === 'vllm.all_reduce.default' && d.before.get(n.name) === 'removed',
    );
    expect(removedAllReduces.length).toBe(49);
    for (const n of removedAllReduces) expect(d.after.get(d.mergedInto.get(n.name)!)).toBe('fused');
  });

  it('maps by name alone when there are no matches', () => {
    const g = parseFx(
      readFileSync(new URL('../../fixtures/fx/real/qwen2-paral2_layer1-r0.py', import.meta.url), 'utf8'),
    ).graph;
    const d = diffGraphs(g, g);
    expect(tally(d.after)).toEqual({ unchanged: g.nodes.length });
    expect(changeMarks(d.before).size).toBe(0);
  });

  it('fuses the three sites of the real Qwen2 TP2 dump', () => {
    const g = parseFx(
      readFileSync(new URL('../../fixtures/fx/real/qwen2-paral2_layer1-r0.py', import.meta.url), 'utf8'),
    ).graph;
    const r = runPipeline(g, DEFAULT_PIPELINE);
    const d = diffGraphs(
      g,
      r.output,
      r.stages.flatMap((s) => s.matches),
    );
    expect(tally(d.after).fused).toBe(3);
    expect(
      g.nodes.filter((n) => n.op === 'vllm.all_reduce.default').map((n) => d.before.get(n.name)),
    ).toEqual(['removed', 'removed', 'removed']);
  });
});
