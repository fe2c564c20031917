// slice-hoist moves any slice of a sum all-reduce — negative bounds, INT64_MAX, a strided step
// (through a contiguous clone), the token dim — and the hoisted graph must compute the same bits:
// each rank sums the same elements in the same rank order either way. Run on the CPU reference
// and on WebGPU ranks (Dawn on SwiftShader); a corrupted hoist must fail the same check.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import type { Graph } from '../graph/ir.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { compareGraphs, type RunOptions } from './index.ts';
import { expectBeforeAfter, tinyRuns } from './testRuns.ts';

const run = tinyRuns();
const opts = (backend: 'cpu' | 'webgpu', seed: number): RunOptions => run({ backend, seed });

/** mm → all_reduce → slice → add: the mm's per-rank partial sums are computed, nothing is fed. */
const graph = (slice: string, sliced: string) =>
  parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      '    def forward(self, arg0_1: "bf16[s72, 64]", arg1_1: "bf16[64, 96]", arg2_1: "bf16[' +
        sliced +
        ']"):',
      '        mm: "bf16[s72, 96]" = torch.ops.aten.mm.default(arg0_1, arg1_1);  arg0_1 = arg1_1 = None',
      '        all_reduce: "bf16[s72, 96]" = torch.ops.vllm.all_reduce.default(mm, \'tp:0\');  mm = None',
      `        slice_1: "bf16[${sliced}]" = torch.ops.aten.slice.Tensor(all_reduce, ${slice});  all_reduce = None`,
      `        add: "bf16[${sliced}]" = torch.ops.aten.add.Tensor(slice_1, arg2_1);  slice_1 = arg2_1 = None`,
      '        return (add,)',
    ].join('\n'),
  ).graph;

const CASES: [string, string, string][] = [
  ['a negative start to INT64_MAX', '1, -24, 9223372036854775807', 's72, 24'],
  ['a negative end', '1, 8, -8', 's72, 80'],
  ['step 2 (strided: a clone before the all-reduce)', '1, 0, 9223372036854775807, 2', 's72, 48'],
  ['step 3 along the token dim', '0, 1, 9223372036854775807, 3', '((s72 + 1)//3), 96'],
];

describe('hoisted slices compute the same bits', { timeout: 300_000 }, () => {
  for (const [what, slice, sliced] of CASES) {
    it(`${what}: one hoist, bitwise equal on CPU and WebGPU`, async () => {
      const g = graph(slice, sliced);
      const r = runPipeline(g, ['slice-hoist']);
      expect(r.stages[0]!.matches).toHaveLength(1);
      const after = r.output;
      const ar = after.nodes.find((n) => n.op === 'vllm.all_reduce.default')!;
      expect(ar.type).toEqual({
        kind: 'tensor',
        dtype: 'bf16',
        shape: sliced.split(', ').map((d) => (/^\d+$/.test(d) ? Number(d) : d)),
      });
      expect(after.nodes.some((n) => n.op === 'aten.clone.default')).toBe(
        slice.split(', ').length === 4 && !slice.endsWith(', 1'),
      );
      for (const { backend, report } of await expectBeforeAfter(g, after, ['slice-hoist'], run))
        expect(report.outputs.length, backend).toBe(2);
    });
  }

  it('a hoist that slices the wrong columns fails the check', async () => {
    const g = graph('1, -24, 9223372036854775807', 's72, 24');
    const after: Graph = structuredClone(runPipeline(g, ['slice-hoist']).output);
    after.nodes.find((n) => n.name === 'slice_1')!.args[2] = -25;
    after.nodes.find((n) => n.name === 'slice_1')!.args[3] = -1;
    const rep = await compareGraphs(g, after, ['slice-hoist'], opts('cpu', 7));
    expect(rep.outputs.some((o) => !o.bitwiseEqual)).toBe(true);
    expect(rep.ok).toBe(false);
  });
});
