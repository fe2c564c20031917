// The fused QK-norm + RoPE on the agent: its kernel (qk_norm_rope) decomposes into the pair's steps,
// whose rotary and scatter the worker has no op for yet, so the fused node is fed there — as the
// unfused pair's rotary is — and the program lowers; nothing is claimed computed.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../src/graph/formats.ts';
import { runPipeline } from '../src/graph/passes/pipeline.ts';
import { calledOp } from '../src/graph/call.ts';
import { planGraph } from '../src/runtime/index.ts';
import { TINY_RUN } from '../src/runtime/backend.ts';
import { lowerPlan } from './program.ts';

const FILE = new URL('../fixtures/capture/qwen3-qknorm-tp1.py', import.meta.url).pathname;

describe('the fused QK-norm + RoPE on the worker', () => {
  it('is fed, as the pair’s rotary is, and the program lowers', () => {
    const g = importGraph(readFileSync(FILE, 'utf8'), { fileName: 'qwen3-qknorm-tp1.py' }).graph;
    const after = runPipeline(g, ['noop-elimination', 'qk-norm-rope'], { worldSize: 1 }).output;
    const fused = after.nodes
      .filter((n) => calledOp(n) === '_C.fused_qk_norm_rope.default')
      .map((n) => n.name);
    expect(fused).toHaveLength(2);
    for (const graph of [g, after]) {
      const plan = planGraph(graph, {
        ...TINY_RUN,
        dtype: 'f32',
        backend: 'agent',
        planFor: 'agent',
        ranks: 1,
      });
      expect(plan.steps.filter((s) => s.kernel === 'qk_norm_rope' || s.kernel === 'rotary')).toEqual([]);
      if (graph === after) expect(plan.fed).toEqual(expect.arrayContaining(fused));
      expect(() => lowerPlan(plan, { id: 'x', seed: 1, maxDeviceBytes: 2 ** 30 })).not.toThrow();
    }
  });
});
