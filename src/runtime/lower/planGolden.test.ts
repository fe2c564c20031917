// The planner's output, pinned: for the sample graphs (before and after each pipeline) and every
// captured or real graph in fixtures/, at the tiny preset, several rank counts, bf16 and f32, a
// hash of the whole plan (storages, steps with their key order, outputs, fed nodes, lifetimes) or
// of the error it raised. A change to how any op lowers shows here as the cases whose hash moved.
//
// PLAN_GOLDEN_WRITE=1 rewrites planGolden.json; PLAN_GOLDEN_DUMP=<dir> writes each plan's JSON
// there, to diff what moved.

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../../graph/formats.ts';
import type { Graph } from '../../graph/ir.ts';
import { DEFAULT_PIPELINE, SEQUENCE_PARALLEL_PIPELINE, runPipeline } from '../../graph/passes/pipeline.ts';
import { generateSample, SAMPLE_MODELS } from '../../graph/samples/index.ts';
import { buildPlan, type FloatDType, type Plan } from '../plan.ts';
import { RunError } from '../runError.ts';

const ROOT = new URL('../../../fixtures/', import.meta.url).pathname;
const GOLDEN = new URL('./planGolden.json', import.meta.url).pathname;

interface Case {
  name: string;
  graph: () => Graph;
  ranks: number[];
  tokens?: number;
}

const load = (path: string) => () =>
  importGraph(readFileSync(ROOT + path, 'utf8'), { fileName: path.split('/').pop() }).graph;

function fixtureCases(): Case[] {
  const files = [
    ...readdirSync(ROOT + 'capture').map((f) => `capture/${f}`),
    ...readdirSync(ROOT + 'capture/vllm-dump-gpt-oss-before-tp2').map(
      (f) => `capture/vllm-dump-gpt-oss-before-tp2/${f}`,
    ),
    ...readdirSync(ROOT + 'fx/real').map((f) => `fx/real/${f}`),
    ...readdirSync(ROOT + 'fx/seed').map((f) => `fx/seed/${f}`),
  ].filter((f) => /\.(py|txt)$/.test(f));
  return files.map((f) => ({ name: f, graph: load(f), ranks: [1, 2, 4, 8] }));
}

const PIPELINES: Record<string, readonly string[]> = {
  base: [],
  default: DEFAULT_PIPELINE,
  sp: SEQUENCE_PARALLEL_PIPELINE,
  reland: ['noop-elimination', 'moe-unpad', 'sequence-parallelism', 'async-tp'],
  'unpad-fuse': ['noop-elimination', 'moe-unpad', 'allreduce-rmsnorm'],
};

function sampleCases(): Case[] {
  const out: Case[] = [];
  for (const model of SAMPLE_MODELS)
    for (const tp of [2, 4])
      for (const [p, passes] of Object.entries(PIPELINES)) {
        const graph = () => {
          const g = importGraph(generateSample(model, { layers: 2, tp })).graph;
          return runPipeline(g, passes, { worldSize: tp }).output;
        };
        out.push({ name: `${model} tp${tp} ${p}`, graph, ranks: [tp] });
        if (p === 'sp') out.push({ name: `${model} tp${tp} ${p} 8 tokens`, graph, ranks: [tp], tokens: 8 });
      }
  return out;
}

/** The plan as JSON, Maps as entry lists, key order kept (a reordered step is a different plan). */
function planJson(p: Plan): string {
  return JSON.stringify({
    graph: p.graph,
    preset: p.preset.name,
    dtype: p.dtype,
    ranks: p.ranks,
    tokens: p.tokens,
    storages: [...p.storages.entries()],
    steps: p.steps,
    outputs: p.outputs,
    fed: p.fed,
    freeAfter: [...p.freeAfter.entries()],
  });
}

function planOrError(g: Graph, ranks: number, dtype: FloatDType, tokens?: number): string {
  try {
    return planJson(buildPlan(g, { preset: 'tiny', dtype, ranks, tokens }));
  } catch (e) {
    if (e instanceof RunError)
      return JSON.stringify({ error: e.kind, message: e.message, node: e.node, op: e.op });
    throw e;
  }
}

describe('buildPlan output for the samples and fixtures', { timeout: 600_000 }, () => {
  it('is unchanged (planGolden.json)', () => {
    const hashes: Record<string, string> = {};
    const dump = process.env.PLAN_GOLDEN_DUMP;
    if (dump) mkdirSync(dump, { recursive: true });
    for (const c of [...sampleCases(), ...fixtureCases()]) {
      const g = c.graph();
      for (const ranks of c.ranks)
        for (const dtype of ['bf16', 'f32'] as const) {
          const key = `${c.name} ranks=${ranks} ${dtype}`;
          const json = planOrError(g, ranks, dtype, c.tokens);
          hashes[key] = createHash('sha256').update(json).digest('hex').slice(0, 16);
          if (dump) writeFileSync(`${dump}/${key.replace(/[^\w.=-]+/g, '_')}.json`, json);
        }
    }
    if (process.env.PLAN_GOLDEN_WRITE) writeFileSync(GOLDEN, JSON.stringify(hashes, null, 1) + '\n');
    const golden = JSON.parse(readFileSync(GOLDEN, 'utf8')) as Record<string, string>;
    const moved = Object.keys({ ...golden, ...hashes }).filter((k) => golden[k] !== hashes[k]);
    expect(moved).toEqual([]);
  });
});
