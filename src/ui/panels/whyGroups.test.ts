// The why panel's groups on the app's own counts (recount, as the pipeline worker makes them).
import { describe, expect, it } from 'vitest';
import { parseFx } from '../../graph/fx/parse.ts';
import { generateSample } from '../../graph/samples/index.ts';
import { recount } from '../pipeline/pipelineJobs.ts';
import { refusalsByPass } from './whyGroups.ts';

describe("the why panel's refusals by pass", () => {
  it('GPT-OSS before the fix: sequence-parallelism, async-tp and act-padding each a group, in pipeline order, every entry its own pass (slice-hoist and moe-unpad refuse nothing)', () => {
    const g = parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 2 })).graph;
    const groups = refusalsByPass(recount(g, { worldSize: 2 }).passWhy);
    expect(groups.map((x) => [x.pass, x.refused.length])).toEqual([
      ['sequence-parallelism', 3],
      ['async-tp', 3],
      // The post-attention norm the router's pad reads: ROCm's fusion, refused on the default sm90.
      ['act-padding', 1],
    ]);
    expect(groups.find((x) => x.pass === 'act-padding')!.refused[0]!.reason).toMatch(/ROCm/);
    const sp = groups.find((x) => x.pass === 'sequence-parallelism')!;
    // Both all-reduces of the layer and the final norm: the slice blocks the MoE's, the stream the rest.
    expect(sp.refused).toHaveLength(3);
    expect(
      sp.refused.some((d) => /sits between all_reduce_\d+ and the norm; run slice-hoist/.test(d.reason)),
    ).toBe(true);
    for (const x of groups) for (const d of x.refused) expect(d.pass).toBe(x.pass);
  });

  it('leaves out the all-reduce fusion (the panel lists it already) and a site that would simply fuse', () => {
    const g = parseFx(generateSample('llama', { layers: 1, tp: 2 })).graph;
    const groups = refusalsByPass(recount(g, { worldSize: 2 }).passWhy);
    expect(groups.map((x) => x.pass)).not.toContain('allreduce-rmsnorm');
    for (const x of groups) for (const d of x.refused) expect(d.fix).not.toBe('run allreduce-rmsnorm');
  });
});
