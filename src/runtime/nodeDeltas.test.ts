// The |Δ| overlay's values: every node recomputed on the CPU reference, before and after a rewrite,
// on the same seeded inputs. What the rewrite did not touch is bitwise equal (0); the fused site's
// outputs move by its one rounding; a node with no counterpart or another shape has no value.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { diffGraphs } from '../graph/diff.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { toHostTensor } from './hostTensor.ts';
import { maxAbsDifference, nodeDeltas, returningEveryValue } from './nodeDeltas.ts';

const BEFORE = parseFx(
  [
    'class GraphModule(torch.nn.Module):',
    '    def forward(self, arg0_1: "bf16[s72, 64]", arg1_1: "bf16[64, 40]", arg2_1: "bf16[s72, 40]", arg3_1: "bf16[40]"):',
    '        mm: "bf16[s72, 40]" = torch.ops.aten.mm.default(arg0_1, arg1_1);  arg0_1 = arg1_1 = None',
    '        all_reduce: "bf16[s72, 40]" = torch.ops.vllm.all_reduce.default(mm, \'tp:0\');  mm = None',
    '        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = all_reduce, residual = arg2_1, weight = arg3_1, epsilon = 1e-05);  all_reduce = arg2_1 = arg3_1 = None',
    '        getitem: "bf16[s72, 40]" = auto_functionalized[1]',
    '        getitem_1: "bf16[s72, 40]" = auto_functionalized[2];  auto_functionalized = None',
    '        mul: "bf16[s72, 40]" = torch.ops.aten.mul.Tensor(getitem, getitem_1);  getitem = None',
    '        return (mul, getitem_1)',
  ].join('\n'),
).graph;

describe('nodeDeltas', () => {
  it('is 0 upstream of the fused site, non-zero after it, and absent for the fused node', async () => {
    const r = runPipeline(BEFORE, ['allreduce-rmsnorm'], { worldSize: 2 });
    const after = r.output;
    const diff = diffGraphs(
      BEFORE,
      after,
      r.stages.flatMap((s) => s.matches),
    );
    const fractions: number[] = [];
    const d = await nodeDeltas(
      BEFORE,
      after,
      diff.afterToBefore,
      {
        ranks: 2,
        preset: 'tiny',
        dtype: 'bf16',
        allreduce: 'one-shot',
      },
      (f) => fractions.push(f),
    );
    expect(d.get('mm')).toBe(0);
    // Progress over both runs: never backwards, the before run's half first.
    expect(fractions.every((f, i) => f >= 0 && f < 1 && (i === 0 || f >= fractions[i - 1]))).toBe(true);
    expect(fractions.some((f) => f < 0.5) && fractions.some((f) => f >= 0.5)).toBe(true);
    const fused = after.nodes.find((n) => JSON.stringify(n.args[0]).includes('fused_allreduce_norm'))!;
    expect(fused).toBeDefined();
    expect(d.has(fused.name)).toBe(false);
    // The product of the normed output and the new residual: the fused norm rounds once, the pair twice.
    expect(d.get('mul')).toBeGreaterThan(0);
    expect(Number.isFinite(d.get('mul')!)).toBe(true);
  });

  it('returns every node, so the run keeps each value', () => {
    const g = returningEveryValue(BEFORE);
    expect(g.outputs).toHaveLength(BEFORE.nodes.length);
    expect(BEFORE.outputs).toHaveLength(2);
  });

  it('counts a NaN on one side as an infinite difference, NaN on both as none', () => {
    const t = (v: number[]) => toHostTensor('f32', [v.length], Float64Array.from(v));
    expect(maxAbsDifference(t([1, 2, NaN]), t([1, 2.5, NaN]))).toBe(0.5);
    expect(maxAbsDifference(t([1, NaN]), t([1, 3]))).toBe(Infinity);
  });
});
