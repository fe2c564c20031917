// The passes on graphs a real torch.compile printed (fixtures/capture, made by
// scripts/capture/capture.py), against the counts vLLM's own tests give for them:
// fixtures/capture/expected.json maps each file to vLLM's pass orders (sequence parallelism then
// async TP; the all-reduce + RMSNorm fusion alone) and the matches each pass makes there, with the
// vLLM test or rule each count comes from. fixtures/capture/README.md tells the cases apart.

import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import type { Graph } from '../ir.ts';
import { runPipeline } from './pipeline.ts';
import type { VllmPlatform } from './vllmConfig.ts';

const DIR = new URL('../../../fixtures/capture/', import.meta.url).pathname;

interface Expectation {
  counts: Record<string, number>;
  source: string;
  /**
   * Where fusionlab deliberately gives another count than vLLM (vLLM's rewrite would be wrong on
   * this graph): the counts it gives, a phrase its diagnostics must contain, and why.
   */
  fusionlab?: { counts: Record<string, number>; reason: string; why: string };
}
/**
 * gpu: the platform the counts are vLLM's on (Blackwell for NVFP4's patterns), Hopper if absent;
 * platform: vLLM's --platform (ROCm-only fusions); aiter: ROCm with AITER on (VLLM_ROCM_USE_AITER=1).
 */
type FixtureExpectations = {
  worldSize: number;
  gpu?: 'hopper' | 'blackwell';
  platform?: VllmPlatform;
  aiter?: boolean;
} & Record<string, Expectation | number | string>;

const EXPECTED = JSON.parse(readFileSync(DIR + 'expected.json', 'utf8')) as Record<
  string,
  FixtureExpectations
>;

const load = (file: string): Graph =>
  importGraph(readFileSync(DIR + file, 'utf8'), { fileName: file.split('/').pop()! }).graph;

const orders = (e: FixtureExpectations): [string, Expectation][] =>
  Object.entries(e).filter((kv): kv is [string, Expectation] => typeof kv[1] === 'object');

describe('fixtures/capture/expected.json', () => {
  it('names every capture under tp/ and a source for every count', () => {
    const captured = readdirSync(DIR + 'tp')
      .filter((f) => f.endsWith('.py'))
      .map((f) => `tp/${f}`);
    expect(captured.length).toBeGreaterThan(0);
    for (const f of captured) expect(Object.keys(EXPECTED), f).toContain(f);
    for (const [file, e] of Object.entries(EXPECTED)) {
      expect(orders(e).length, file).toBeGreaterThan(0);
      for (const [order, { source }] of orders(e))
        expect(source, `${file} ${order}`).toMatch(/vllm|all_reduce/);
    }
  });
});

describe('captured vLLM test models and stacks: match counts as vLLM gives them', () => {
  for (const [file, e] of Object.entries(EXPECTED)) {
    for (const [order, { counts, source, fusionlab }] of orders(e)) {
      const want = fusionlab?.counts ?? counts;
      const title = fusionlab
        ? `vLLM ${JSON.stringify(counts)}, refused: ${JSON.stringify(want)}`
        : JSON.stringify(counts);
      it(`${file} [${order}] → ${title}`, () => {
        const r = runPipeline(load(file), order.split(','), {
          worldSize: e.worldSize,
          gpu: e.gpu ?? 'hopper',
          ...(e.platform ? { platform: e.platform } : {}),
          ...(e.aiter ? { aiter: true } : {}),
        });
        const got = Object.fromEntries(
          Object.keys(want).map((p) => [p, r.stages.find((s) => s.pass === p)!.matches.length]),
        );
        expect(got, fusionlab?.why ?? source).toEqual(want);
        // A deliberate difference from vLLM is explained where the user reads it.
        if (fusionlab) expect(r.diagnostics.map((d) => d.reason).join('\n')).toContain(fusionlab.reason);
      });
    }
  }
});
