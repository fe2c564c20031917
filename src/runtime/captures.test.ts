// Before / after on graphs captured from a real torch.compile (fixtures/capture): the default
// pipeline's rewrite is run on the CPU reference (and on WebGPU for two of them), and every
// compared output must be computed on every path — no node fed with random values — so that
// "proven" means the rewrite computes the same thing, not that it kept noise flowing the same way.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../graph/formats.ts';
import { DEFAULT_PIPELINE } from '../graph/passes/pipeline.ts';
import { compareRewrite, planGraph, runGraph } from './index.ts';
import { bitwiseEqual } from './hostTensor.ts';
import { tinyRuns } from './testRuns.ts';

const DIR = new URL('../../fixtures/capture/', import.meta.url).pathname;
const load = (f: string) => importGraph(readFileSync(DIR + f, 'utf8'), { fileName: f }).graph;
const PIPELINE = [...DEFAULT_PIPELINE];

const opts = tinyRuns({ backend: 'cpu', seed: 0x5eed });

// [file, ranks (its TP), all-reduce + norm sites the pipeline fuses (fixtures/capture/README.md)]
const CASES: [string, number, number][] = [
  ['gpt-oss-before-tp2.py', 2, 5],
  ['gpt-oss-before-tp4.py', 4, 5],
  ['gpt-oss-before-tp8.py', 8, 5],
  ['gpt-oss-after-tp2.py', 2, 5],
  ['gpt-oss-after-tp4.py', 4, 5],
  ['gpt-oss-after-tp8.py', 8, 5],
  ['llama-tp2.py', 2, 5],
  ['qwen3-moe-tp4.py', 4, 5],
  ['llama-tp2.debug.fx_graph_readable.py', 2, 5],
  ['llama-tp2-piecewise.piece0.py', 2, 1],
  ['llama-tp2-piecewise.piece1.py', 2, 2],
  ['llama-tp2-piecewise.piece2.py', 2, 2],
  ['vllm-dump-gpt-oss-before-tp2/before_noop_elimination-0.py', 2, 5],
];

describe('captured graphs before and after the pipeline, on the CPU reference', { timeout: 300_000 }, () => {
  for (const [file, ranks, sites] of CASES) {
    it(`${file}: ${sites} fused, nothing fed, proven`, async () => {
      const g = load(file);
      expect(planGraph(g, opts({ ranks })).fed).toEqual([]);
      const rep = await compareRewrite(g, PIPELINE, opts({ ranks }));
      expect(rep.fusedSites).toBe(sites);
      expect(rep.fedOnComparedPaths).toEqual([]);
      expect(rep.exact?.pass).toBe(true);
      expect(rep.verdict).toBe('proven');
    });
  }

  // The same graph in other forms a user has: each runs and computes its functional twin bit for bit.
  const TWINS: [string, string, string][] = [
    ['llama-tp2-v2.py', 'llama-tp2.py', 'auto_functionalized_v2 (_all_bases, slice and as_strided specs)'],
    [
      'llama-tp2.debug.fx_graph_transformed.py',
      'llama-tp2.py',
      'in-place calls into as_strided views of flat clones (TORCH_COMPILE_DEBUG)',
    ],
    [
      'vllm-dump-gpt-oss-before-tp2/after_fix_functionalization-0.py',
      'gpt-oss-before-tp2.py',
      "vLLM's dump after fix_functionalization",
    ],
  ];
  for (const [file, twin, what] of TWINS) {
    it(`${file} (${what}) runs with nothing fed and equals ${twin}`, async () => {
      const g = load(file);
      expect(planGraph(g, opts({})).fed).toEqual([]);
      const [a, b] = await Promise.all([runGraph(load(twin), opts({})), runGraph(g, opts({}))]);
      for (let r = 0; r < 2; r++) {
        const [x] = [...a.outputs[r].values()],
          [y] = [...b.outputs[r].values()];
        expect(bitwiseEqual(x!, y!)).toBe(true);
      }
    });
  }

  it('a piecewise piece hands on the input it wrote in place (copy_ into arg3_1): it is compared too', async () => {
    const rep = await compareRewrite(load('llama-tp2-piecewise.piece1.py'), PIPELINE, opts({}));
    expect(rep.outputs.map((o) => o.name)).toContain('rank 0: arg3_1');
  });
});

describe('how Inductor prints a vLLM graph, as the planner reads it', () => {
  const g = load('gpt-oss-before-tp2.py');
  const plan = planGraph(g, opts({}));
  const seedOf = (name: string) => plan.steps.find((s) => s.kernel === 'seed' && s.name === name);

  it("weights read through permute(w, [1, 0]) are seeded as weights (per rank), the router's as the router's", () => {
    const permuted = g.nodes
      .filter((n) => n.op === 'aten.permute.default')
      .map((n) => (n.args[0] as { name: string }).name);
    expect(permuted.length).toBeGreaterThan(0);
    const roles = new Set(
      permuted.map((w) => {
        const s = seedOf(w);
        return s?.kernel === 'seed' ? s.role : undefined;
      }),
    );
    expect(roles).toEqual(new Set(['weight', 'router-weight']));
  });

  it("empty.memory_format([arg0_1, 96]) sized by the token symbol is a zeroed buffer of the run's tokens", () => {
    const empty = g.nodes.find((n) => n.op === 'aten.empty.memory_format')!;
    const s = seedOf(empty.name);
    expect(s?.kernel === 'seed' && s.role).toBe('zeros');
    expect(plan.storages.get(empty.name)!.shape).toEqual([plan.tokens, 96]);
  });

  it('positions index the rotary cache: seeded as token ids below its row count', () => {
    const rotary = plan.steps.find((s) => s.kernel === 'rotary')!;
    const pos = rotary.kernel === 'rotary' ? seedOf(rotary.positions.storage) : undefined;
    expect(pos?.kernel === 'seed' && [pos.role, pos.range]).toEqual(['indices', 256]);
  });
});

describe('captured graphs on WebGPU', { timeout: 600_000 }, () => {
  for (const file of ['gpt-oss-before-tp2.py', 'llama-tp2.py']) {
    it(`${file}: proven, every value computed`, async () => {
      const rep = await compareRewrite(load(file), PIPELINE, opts({ backend: 'webgpu' }));
      expect(rep.fedOnComparedPaths).toEqual([]);
      expect(rep.verdict).toBe('proven');
    });
  }
});
