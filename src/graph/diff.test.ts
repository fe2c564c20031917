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

  it("pairs the fused op's results by role, never by index (GPT-OSS TP4, slice-hoist → allreduce-rmsnorm)", () => {
    const before = parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 4 })).graph;
    const r = runPipeline(before, ['slice-hoist', 'allreduce-rmsnorm']);
    const d = diffGraphs(
      before,
      r.output,
      r.stages.flatMap((s) => s.matches),
    );
    const node = (g: typeof before, name: string) => g.nodes.find((n) => n.name === name)!;
    // The first layer's site: rms_norm(all_reduce(embedding)) → the fused op, whose [3] is the
    // normed output (rms_norm's [1]) and whose [1] holds the all-reduced sum the residual reads.
    const fusedOp = r.output.nodes.find(
      (n) => d.after.get(n.name) === 'fused' && n.kwargs['norm_out'] !== null,
    )!;
    const resultOf = (i: number) =>
      r.output.nodes.find(
        (n) =>
          n.op === 'getitem' &&
          JSON.stringify(n.args) === JSON.stringify([{ kind: 'ref', name: fusedOp.name }, i]),
      )!;
    const normed = resultOf(3),
      sum = resultOf(1);
    const allReduce = node(before, 'all_reduce');
    expect(allReduce.op).toBe('vllm.all_reduce.default');
    const beforeNormed = d.counterparts.get(normed.name)!;
    expect(node(before, beforeNormed).args[1]).toBe(1);
    expect(d.afterToBefore.get(normed.name)).toBe(beforeNormed);
    // The sum stands for the all-reduce, which stays removed (merged into the fused op).
    expect(d.counterparts.get(sum.name)).toBe('all_reduce');
    expect(d.afterToBefore.has(sum.name)).toBe(false);
    expect(d.after.get(sum.name)).toBe('added');
    expect(d.before.get('all_reduce')).toBe('removed');
    expect(d.mergedInto.get('all_reduce')).toBe(fusedOp.name);
    // What reads the normed output (the qkv projection) reads the same value: unchanged.
    const qkv = r.output.nodes.find((n) => n.op === 'aten.addmm.default')!;
    expect(d.after.get(qkv.name)).toBe('unchanged');
    // A node made from nothing the before graph had has no counterpart at all.
    const zeros = r.output.nodes.find((n) => n.op === 'aten.zeros_like.default')!;
    expect(d.counterparts.has(zeros.name)).toBe(false);
  });

  it("pairs a getitem only with a getitem of its producer's counterpart, across every pass", () => {
    const pipelines = [
      ['gpt-oss-20b', ['slice-hoist', 'allreduce-rmsnorm']],
      ['gpt-oss-20b', ['slice-hoist', 'sequence-parallelism', 'async-tp']],
      ['gpt-oss-20b', ['moe-unpad', 'allreduce-rmsnorm']],
      ['llama', ['sequence-parallelism', 'async-tp']],
      ['qwen3-moe', ['allreduce-rmsnorm']],
    ] as const;
    for (const [model, passes] of pipelines) {
      const before = parseFx(generateSample(model, { layers: 2, tp: 2 })).graph;
      const r = runPipeline(before, [...passes], { worldSize: 2 });
      const d = diffGraphs(
        before,
        r.output,
        r.stages.flatMap((s) => s.matches),
      );
      const producer = (g: typeof before, name: string) =>
        (g.nodes.find((n) => n.name === name)!.args[0] as { name: string }).name;
      for (const [a, b] of d.afterToBefore) {
        const an = r.output.nodes.find((n) => n.name === a)!;
        if (an.op !== 'getitem') continue;
        const pa = producer(r.output, a),
          pb = producer(before, b);
        // Provenance: a node the pass kept is the same name; a node it made says what it stands for.
        expect(an.meta.madeBy?.from.includes(b) ?? a === b, `${a} ↔ ${b}: not by provenance`).toBe(true);
        expect(
          d.afterToBefore.get(pa) === pb || d.mergedInto.get(pb) === pa,
          `${model} ${passes.join(',')}: ${a} (of ${pa}) ↔ ${b} (of ${pb})`,
        ).toBe(true);
      }
    }
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
