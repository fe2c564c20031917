// vllm-ir-lowering: the vLLM IR norms become the _C ops (vLLM's vllm_c provider) or their native
// decomposition, and either lowering is what the recognizers and allreduce-rmsnorm read as that
// form; fused from the IR ops directly, the graph computes what the lowered graph computes.
import { describe, expect, it } from 'vitest';
import { parseFx } from '../fx/parse.ts';
import type { Graph } from '../ir.ts';
import { ref } from '../ir.ts';
import { calledOp } from '../call.ts';
import { indexGraph } from '../match.ts';
import { runPipeline } from './pipeline.ts';
import { findNorms } from './matchers/index.ts';
import { NORM_FORMS } from './matchers/normForms.ts';
import { compareGraphs } from '../../runtime/index.ts';
import { tinyCpuRun } from '../../runtime/testRuns.ts';

const IR = parseFx(NORM_FORMS['vllm-ir']).graph;
const lower = (g: Graph, irLowering: 'custom' | 'native') =>
  runPipeline(g, ['vllm-ir-lowering'], { worldSize: 2, irLowering });
const ops = (g: Graph) =>
  g.nodes.map((n) => (n.op === 'getitem' ? `getitem[${String(n.args[1])}]` : calledOp(n)));
const captures = (g: Graph) =>
  findNorms(indexGraph(g)).occurrences.map((o) => [o.op, o.form, o.input, o.residual, o.weight]);

describe('vllm-ir-lowering', () => {
  it("lowers to the _C ops through auto_functionalized by default, keeping the readers' value names", () => {
    const r = runPipeline(IR, ['vllm-ir-lowering'], { worldSize: 2 });
    expect(r.stages[0]!.matches.map((m) => [m.site, m.consumed])).toEqual([
      ['rms_norm', ['rms_norm']],
      ['fused_add_rms_norm', ['fused_add_rms_norm', 'getitem', 'getitem_1']],
    ]);
    const g = r.output;
    expect(ops(g).filter((o) => !o.startsWith('aten.mm'))).toEqual([
      'vllm.all_reduce.default',
      'aten.empty_like.default',
      '_C.rms_norm.default',
      'getitem[1]',
      'vllm.all_reduce.default',
      '_C.fused_add_rms_norm.default',
      'getitem[1]',
      'getitem[2]',
    ]);
    expect(g.nodes.find((n) => n.name === 'getitem_1')!.args[1]).toBe(2);
    expect(g.outputs).toEqual(IR.outputs);
    expect(captures(g)).toEqual(captures(parseFx(NORM_FORMS.custom).graph));
  });

  it("lowers to the native decomposition with irLowering 'native': the graph torch prints for forward_native", () => {
    const g = lower(IR, 'native').output;
    const native = parseFx(NORM_FORMS.native).graph;
    // The same ops; torch places the new residual's convert by its reader, the lowering by its value.
    expect(ops(g).sort()).toEqual(ops(native).sort());
    expect(captures(g)).toEqual(captures(native));
    expect(findNorms(indexGraph(g)).occurrences.map((o) => o.outputs)).toEqual([
      { normed: 'rms_norm' },
      { normed: 'getitem', residual: 'getitem_1' },
    ]);
  });

  it('after allreduce-rmsnorm, only the IR ops it did not fuse are lowered; each lowering fuses as the IR did', () => {
    const text = NORM_FORMS['vllm-ir'].replace(
      '    return (mm_1, getitem_1)',
      '    q_norm: "bf16[s77, 64]" = torch.ops.vllm_ir.rms_norm.default(mm_1, arg4_1, 1e-06)\n    return (q_norm, getitem_1)',
    );
    const r = runPipeline(parseFx(text).graph, ['allreduce-rmsnorm', 'vllm-ir-lowering'], { worldSize: 2 });
    expect(r.stages.map((s) => s.matches.map((m) => m.site))).toEqual([
      ['all_reduce', 'all_reduce_1'],
      ['q_norm'],
    ]);
    for (const irLowering of ['custom', 'native'] as const) {
      const lowered = runPipeline(parseFx(text).graph, ['vllm-ir-lowering', 'allreduce-rmsnorm'], {
        worldSize: 2,
        irLowering,
      });
      expect(
        lowered.stages[1]!.matches.map((m) => m.site),
        irLowering,
      ).toEqual(['all_reduce', 'all_reduce_1']);
    }
  });

  it('fused from the IR ops, the graph computes what the custom lowering computes (CPU reference, bitwise as unfused)', async () => {
    const before = lower(IR, 'custom').output;
    const after = runPipeline(IR, ['allreduce-rmsnorm'], { worldSize: 2 }).output;
    expect(after.nodes.some((n) => n.op.startsWith('vllm_ir.'))).toBe(false);
    const rep = await compareGraphs(before, after, ['allreduce-rmsnorm'], tinyCpuRun({ seed: 7 }));
    expect(rep.fusedSites).toBe(2);
    expect(rep.exact!.pass, JSON.stringify(rep.exact)).toBe(true);
    expect(rep.ok, JSON.stringify(rep.outputs)).toBe(true);
    expect(after.outputs).toEqual([ref('mm_1'), ref('getitem_1')]);
  });
});
