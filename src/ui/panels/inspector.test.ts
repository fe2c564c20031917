// What the inspector says about real nodes: sizes with symbolic token dims, bytes a fused op
// reads and overwrites, and the source lines a rewritten node came from.

import { describe, expect, it } from 'vitest';
import { importGraph } from '../../graph/formats.ts';
import { typeIndex } from '../../graph/ops.ts';
import { runPipeline } from '../../graph/passes/pipeline.ts';
import { generateSample } from '../../graph/samples/index.ts';
import { bytesMoved, bytesOf, deltaCounterpart, formatBytes, originLines } from './Inspector.tsx';
import { calledOp, functionalizedTarget } from '../../graph/call.ts';
import { PR_BEFORE, QWEN_TP2 } from '../testFixtures.ts';

describe('inspector facts', () => {
  it('sizes: bytes when every dim is known, a formula over the token symbol otherwise', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(5760)).toBe('5.6 KiB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MiB');
    expect(bytesOf({ kind: 'tensor', dtype: 'bf16', shape: ['s72', 2880] })).toBe('s72 × 5.6 KiB');
    expect(bytesOf({ kind: 'tensor', dtype: 'bf16', shape: [32768, 1536] })).toBe('96.0 MiB');
    expect(bytesOf(null)).toBe('—');
  });

  it('the fused all-reduce + norm of the PR fragment: made from the lines of the all-reduce, slice and norm', () => {
    const before = importGraph(PR_BEFORE).graph;
    const stages = runPipeline(before, ['slice-hoist', 'allreduce-rmsnorm'], { worldSize: 4 }).stages.map(
      (s) => s.graph,
    );
    const after = stages[stages.length - 1];
    const fused = after.nodes.find((n) => functionalizedTarget(n)?.includes('fused_allreduce_norm'))!;
    expect(fused).toBeDefined();
    const lineOf = (name: string) => before.nodes.find((n) => n.name === name)!.meta.line!;
    const lines = originLines(fused, [before, ...stages]);
    expect(lines).toContain(lineOf('all_reduce_1'));
    expect(lines).toContain(lineOf('auto_functionalized_2'));
  });

  it('fused ops of a generated GPT-OSS layer overwrite their [s72, 2880] bf16 buffers in place', () => {
    const before = importGraph(generateSample('gpt-oss-20b', { layers: 1, tp: 4 })).graph;
    const after = runPipeline(before, ['slice-hoist', 'allreduce-rmsnorm'], { worldSize: 4 }).output;
    const t = typeIndex(after);
    const writes = after.nodes
      .filter((n) => calledOp(n) === 'vllm.flashinfer_trtllm_fused_allreduce_norm.default')
      .map((n) => bytesMoved(n, t).writes);
    // The first layer's rms_norm site gets a zeros residual and a new norm_out buffer besides its
    // input: three buffers; the fused_add_rms_norm sites write allreduce_in and residual: two.
    expect(writes.sort()).toEqual(
      ['2 × (s72 × 5.6 KiB)', '2 × (s72 × 5.6 KiB)', '3 × (s72 × 5.6 KiB)'].sort(),
    );
  });

  it('a real Qwen2 matmul reads both operands, all dims known', () => {
    const g = importGraph(QWEN_TP2).graph;
    const mm = g.nodes.find((n) => n.op === 'aten.mm.default')!;
    const t = typeIndex(g);
    const sizes = mm.args.map((a) =>
      a && typeof a === 'object' && !Array.isArray(a) && a.kind === 'ref' ? t.get(a.name) : null,
    );
    const expected = sizes.reduce(
      (acc, ty) =>
        acc + (ty && ty.kind === 'tensor' ? 2 * ty.shape.reduce<number>((p, d) => p * (d as number), 1) : 0),
      0,
    );
    expect(bytesMoved(mm, t)).toEqual({ reads: formatBytes(expected), writes: null });
  });

  it('names the node a |Δ| is measured against, or says there is none', () => {
    const counterparts = {
      after: new Map([['getitem_22', 'all_reduce']]),
      before: new Map([['all_reduce', 'getitem_22']]),
    };
    expect(deltaCounterpart(counterparts, 'after', 'getitem_22')).toBe('vs before: all_reduce');
    expect(deltaCounterpart(counterparts, 'before', 'all_reduce')).toBe('vs after: getitem_22');
    expect(deltaCounterpart(counterparts, 'after', 'zeros_like')).toBe('no counterpart before the rewrite');
  });
});
