// Collectives run over the process group they name (rankMesh.ts): a dp all-reduce sums over the
// data-parallel ranks, a tp one over the tensor-parallel ranks, the fused all-reduce + RMSNorm
// over TP. A rewrite that fuses a dp all-reduce as if it were TP's (the group check of vLLM's
// AllReduceFusionPass skipped) must fail its comparison; the rewrite that fuses only the TP site
// passes. A group the run cannot resolve to ranks gets a verdict that says so.

import { describe, expect, it } from 'vitest';
import type { Graph } from '../graph/ir.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { compareGraphs, type RunOptions } from './index.ts';
import { tinyCpuRun, tinyRuns } from './testRuns.ts';
import { mutantRewrite, rightRewrite, twoGroupGraph } from './groupRewriteCases.ts';

const fusedCount = (g: Graph) =>
  g.nodes.filter((n) => JSON.stringify(n.args).includes('flashinfer_trtllm_fused_allreduce_norm')).length;

describe('collectives run over the process group they name (CPU reference)', () => {
  it('the rewrites: the right one fuses the TP site, the mutant the dp site', () => {
    expect(fusedCount(rightRewrite().after)).toBe(1);
    expect(fusedCount(mutantRewrite().after)).toBe(1);
  });

  for (const dp of [1, 2]) {
    const opts = (o: Partial<RunOptions> = {}) => tinyCpuRun({ dp, seed: 11, ...o });
    it(`dp ${dp} × tp 2: the right rewrite is proven, the mutant fails`, async () => {
      const right = rightRewrite();
      const ok = await compareGraphs(right.before, right.after, ['allreduce-rmsnorm'], opts());
      expect(ok.verdict, JSON.stringify(ok.outputs)).toBe('proven');
      expect(ok.beforeOutputs).toHaveLength(2 * dp);
      const bad = mutantRewrite();
      const rep = await compareGraphs(bad.before, bad.after, ['allreduce-rmsnorm'], opts());
      expect(rep.verdict).toBe('failed');
      expect(rep.exact?.pass).toBe(false);
    });
  }

  it('the mutant passes if every collective spans every rank (what the run did before groups)', async () => {
    // The same mutant's graph against the graph whose second all-reduce is TP's: equal, so it is
    // the group that makes the mutant fail above.
    const before = twoGroupGraph('tp:0');
    const rep = await compareGraphs(
      before,
      mutantRewrite().after,
      ['allreduce-rmsnorm'],
      tinyCpuRun({ seed: 11 }),
    );
    expect(rep.verdict).toBe('proven');
  });

  it('a group the run cannot resolve: the verdict says it cannot tell, not proven', async () => {
    for (const group of ['ep2:0', 'tp:1', '12']) {
      const before = twoGroupGraph(group);
      const after = runPipeline(before, ['allreduce-rmsnorm']).output;
      const rep = await compareGraphs(before, after, ['allreduce-rmsnorm'], tinyCpuRun({ seed: 3 }));
      expect(rep.ok, group).toBe(true);
      expect(rep.verdict, group).toBe('unknown-group');
      expect(
        rep.unknownGroups.map((u) => [u.node, u.group]),
        group,
      ).toContainEqual(['all_reduce_1', group]);
    }
  });
});

describe('collectives run over the process group they name (WebGPU ranks)', { timeout: 600_000 }, () => {
  const run = tinyRuns({ seed: 11 });
  const modes: [string, Partial<RunOptions>][] = [
    ['one thread, one-shot', { allreduce: 'one-shot' }],
    ['one thread, ring', { allreduce: 'ring' }],
    ['workers, two-shot', { workers: true, allreduce: 'two-shot' }],
  ];
  for (const [mode, o] of modes)
    it(`dp 2 × tp 2, ${mode}: the right rewrite passes, the mutant fails`, async () => {
      const opts = run({ dp: 2, ...o });
      const right = rightRewrite();
      const ok = await compareGraphs(right.before, right.after, ['allreduce-rmsnorm'], opts);
      expect(ok.ok, JSON.stringify(ok.outputs)).toBe(true);
      expect(ok.beforeOutputs).toHaveLength(4);
      // The WebGPU ranks compute what the CPU reference does, group by group.
      const cpu = await compareGraphs(
        right.before,
        right.after,
        ['allreduce-rmsnorm'],
        tinyCpuRun({ dp: 2, seed: 11 }),
      );
      expect(ok.beforeOutputs).toEqual(cpu.beforeOutputs);
      const bad = mutantRewrite();
      const rep = await compareGraphs(bad.before, bad.after, ['allreduce-rmsnorm'], opts);
      expect(rep.verdict).toBe('failed');
    });

  it('dp 1 (the default): the mutant fails, the right rewrite passes', async () => {
    const right = rightRewrite();
    expect((await compareGraphs(right.before, right.after, ['allreduce-rmsnorm'], run())).ok).toBe(true);
    const bad = mutantRewrite();
    expect((await compareGraphs(bad.before, bad.after, ['allreduce-rmsnorm'], run())).verdict).toBe('failed');
  });
});
