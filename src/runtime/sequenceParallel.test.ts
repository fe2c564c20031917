// Before/after equivalence of sequence-parallelism, async-tp and moe-unpad on WebGPU ranks (Dawn
// on SwiftShader; one thread, and one worker per rank) and on the CPU reference. Every rewrite
// keeps each sum's terms and their rank order (a reduce-scatter sums rank by rank like the
// all-reduce; the norms are row-wise; a fused matmul computes the same rows; the unpadded MoE adds
// exact zeros less), so the outputs are gated bitwise. A biased GEMM (GPT-OSS's qkv addmm) is not
// one vLLM's async-TP patterns match (they are written with aten.mm), so it stays as it is.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { generateSample } from '../graph/samples/index.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import type { Graph } from '../graph/ir.ts';
import { compareGraphs, planGraph, runGraph, RunError, type RunOptions } from './index.ts';
import { bitwiseEqual } from './hostTensor.ts';
import { GraphBuilder } from '../graph/build.ts';
import { freshSeed, tinyRuns } from './testRuns.ts';

const seed = freshSeed();
const opts = tinyRuns({ backend: 'cpu', tokens: 8, seed });
const gptOss = (tp: number, layers = 2) => parseFx(generateSample('gpt-oss-20b', { layers, tp })).graph;
const rewrite = (g: Graph, passes: string[], tp: number) => runPipeline(g, passes, { worldSize: tp }).output;
const SP = ['noop-elimination', 'slice-hoist', 'sequence-parallelism'];
const RELAND = ['noop-elimination', 'moe-unpad', 'sequence-parallelism'];
const ASYNC_TP = [...SP, 'async-tp'];

