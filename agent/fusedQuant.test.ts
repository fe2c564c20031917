// The fused norm + quant and silu_and_mul + quant ops on the agent's worker: the TP 1 FP8 Llama
// capture after norm-quant and act-quant lowers, in an f32 run, to the worker ops of the unfused
// pair (rms_norm / fused_add_rms_norm, silu·mul's map, fp8_quant): none refused, none fed.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../src/graph/formats.ts';
import { runPipeline } from '../src/graph/passes/pipeline.ts';
import { calledOp } from '../src/graph/call.ts';
import { planGraph } from '../src/runtime/index.ts';
import { TINY_RUN } from '../src/runtime/backend.ts';
import { lowerPlan } from './program.ts';

const FILE = new URL('../fixtures/capture/llama-fp8-tp1.py', import.meta.url).pathname;

describe('fused quant ops on the worker', () => {
  it('lower to the unfused pair’s worker ops, per fused node', () => {
    const g = importGraph(readFileSync(FILE, 'utf8'), { fileName: 'llama-fp8-tp1.py' }).graph;
    const after = runPipeline(g, ['norm-quant', 'act-quant']).output;
    const plan = planGraph(after, {
      ...TINY_RUN,
      dtype: 'f32',
      backend: 'agent',
      planFor: 'agent',
      ranks: 1,
    });
    // Rotary and attention have no worker kernel (fed there, as before the passes); no fused op is.
    const fused = new Set(after.nodes.filter((n) => /_quant\.default$/.test(calledOp(n))).map((n) => n.name));
    expect(fused.size).toBe(6);
    expect(plan.fed.filter((n) => fused.has(n))).toEqual([]);
    const steps = lowerPlan(plan, { id: 'x', seed: 1, maxDeviceBytes: 2 ** 30 }).program.steps;
    const opsOf = (target: string) =>
      after.nodes
        .filter((n) => calledOp(n) === target)
        .map((n) => steps.filter((s) => s.node === n.name).map((s) => s.op));
    expect(opsOf('_C.rms_norm_static_fp8_quant.default')).toEqual([['rms_norm', 'fp8_quant']]);
    expect(opsOf('_C.fused_add_rms_norm_static_fp8_quant.default')).toEqual([
      ['fused_add_rms_norm', 'fp8_quant'],
      ['fused_add_rms_norm', 'fp8_quant'],
      ['fused_add_rms_norm', 'fp8_quant'],
    ]);
    expect(opsOf('_C.silu_and_mul_quant.default')).toEqual([
      ['gather', 'gather', 'map', 'fp8_quant'],
      ['gather', 'gather', 'map', 'fp8_quant'],
    ]);
  });

  it('the dynamic per-token and per-group quants (one fp8_quant_rows step each) run as their unfused worker ops', () => {
    for (const name of ['llama-fp8-dynamic-tp1.py', 'llama-fp8-group128-tp1.py']) {
      const path = new URL(`../fixtures/capture/${name}`, import.meta.url).pathname;
      const g = importGraph(readFileSync(path, 'utf8'), { fileName: name }).graph;
      const plan = planGraph(g, { ...TINY_RUN, dtype: 'f32', backend: 'agent', planFor: 'agent', ranks: 1 });
      const quants = plan.steps.filter((s) => s.kernel === 'fp8_quant_rows');
      expect(quants.length, name).toBeGreaterThan(0);
      expect(plan.fed.filter((n) => quants.some((q) => q.node === n))).toEqual([]);
      const steps = lowerPlan(plan, { id: 'x', seed: 1, maxDeviceBytes: 2 ** 30 }).program.steps;
      // KERNEL_DECOMPOSITIONS: the unfused steps.
      for (const q of quants)
        expect(steps.filter((s) => s.node === q.node).map((s) => s.op)).toEqual(
          expect.arrayContaining(['map', 'reduce_rows']),
        );
      // abs, the row max, the scale's three maps, the scale broadcast over the row, div, the clamp, the cast.
      expect(steps.filter((s) => s.node === quants[0]!.node).map((s) => s.op)).toEqual([
        'map',
        'reduce_rows',
        'map',
        'map',
        'map',
        'gather',
        'map',
        'map',
        'map',
        'map',
      ]);
    }
  });
});
