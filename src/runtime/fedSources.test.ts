// A verdict never claims more than was computed: outputs downstream of a fed node (no kernel,
// seeded random values) name it and are never proven; a graph computed end to end is proven.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { generateSample } from '../graph/samples/index.ts';
import { compareRewrite, planGraph } from './index.ts';
import { fedSourcesOfOutputs } from './fedSources.ts';
import { tinyCpuRun } from './testRuns.ts';

const SEED_DIR = new URL('../../fixtures/fx/seed', import.meta.url).pathname;
const fragment = () => parseFx(readFileSync(`${SEED_DIR}/pr28841-before.fragment.txt`, 'utf8')).graph;
const base = tinyCpuRun({ seed: 7 });

describe('fed sources of outputs', () => {
  it('the PR fragment computes every path: no output depends on a fed node, and the comparison is proven', async () => {
    const plan = planGraph(fragment(), base);
    expect(plan.fed).toEqual([]);
    expect([...fedSourcesOfOutputs(plan).values()].every((f) => f.length === 0)).toBe(true);
    const rep = await compareRewrite(fragment(), ['slice-hoist', 'allreduce-rmsnorm'], base);
    expect(rep.fedOnComparedPaths).toEqual([]);
    expect(rep.outputs.every((o) => o.proven)).toBe(true);
    expect(rep.verdict).toBe('proven');
  });

  it('a sample whose attention op has no kernel: the final output names the attention node and is not proven', async () => {
    // An attention backend fusionlab does not know: imported opaque, fed from its results' types.
    const text = generateSample('gpt-oss-20b', { layers: 1, tp: 2 }).replaceAll(
      'vllm.unified_attention_with_output.default',
      'vllm.some_attention_backend.default',
    );
    const g = parseFx(text).graph;
    const plan = planGraph(g, base);
    const attention = g.nodes.find(
      (n) =>
        n.op === 'higher_order.auto_functionalized' &&
        JSON.stringify(n.args[0]).includes('some_attention_backend'),
    )!;
    expect(plan.fed).toContain(attention.name);
    const fed = fedSourcesOfOutputs(plan);
    for (const o of plan.outputs) expect(fed.get(o.name)).toContain(attention.name);
    const rep = await compareRewrite(g, ['slice-hoist', 'allreduce-rmsnorm'], base);
    expect(rep.ok).toBe(true);
    expect(rep.fedOnComparedPaths).toContain(attention.name);
    expect(rep.outputs.every((o) => !o.proven && o.fedFrom.includes(attention.name))).toBe(true);
    expect(rep.verdict).toBe('depends-on-fed');
  });

  it('planned for the agent, whose worker has no attention or rotary kernel yet, those nodes are fed and named', () => {
    const g = parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 2 })).graph;
    expect(planGraph(g, base).fed).toEqual([]);
    const plan = planGraph(g, { ...base, backend: 'agent' });
    const ops = plan.fed.map((name) => JSON.stringify(g.nodes.find((n) => n.name === name)!.args[0]));
    expect(ops.some((o) => o.includes('unified_attention'))).toBe(true);
    expect(ops.some((o) => o.includes('rotary_embedding'))).toBe(true);
    expect([...fedSourcesOfOutputs(plan).values()].every((f) => f.length > 0)).toBe(true);
  });

  it('a fed node off every output path is not named: only what reaches an output counts', () => {
    // An op with no kernel whose result nobody reads is an output of its own (a fragment's
    // unread value) but reaches none of the others.
    const text =
      readFileSync(`${SEED_DIR}/pr28841-before.fragment.txt`, 'utf8') +
      '\nunused: "bf16[s72, 64]" = torch.ops.aten.some_unknown_op.default(slice_1)\n';
    const plan = planGraph(parseFx(text).graph, base);
    expect(plan.fed).toEqual(['unused']);
    const fed = fedSourcesOfOutputs(plan);
    expect(fed.get('unused')).toEqual(['unused']);
    const others = [...fed].filter(([name]) => name !== 'unused');
    expect(others.length).toBeGreaterThan(0);
    expect(others.every(([, f]) => f.length === 0)).toBe(true);
  });
});
