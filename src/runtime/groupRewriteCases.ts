// A graph with a tp all-reduce and a second all-reduce over a named group, and two rewrites of
// it, for the tests of collectives run per process group (CPU reference, WebGPU, the agent): the
// right one fuses the TP site only (vLLM's AllReduceFusionPass matches the TP group only), the
// mutant fuses the second as if it were TP's.

import { parseFx } from '../graph/fx/parse.ts';
import type { Graph } from '../graph/ir.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';

/** mm → tp all-reduce → fused_add_rms_norm → mm → `group` all-reduce → fused_add_rms_norm. */
export const twoGroupGraph = (group: string): Graph =>
  parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      '    def forward(self, arg0_1: "bf16[s72, 64]", arg1_1: "bf16[64, 64]", arg2_1: "bf16[s72, 64]", arg3_1: "bf16[64]", arg4_1: "bf16[64, 64]", arg5_1: "bf16[64]"):',
      '        mm: "bf16[s72, 64]" = torch.ops.aten.mm.default(arg0_1, arg1_1)',
      '        all_reduce: "bf16[s72, 64]" = torch.ops.vllm.all_reduce.default(mm, \'tp:0\')',
      '        auto_functionalized = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = all_reduce, residual = arg2_1, weight = arg3_1, epsilon = 1e-06)',
      '        getitem_1: "bf16[s72, 64]" = auto_functionalized[1]',
      '        getitem_2: "bf16[s72, 64]" = auto_functionalized[2]',
      '        mm_1: "bf16[s72, 64]" = torch.ops.aten.mm.default(getitem_1, arg4_1)',
      `        all_reduce_1: "bf16[s72, 64]" = torch.ops.vllm.all_reduce.default(mm_1, '${group}')`,
      '        auto_functionalized_1 = torch.ops.higher_order.auto_functionalized(torch.ops._C.fused_add_rms_norm.default, input = all_reduce_1, residual = getitem_2, weight = arg5_1, epsilon = 1e-06)',
      '        getitem_3: "bf16[s72, 64]" = auto_functionalized_1[1]',
      '        getitem_4: "bf16[s72, 64]" = auto_functionalized_1[2]',
      '        return (getitem_3, getitem_4)',
    ].join('\n'),
  ).graph;

/** The right rewrite: vLLM's pass fuses the TP site and leaves the dp one (its group is not TP's). */
export function rightRewrite(): { before: Graph; after: Graph } {
  const before = twoGroupGraph('dp:0');
  const r = runPipeline(before, ['allreduce-rmsnorm']);
  return { before, after: r.output };
}

/**
 * The mutant: the dp site fused as if its group were TP's, the TP site left (vLLM's pass with the
 * dp group in the TP group's place): one fused site, so its outputs are gated on every backend.
 */
export function mutantRewrite(): { before: Graph; after: Graph } {
  const before = twoGroupGraph('dp:0');
  return { before, after: runPipeline(before, ['allreduce-rmsnorm'], { tpGroup: 'dp:0' }).output };
}
