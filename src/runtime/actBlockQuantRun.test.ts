// act-quant's per-group FP8 pattern (vLLM act_quant_fusion.py SiluMulBlockQuantPattern: silu_and_mul →
// per_token_group_fp8_quant, groups of 128 / 64, scales transposed or not →
// silu_and_mul_per_block_quant), fused and run on the CPU reference and WebGPU: before ≡ after
// bitwise (the fused op rounds silu·mul as the pair; its scale is vLLM's fused kernel's, which
// differs from the pair's only for a group whose max is under 1/512: fusedQuant.ts).

import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { readCall } from '../graph/call.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { compareGraphs } from './index.ts';
import { freshSeed, tinyRuns } from './testRuns.ts';

const run = tinyRuns();

const DEVICE = "device = device(type='cuda', index=0), pin_memory = False";
const empty = (name: string, type: string, dims: string, dtype: string) =>
  `        ${name}: "${type}" = torch.ops.aten.empty.memory_format(${dims}, dtype = torch.${dtype}, ${DEVICE})`;

/** silu_and_mul of [T, 2H] then the per-group quant of its [T, H] output. */
function graph(H: number, group: number, transposed: boolean) {
  const G = H / group;
  const scale = transposed
    ? [
        empty('empty_st', `f32[${G}, s72]`, `[${G}, arg0_1]`, 'float32'),
        `        empty_s: "f32[s72, ${G}]" = torch.ops.aten.permute.default(empty_st, [1, 0])`,
      ]
    : [empty('empty_s', `f32[s72, ${G}]`, `[arg0_1, ${G}]`, 'float32')];
  return parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      `    def forward(self, arg0_1: "Sym(s72)", arg1_1: "bf16[s72, ${2 * H}]"):`,
      empty('empty', `bf16[s72, ${H}]`, `[arg0_1, ${H}]`, 'bfloat16'),
      '        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.silu_and_mul.default, result = empty, input = arg1_1);  empty = None',
      `        getitem_1: "bf16[s72, ${H}]" = auto_functionalized[1];  auto_functionalized = None`,
      empty('empty_q', `f8e4m3fn[s72, ${H}]`, `[arg0_1, ${H}]`, 'float8_e4m3fn'),
      ...scale,
      `        af_q = torch.ops.higher_order.auto_functionalized(torch.ops._C.per_token_group_fp8_quant.default, input = getitem_1, output_q = empty_q, output_s = empty_s, group_size = ${group}, eps = 1e-10, fp8_min = -448.0, fp8_max = 448.0, scale_ue8m0 = False, dummy_is_scale_transposed = ${transposed ? 'True' : 'False'}, dummy_is_tma_aligned = False)`,
      `        q: "f8e4m3fn[s72, ${H}]" = af_q[1]`,
      `        s: "f32[s72, ${G}]" = af_q[2];  af_q = None`,
      '        return (q, s)',
    ].join('\n'),
  ).graph;
}

describe('silu_and_mul + per-group FP8 quant (act-quant)', { timeout: 300_000 }, () => {
  for (const [group, transposed] of [
    [128, true],
    [64, false],
  ] as const) {
    it(`groups of ${group}${transposed ? ', transposed scales' : ''}: one silu_and_mul_per_block_quant, bitwise the pair on the CPU and WebGPU`, async () => {
      const g = graph(256, group, transposed);
      const r = runPipeline(g, ['act-quant'], {});
      expect(r.stages[0]!.matches).toHaveLength(1);
      const fused = r.output.nodes
        .map(readCall)
        .find((c) => c.op === '_C.silu_and_mul_per_block_quant.default');
      expect(fused?.arg(3, 'group_size')).toBe(group);
      expect(fused?.arg(5, 'is_scale_transposed')).toBe(transposed);
      expect(r.output.nodes.map((n) => readCall(n).op)).not.toContain('_C.silu_and_mul.default');
      const seed = freshSeed();
      for (const backend of ['cpu', 'webgpu'] as const) {
        const rep = await compareGraphs(g, r.output, ['act-quant'], run({ backend, seed }));
        expect(
          rep.outputs.map((o) => [o.bitwiseEqual, o.fedFrom]),
          `seed ${seed} ${backend}: ${JSON.stringify(rep.outputs)}`,
        ).toEqual(rep.outputs.map(() => [true, []]));
        expect(rep.verdict).toBe('proven');
      }
    });
  }

  it('a group of 32 is explained, not fused: vLLM registers 128 and 64 only', () => {
    const r = runPipeline(graph(256, 32, false), ['act-quant'], {});
    expect(r.stages[0]!.matches).toHaveLength(0);
    expect(r.stages[0]!.diagnostics.map((d) => d.reason).join('\n')).toMatch(
      /group size 32 .*128 and 64 only/,
    );
  });
});
