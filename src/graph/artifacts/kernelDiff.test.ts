// The predicted kernel list of a rewrite, checked against what Inductor really generated for the
// rewritten model: fixtures/kernels-diff holds one FP8 model's output code before and after vLLM's
// norm / activation + quant fusions (torch 2.13 CPU, provenance mappings; see its README).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import type { Graph } from '../ir.ts';
import { runPipeline } from '../passes/pipeline.ts';
import {
  kernelCounts,
  kernelGroups,
  kernelListChange,
  parseOutputCode,
  parseProvenance,
} from './outputCode.ts';
import { predictedGroups, predictKernelChange, stageSteps } from './kernelDiff.ts';

const DIR = new URL('../../../fixtures/kernels-diff/', import.meta.url);
const read = (f: string) => readFileSync(new URL(f, DIR), 'utf8');

function side(name: 'before' | 'after') {
  const r = importGraph(read(`${name}/fx_graph_transformed.py`));
  if (!('graph' in r)) throw new Error(`${name} graph did not import`);
  const graph: Graph = r.graph;
  const code = parseOutputCode(read(`${name}/output_code.py`));
  const prov = parseProvenance(read(`${name}/inductor_provenance_tracking_node_mappings.json`));
  const groups = kernelGroups(
    code,
    graph.nodes.map((n) => n.name),
    prov,
  );
  return { graph, code, groups };
}

const stem = (k: string) => k.replace(/_\d+$/, '');

describe('the kernel list after norm-quant and act-quant, predicted from the before code', () => {
  const before = side('before');
  const after = side('after');
  const run = runPipeline(before.graph, ['norm-quant', 'act-quant']);
  const steps = run.stages.map((s) => ({ pass: s.pass, matches: s.matches, graph: s.graph }));
  const p = predictKernelChange(before.groups, before.graph, steps);

  it('predicts the launch list Inductor really generated for the rewritten model', () => {
    // Generated kernels are renamed after what they hold, so they compare by kind; launched ops by name.
    const shape = (ls: readonly { kernel: string; kind: string }[]) =>
      ls.map((l) => (l.kind === 'cpp' || l.kind === 'triton' ? l.kind : l.kernel));
    expect(shape(p.launches)).toEqual(shape(after.code.launches));
    expect(p.launches).toHaveLength(14);
    // The kernel that keeps code is the one the real after code still launches: the embedding.
    expect(p.launches[0]).toMatchObject({ kind: 'cpp', before: 0 });
    expect(p.launches[0].nodes).toContain('embedding');
    expect(after.groups[0].nodes).toContain('embedding');
  });

  it('names the C++ kernels that disappear, and they are gone from the real after code', () => {
    const gone = p.passes.flatMap((c) => c.gone.map((g) => g.kernel));
    const real = kernelListChange(before.groups, after.groups);
    for (const k of gone) expect(real.gone.map(stem)).toContain(stem(k));
    const norm = p.passes.find((c) => c.pass === 'norm-quant')!;
    expect(norm.gone.map((g) => [g.index, g.what, g.into])).toEqual([
      [2, 'fused_add_rms_norm + quant', ['torch.ops._C.fused_add_rms_norm_static_fp8_quant.default']],
      [6, 'fused_add_rms_norm + quant', ['torch.ops._C.fused_add_rms_norm_static_fp8_quant.default']],
      [8, 'fused_add_rms_norm + quant', ['torch.ops._C.fused_add_rms_norm_static_fp8_quant.default']],
    ]);
    // The first norm's kernel keeps the embedding lookup; the final norm's loses only the residual add's input.
    expect(norm.shrunk.map((g) => [g.index, g.into])).toEqual([
      [0, ['torch.ops._C.rms_norm_static_fp8_quant.default']],
      [12, ['torch.ops._C.fused_add_rms_norm_static_fp8_quant.default']],
    ]);
    // The SiLU-mul + quant kernel (launched twice) goes wholly into silu_and_mul_quant.
    const act = p.passes.find((c) => c.pass === 'act-quant')!;
    expect(act.gone.map((g) => [g.kernel, g.what, g.into])).toEqual(
      [4, 10].map(() => [
        'cpp_fused__to_copy_clamp_cutlass_scaled_mm_mul_reciprocal_silu_slice_t_2',
        'silu_and_mul + quant',
        ['torch.ops._C.silu_and_mul_quant.default'],
      ]),
    );
    expect(act.shrunk).toEqual([]);
  });

  it('counts the launches before → after per pass, as the real codes count them', () => {
    expect(kernelCounts(before.code).launches).toBe(13);
    expect(p.passes.map((c) => [c.pass, c.launches.before, c.launches.after, c.added.length])).toEqual([
      ['norm-quant', 13, 14, 4],
      ['act-quant', 14, 14, 2],
    ]);
    expect(kernelCounts(after.code).launches).toBe(14);
  });

  it('draws the predicted launches on the rewritten graph: each fused op around the nodes the pass made for it', () => {
    const last = run.stages[run.stages.length - 1].graph;
    const groups = predictedGroups(p, last);
    expect(groups.map((g) => g.launch.index)).toEqual([...groups.keys()]);
    const fused = groups.find((g) => g.launch.kernel === 'torch.ops._C.rms_norm_static_fp8_quant.default')!;
    expect(fused.source).toBe('predicted');
    const made = run.stages[0].matches[0].produced;
    expect(fused.nodes).toEqual(last.nodes.map((n) => n.name).filter((n) => made.includes(n)));
    // Every predicted node is a node of the rewritten graph.
    const names = new Set(last.nodes.map((n) => n.name));
    for (const g of groups) for (const n of g.nodes) expect(names.has(n)).toBe(true);
  });

  it("reads the app's stages as one step per pass", () => {
    const stages = [
      { graph: before.graph, matches: [] },
      { graph: run.stages[1].graph, matches: [...run.stages[0].matches, ...run.stages[1].matches] },
    ];
    expect(stageSteps(stages, 1).map((s) => [s.pass, s.matches.length])).toEqual([
      ['norm-quant', 4],
      ['act-quant', 2],
    ]);
  });
});