describe('sequence parallelism and async TP, executed', { timeout: 600_000 }, () => {
  const variants: [string, Partial<RunOptions>][] = [
    ['cpu', {}],
    ['webgpu two-shot', { backend: 'webgpu', allreduce: 'two-shot' }],
    ['webgpu ring, 4 ranks', { backend: 'webgpu', allreduce: 'ring', ranks: 4 }],
    ['webgpu workers', { backend: 'webgpu', workers: true }],
  ];
  for (const [label, o] of variants) {
    // One layer on WebGPU (SwiftShader is slow); its two sites and the final norm exercise every op.
    const layers = o.backend === 'webgpu' ? 1 : 2;
    it(`GPT-OSS-20B, ${layers} layer(s): SP after the hoist, and after the re-land, is bitwise equal to the original (${label})`, async () => {
      const ranks = o.ranks ?? 2;
      const g = gptOss(ranks, layers);
      // Worker mode (one thread per rank, slow under SwiftShader) runs the hoisted pipeline only.
      for (const passes of o.workers ? [SP] : [SP, RELAND]) {
        const after = rewrite(g, passes, ranks);
        const rep = await compareGraphs(g, after, passes, opts(o));
        expect(rep.outputs.length).toBe(ranks);
        expect(
          rep.outputs.every((c) => c.bitwiseEqual && c.pass),
          `seed ${seed} ${label} ${passes.join(',')}: ${JSON.stringify(rep.outputs)}`,
        ).toBe(true);
        // The collectives ran as such: one reduce-scatter per split site on every rank.
        const ops = rep.after.events.filter((e) => e.rank === 0).map((e) => e.op);
        expect(
          ops.filter(
            (op) =>
              op === 'vllm.reduce_scatter.default' || op === 'symm_mem.fused_matmul_reduce_scatter.default',
          ).length,
        ).toBeGreaterThanOrEqual(2 * layers + 1);
      }
    });
  }

  it('async TP on GPT-OSS: the o_proj GEMM + reduce-scatter fuses and runs, the biased qkv addmm stays; bitwise equal to the original (cpu)', async () => {
    const g = gptOss(2, 2);
    const after = rewrite(g, ASYNC_TP, 2);
    const fusedRs = after.nodes.filter((n) => n.op === 'symm_mem.fused_matmul_reduce_scatter.default');
    expect(fusedRs.length).toBeGreaterThan(0);
    expect(after.nodes.some((n) => n.op === 'symm_mem.fused_all_gather_matmul.default')).toBe(false);
    expect(after.nodes.filter((n) => n.op === 'aten.addmm.default').length).toBe(
      g.nodes.filter((n) => n.op === 'aten.addmm.default').length,
    );
    const rep = await compareGraphs(g, after, ASYNC_TP, opts({}));
    expect(rep.outputs.length).toBe(2);
    expect(
      rep.outputs.every((c) => c.bitwiseEqual && c.pass),
      `seed ${seed}: ${JSON.stringify(rep.outputs)}`,
    ).toBe(true);
    // The fused GEMMs ran as such: one per site and layer on every rank.
    const ops = rep.after.events.filter((e) => e.rank === 0).map((e) => e.op);
    expect(
      ops.filter((x) => x === 'symm_mem.fused_matmul_reduce_scatter.default').length,
    ).toBeGreaterThanOrEqual(fusedRs.length);
  });

  it('async TP where no GEMM has a bias (Qwen3-MoE-like, 1 layer): SP + async TP bitwise equal to the original (cpu)', async () => {
    const g = parseFx(generateSample('qwen3-moe', { layers: 1, tp: 2 })).graph;
    const after = rewrite(g, ASYNC_TP, 2);
    expect(
      after.nodes.filter((n) => n.op === 'symm_mem.fused_all_gather_matmul.default').length,
    ).toBeGreaterThan(0);
    expect(
      after.nodes.filter((n) => n.op === 'symm_mem.fused_matmul_reduce_scatter.default').length,
    ).toBeGreaterThan(0);
    const rep = await compareGraphs(g, after, ASYNC_TP, opts({}));
    expect(
      rep.outputs.every((c) => c.bitwiseEqual && c.pass),
      `seed ${seed}: ${JSON.stringify(rep.outputs)}`,
    ).toBe(true);
  });

  it('the re-land alone (moe-unpad) is bitwise equal to the original and to the hoist on WebGPU', async () => {
    const g = gptOss(2, 1);
    const o = opts({ backend: 'webgpu', allreduce: 'one-shot' });
    const reland = await compareGraphs(g, rewrite(g, ['moe-unpad'], 2), ['moe-unpad'], o);
    const hoist = await compareGraphs(g, rewrite(g, ['slice-hoist'], 2), ['slice-hoist'], o);
    expect(reland.outputs.every((c) => c.bitwiseEqual)).toBe(true);
    expect(hoist.outputs.every((c) => c.bitwiseEqual)).toBe(true);
    // The re-land's all-reduce moves the unpadded width: 40 of the 48 columns at the tiny sizes.
    // What the all-reduces move, from the plan: the MoE's shrinks from 48 to 40 columns (tiny sizes).
    const moved = (x: Graph) =>
      planGraph(x, o)
        .steps.filter((st) => st.kernel === 'all_reduce')
        .map((st) => (st as { x: { shape: number[] } }).x.shape[1]);
    expect(moved(g)).toEqual([40, 40, 48]);
    expect(moved(rewrite(g, ['moe-unpad'], 2))).toEqual([40, 40, 40]);
  });

  it('reduce_scatter and all_gather of bf16 shards of odd length (5 elements: 10 bytes) are bitwise the reference on WebGPU', async () => {
    // A shard that starts or ends inside a 4-byte word, which WebGPU's copies and writes refuse.
    const b = new GraphBuilder('odd_shards', 'module');
    const x = b.input('x', 'bf16[3, 5]');
    const rs = b.node(
      'reduce_scatter',
      'vllm.reduce_scatter.default',
      [x],
      { dim: 0, world_size: 3, group_name: 'tp:0' },
      'bf16[1, 5]',
    );
    const ag = b.node(
      'all_gather',
      'vllm.all_gather.default',
      [b.input('y', 'bf16[1, 5]')],
      { dim: 0, world_size: 3, group_name: 'tp:0' },
      'bf16[3, 5]',
    );
    b.output(rs, ag);
    const g = b.build();
    const ref = await runGraph(g, opts({ ranks: 3 }));
    for (const o of [
      { allreduce: 'one-shot' },
      { allreduce: 'ring' },
      { workers: true },
    ] as Partial<RunOptions>[]) {
      const got = await runGraph(g, opts({ ranks: 3, backend: 'webgpu', ...o }));
      for (let r = 0; r < 3; r++)
        for (const [name, want] of ref.outputs[r])
          expect(
            bitwiseEqual(got.outputs[r].get(name)!, want),
            `${JSON.stringify(o)} rank ${r} ${name}`,
          ).toBe(true);
    }
  });

  it('refuses a token count the ranks cannot split, saying which to use', async () => {
    const after = rewrite(gptOss(2), SP, 2);
    const err = await runGraph(after, opts({ tokens: 7 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunError);
    expect((err as Error).message).toMatch(
      /^node reduce_scatter \(vllm\.reduce_scatter\.default\): 7 tokens do not split over 2 ranks; use a token count divisible by 2 \(--tokens 8\)$/,
    );
    const wrongRanks = await runGraph(after, opts({ ranks: 4 })).catch((e: unknown) => e);
    expect((wrongRanks as Error).message).toContain(
      'the graph splits over world_size 2 but the run has 4 rank(s); use --ranks 2',
    );
  });
});
