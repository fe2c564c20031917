// The exact check of a fusing rewrite: the after-graph run with the fused all-reduce + norm
// rounded as the unfused pair rounds it must be bitwise equal to the before-graph, on WebGPU ranks
// (Dawn on SwiftShader; one thread and one worker per rank) and on the CPU reference, in bf16 and
// f32, for one fused site and for several in series; a corrupted rewrite must fail it.

import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseFx } from '../graph/fx/parse.ts';
import { generateSample } from '../graph/samples/index.ts';
import { DEFAULT_PIPELINE } from '../graph/passes/pipeline.ts';
import type { Graph } from '../graph/ir.ts';
import { compareGraphs, compareRewrite, runGraph, RunError, type RunOptions } from './index.ts';
import { rewriteForCompare } from './rewriteForCompare.ts';
import { registerBackend } from './index.ts';
import { bitwiseEqual } from './hostTensor.ts';
import { freshSeed, tinyRuns } from './testRuns.ts';

const SEED_DIR = new URL('../../fixtures/fx/seed', import.meta.url).pathname;
const fragment = () => parseFx(readFileSync(`${SEED_DIR}/pr28841-before.fragment.txt`, 'utf8')).graph;
const gptOss = () => parseFx(generateSample('gpt-oss-20b', { layers: 2, tp: 2 })).graph;
const PIPELINE = [...DEFAULT_PIPELINE];

const base = tinyRuns();

const fusedNodes = (g: Graph) =>
  g.nodes.filter(
    (n) =>
      n.op === 'higher_order.auto_functionalized' &&
      JSON.stringify(n.args[0]).includes('flashinfer_trtllm_fused_allreduce_norm'),
  );

