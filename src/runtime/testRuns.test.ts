// expectBeforeAfter, the before ≡ after check of the rewrites' run tests, must fail on a wrong
// rewrite and say where: the seed, the backend, the output and its first differing element.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { expectBeforeAfter, expectFp8Values, tinyCpuRun } from './testRuns.ts';

/** x with its columns 7:8 scattered back in: unchanged, or negated (one element of the [1, 8] output). */
const scatter = (column: string) =>
  parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      '    def forward(self, arg0_1: "f32[1, 8]"):',
      '        slice_1: "f32[1, 1]" = torch.ops.aten.slice.Tensor(arg0_1, 1, 7, 8)',
      `        col: "f32[1, 1]" = ${column}`,
      '        slice_scatter: "f32[1, 8]" = torch.ops.aten.slice_scatter.default(arg0_1, col, 1, 7, 8);  arg0_1 = col = None',
      '        return (slice_scatter,)',
    ].join('\n'),
  ).graph;
const BEFORE = scatter('torch.ops.aten.mul.Tensor(slice_1, 1.0)');
const WRONG = scatter('torch.ops.aten.neg.default(slice_1)');
const cpu = (o = {}) => tinyCpuRun({ ranks: 1, ...o });

describe('expectBeforeAfter', () => {
  it('passes a rewrite that keeps every bit, and hands back each backend’s report', async () => {
    const runs = await expectBeforeAfter(
      BEFORE,
      scatter('torch.ops.aten.mul.Tensor(slice_1, 1.0)'),
      [],
      cpu,
      {
        backends: ['cpu'],
        seed: 3,
      },
    );
    expect(runs.map((r) => [r.backend, r.seed, r.report.outputs.length])).toEqual([['cpu', 3, 1]]);
  });

  it.each(['bitwise', 'stated'] as const)(
    'fails a rewrite that changes one element (%s), naming the output, backend and first differing index',
    async (contract) => {
      const check = expectBeforeAfter(BEFORE, WRONG, [], cpu, { backends: ['cpu'], seed: 3, contract });
      await expect(check).rejects.toThrow(
        new RegExp(
          `seed 3 cpu: outputs that break the ${contract} contract[^]*rank 0: slice_scatter: (not bitwise|outside bitwise [^:]*): first at \\[0,7\\] \\(element 7\\): -?[\\d.e-]+ before, -?[\\d.e-]+ after`,
        ),
      );
    },
  );
});

describe('expectFp8Values', () => {
  it('passes e4m3fn values and fails on the first that is not one, or on too few distinct values', () => {
    expectFp8Values([448, -448, 0.5, 0.001953125, 0], 'q', 4);
    expect(() => expectFp8Values([448, 0.3, 1], 'q')).toThrow(/q: element 1 \(0\.3\) is not an e4m3fn value/);
    expect(() => expectFp8Values([448, 448, -448], 'q', 4)).toThrow(/q: distinct values/);
  });
});
