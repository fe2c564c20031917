// The pure side of the pipeline worker, on the generated GPT-OSS graph: graphs split into parts
// and put back equal, and a replay that keeps the stages it already has equals one from scratch.

import { describe, expect, it } from 'vitest';
import { generateSample } from '../../graph/samples/index.ts';
import { parseFx } from '../../graph/fx/parse.ts';
import { DEFAULT_GATES, PASS_ORDER } from '../store/passesSlice.ts';
import { GraphAssembler, NODES_PER_PART, graphParts } from './graphParts.ts';
import { loadSource, recount, replay, reusableStages, type Stage } from './pipelineJobs.ts';

const graph = parseFx(generateSample('gpt-oss-20b', { layers: 4, tp: 4 })).graph;
const big = parseFx(generateSample('gpt-oss-20b', { layers: 24, tp: 4 })).graph;
const gates = { ...DEFAULT_GATES, worldSize: 4 };
const steps = PASS_ORDER.map((pass) => ({ pass }));

describe('graph parts', () => {
  it('splits a graph into parts of at most NODES_PER_PART nodes that assemble to an equal graph', () => {
    const parts = [...graphParts(big, 3)];
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.length).toBe(Math.ceil(big.nodes.length / NODES_PER_PART));
    expect(parts.every((p) => p.nodes.length <= NODES_PER_PART && p.slot === 3)).toBe(true);
    expect(parts.map((p) => p.last)).toEqual(parts.map((_, i) => i === parts.length - 1));
    const a = new GraphAssembler();
    // Parts cross as clones, as postMessage makes them.
    for (const p of parts) a.add(structuredClone(p));
    expect(JSON.stringify(a.take(3))).toBe(JSON.stringify(big));
  });

  it('refuses to hand over a graph whose last part has not arrived', () => {
    const a = new GraphAssembler();
    a.add([...graphParts(big, 0)][0]);
    expect(() => a.take(0)).toThrow('graph 0 did not arrive complete');
  });
});

describe('replay with known stages', () => {
  const full = replay([{ graph, step: null, matches: [] }], steps, gates);

  it('keeps the stages it is given for the same steps and gates, and computes the rest alike', () => {
    expect(full.error).toBeNull();
    const known: Stage[] = full.stages.slice(0, 2);
    expect(reusableStages(full.stages.slice(0, 2), gates, steps, gates)).toBe(2);
    const again = replay(known, steps, gates);
    expect(again.stages[1]).toBe(full.stages[1]);
    expect(again.stages.map((s) => JSON.stringify(s.graph))).toEqual(
      full.stages.map((s) => JSON.stringify(s.graph)),
    );
    expect(again.stages.map((s) => s.matches.length)).toEqual(full.stages.map((s) => s.matches.length));
  });

  it('reuses only the base when the gates changed, and no stage past a different step', () => {
    expect(reusableStages(full.stages, gates, steps, { ...gates, worldSize: 8 })).toBe(1);
    expect(reusableStages(full.stages, gates, [steps[0], { pass: 'async-tp' }], gates)).toBe(2);
    expect(reusableStages(full.stages, gates, steps.slice(0, 1), gates)).toBe(2);
  });

  it('counts the fusable sites of the hoisted graph (2L+1 at 4 layers)', () => {
    expect(recount(full.stages[2].graph, gates).sites['allreduce-rmsnorm']).toHaveLength(9);
  });
});

describe('loading a source', () => {
  it('names an unknown sample, and the line of text that does not import', () => {
    expect(loadSource({ sample: 'nope' })).toEqual({ kind: 'notice', message: 'No built-in sample "nope"' });
    const text =
      'b: "bf16[4]" = torch.ops.aten.clone.default(a)\nc: "bf16[4" = torch.ops.aten.clone.default(b)\n';
    const r = loadSource({ text, name: 'bad.py' });
    expect(r.kind).toBe('import-error');
    if (r.kind === 'import-error') expect([r.error.line, r.error.text]).toEqual([2, text]);
  });
});