describe('the exact check of the fused rewrite', { timeout: 600_000 }, () => {
  it('GPT-OSS-20B, 2 layers, TP 2, default pipeline: the as-unfused after-run is bitwise equal to before on WebGPU and on CPU', async () => {
    const seed = freshSeed();
    const g = gptOss();
    for (const backend of ['webgpu', 'cpu'] as const) {
      const rep = await compareRewrite(g, PIPELINE, base({ backend, seed, allreduce: 'two-shot' }));
      const exact = rep.exact!;
      expect(rep.fusedSites, backend).toBe(fusedNodes(rewriteForCompare(g, PIPELINE, 2)).length);
      expect(rep.fusedSites).toBeGreaterThan(1);
      expect(exact.skipped).toBe(false);
      expect(exact.outputs!.length, backend).toBe(rep.outputs.length);
      expect(
        exact.outputs!.every((o) => o.bitwiseEqual && o.pass),
        `seed ${seed} ${backend}: ${JSON.stringify(exact.outputs)}`,
      ).toBe(true);
      expect(exact.pass).toBe(true);
      expect(rep.ok, `seed ${seed} ${backend}`).toBe(true);
      // The normal after-run is still reported against before (its one rounding differs from the pair's).
      expect(rep.outputs.every((o) => o.tolerance.startsWith('not gated'))).toBe(true);
    }
  });

  it("fails a rewrite that swapped one fused site's input and residual, naming the outputs", async () => {
    const seed = freshSeed();
    const g = gptOss();
    const after = rewriteForCompare(g, PIPELINE, 2);
    // A site past the first layer's (whose residual is the zeros its sum starts from).
    const site = fusedNodes(after)[2];
    [site.kwargs.allreduce_in, site.kwargs.residual] = [site.kwargs.residual, site.kwargs.allreduce_in];
    const rep = await compareGraphs(g, after, PIPELINE, base({ seed, backend: 'cpu' }));
    const names = (await runGraph(g, base({ seed, backend: 'cpu' }))).outputs.flatMap((m, r) =>
      [...m.keys()].map((k) => `rank ${r}: ${k}`),
    );
    // The normal comparison of several sites in series cannot fail; the exact check does.
    expect(rep.outputs.every((o) => o.pass)).toBe(true);
    expect(rep.exact!.pass).toBe(false);
    expect(rep.ok).toBe(false);
    expect(rep.exact!.outputs!.filter((o) => !o.pass).map((o) => o.name)).toEqual(names);
    expect(rep.exact!.note).toContain(`${names.length} output(s) differ`);
  });

  it('fails on WebGPU when a fused site reads another value as its all-reduce input', async () => {
    const seed = freshSeed();
    const g = gptOss();
    const after = rewriteForCompare(g, PIPELINE, 2);
    const [, second, third] = fusedNodes(after);
    third.kwargs.allreduce_in = second.kwargs.allreduce_in;
    const rep = await compareGraphs(g, after, PIPELINE, base({ seed }));
    expect(rep.ok).toBe(false);
    const failed = rep.exact!.outputs!.filter((o) => !o.pass);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((o) => /^rank [01]: \S+$/.test(o.name) && !o.bitwiseEqual)).toBe(true);
  });

  it('the PR fragment (one site) passes both gates: ≤ 2 ulps fused, bitwise as-unfused; one thread and workers, bf16 and f32', async () => {
    const seed = freshSeed();
    for (const [dtype, workers, allreduce] of [
      ['bf16', false, 'one-shot'],
      ['bf16', true, 'two-shot'],
      ['f32', false, 'ring'],
    ] as const) {
      const what = `seed ${seed} ${dtype} workers=${workers} ${allreduce}`;
      const rep = await compareRewrite(
        fragment(),
        ['slice-hoist', 'allreduce-rmsnorm'],
        base({ seed, dtype, workers, allreduce }),
      );
      expect(rep.fusedSites).toBe(1);
      expect(rep.ok, `${what}: ${JSON.stringify(rep)}`).toBe(true);
      for (const o of rep.outputs) {
        expect(o.tolerance, what).toMatch(/^≤ 2 (bf16|f32) ulps/);
        expect(o.ulps, `${what} ${o.name}`).toBeLessThanOrEqual(2);
      }
      expect(rep.exact!.outputs!.map((o) => o.name)).toEqual(rep.outputs.map((o) => o.name));
      expect(
        rep.exact!.outputs!.every((o) => o.bitwiseEqual && o.tolerance.startsWith('bitwise')),
        what,
      ).toBe(true);
    }
  });

  it("in f32 the as-unfused rounding matches the pair bit for bit on WebGPU and CPU, where the CPU's one rounding does not", async () => {
    const seed = freshSeed();
    const g = gptOss();
    const after = rewriteForCompare(g, PIPELINE, 2);
    for (const backend of ['webgpu', 'cpu'] as const) {
      const rep = await compareGraphs(g, after, PIPELINE, base({ seed, backend, dtype: 'f32' }));
      expect(rep.exact!.pass, `seed ${seed} ${backend}: ${JSON.stringify(rep.exact)}`).toBe(true);
      expect(rep.ok).toBe(true);
      // The CPU reference rounds z·rsqrt(…)·γ from f64 once, so only the as-unfused run is exact there.
      if (backend === 'cpu') expect(rep.outputs.some((o) => !o.bitwiseEqual)).toBe(true);
    }
  });

  it('the agent backend skips the exact check with a note and refuses the as-unfused rounding', async () => {
    const seed = freshSeed();
    const agentRuns: string[] = [];
    // A stand-in for the agent that runs the CPU reference, to see what compareGraphs asks of it.
    const { cpuBackend } = await import('./cpuBackend.ts');
    const { agentBackend } = await import('./agentClient.ts');
    const client = {
      runPlan: (plan: Parameters<typeof cpuBackend.run>[0], o: Partial<RunOptions>) => {
        agentRuns.push(plan.steps.some((s) => s.kernel === 'fused_allreduce_norm') ? 'fused' : 'unfused');
        return cpuBackend.run(plan, { ...base({ backend: 'cpu', seed }), ...o });
      },
    };
    registerBackend('agent', async () =>
      agentBackend(client as unknown as Parameters<typeof agentBackend>[0]),
    );
    const rep = await compareRewrite(
      fragment(),
      ['slice-hoist', 'allreduce-rmsnorm'],
      base({ seed, backend: 'agent' }),
    );
    expect(agentRuns).toEqual(['unfused', 'fused']);
    expect(rep.exact).toEqual({
      outputs: null,
      pass: true,
      skipped: true,
      note: expect.stringMatching(/^exact check skipped: the agent backend has no unfused-rounding mode/),
    });
    expect(rep.ok).toBe(true);
    const err = await runGraph(fragment(), base({ backend: 'agent', fusedNormRounding: 'as-unfused' })).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(RunError);
    expect(err.message).toMatch(/agent backend .* not 'as-unfused'/);
  });
});

describe('as-unfused on the fused kernel alone', { timeout: 300_000 }, () => {
  it('differs from the default rounding in bf16 (the mode reaches the kernel)', async () => {
    const seed = freshSeed();
    const after = rewriteForCompare(fragment(), ['slice-hoist', 'allreduce-rmsnorm'], 2);
    for (const backend of ['webgpu', 'cpu'] as const) {
      const once = await runGraph(after, base({ seed, backend }));
      const twice = await runGraph(after, base({ seed, backend, fusedNormRounding: 'as-unfused' }));
      const differs = [...once.outputs[0]].some(([k, t]) => !bitwiseEqual(t, twice.outputs[0].get(k)!));
      expect(differs, `seed ${seed} ${backend}`).toBe(true);
    }
  });
});
