import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dumpWorldSize, importStageFolder } from './stageFolder.ts';

const FX = new URL('../../fixtures/fx/', import.meta.url).pathname;
const qwen = readFileSync(FX + 'real/qwen2-paral2_layer1-r0.py', 'utf8');
const before = readFileSync(FX + 'seed/pr28841-before.fragment.txt', 'utf8');
const after = readFileSync(FX + 'seed/pr28841-after.fragment.txt', 'utf8');

describe('a folder of dumps as ordered stages', () => {
  it("vLLM's debug dump: computation_graph first, then post_grad.{i}.{Pass}.before/after in pass order; one rank; pattern dumps skipped", () => {
    const files = [
      { path: 'dump/rank_1/post_grad.0.NoOpEliminationPass.before.py', text: before },
      { path: 'dump/rank_0/post_grad.10.AllReduceFusionPass.after.py', text: after },
      { path: 'dump/rank_0/post_grad.2.AllReduceFusionPass.before.py', text: before },
      { path: 'dump/rank_0/patterns.AllReduceFusionPass.0.py', text: 'patterns = {\n}' },
      { path: 'dump/rank_0/post_grad.10.AllReduceFusionPass.before.py', text: before },
      { path: 'dump/rank_0/computation_graph.py', text: qwen },
      { path: 'dump/rank_0/post_grad.2.AllReduceFusionPass.after.py', text: after },
    ];
    const r = importStageFolder(files);
    expect(r.stages.map((s) => s.name)).toEqual([
      'computation_graph',
      'post_grad.2.AllReduceFusionPass.before',
      'post_grad.2.AllReduceFusionPass.after',
      'post_grad.10.AllReduceFusionPass.before',
      'post_grad.10.AllReduceFusionPass.after',
    ]);
    expect(r.stages[0]!.graph.nodes.filter((n) => n.op === 'vllm.all_reduce.default')).toHaveLength(3);
    expect(r.skipped).toEqual([
      {
        path: 'dump/rank_1/post_grad.0.NoOpEliminationPass.before.py',
        reason: "rank_1: another rank's copy of the stages (showing rank_0)",
      },
      {
        path: 'dump/rank_0/patterns.AllReduceFusionPass.0.py',
        reason: "vLLM's pattern dump (VllmPatternMatcherPass.dump_patterns), not a graph",
      },
    ]);
  });

  it("TORCH_COMPILE_DEBUG's Inductor folder: fx_graph_readable before fx_graph_transformed; the rest named", () => {
    const r = importStageFolder([
      { path: 'torchinductor/model__0_forward_1.0/fx_graph_transformed.py', text: after },
      { path: 'torchinductor/model__0_forward_1.0/output_code.py', text: 'import triton' },
      { path: 'torchinductor/model__0_forward_1.0/fx_graph_runnable.py', text: 'import torch' },
      { path: 'torchinductor/model__0_forward_1.0/fx_graph_readable.py', text: before },
      { path: 'torchinductor/model__0_forward_1.0/ir_post_fusion.txt', text: 'buf0: SchedulerNode' },
      { path: 'torchinductor/model__0_forward_1.0/inductor_provenance.log', text: '' },
    ]);
    expect(r.stages.map((s) => s.name)).toEqual(['fx_graph_readable', 'fx_graph_transformed']);
    // Two compiled pieces: each one's stages together, pieces in order.
    const two = importStageFolder([
      { path: 'torchinductor/model__0_forward_2.0/fx_graph_readable.py', text: before },
      { path: 'torchinductor/model__0_forward_1.0/fx_graph_transformed.py', text: after },
      { path: 'torchinductor/model__0_forward_1.0/fx_graph_readable.py', text: before },
    ]);
    expect(two.stages.map((s) => s.path.split('/').slice(1).join('/'))).toEqual([
      'model__0_forward_1.0/fx_graph_readable.py',
      'model__0_forward_1.0/fx_graph_transformed.py',
      'model__0_forward_2.0/fx_graph_readable.py',
    ]);
    expect(two.stages.map((s) => s.name)).toEqual([
      'model__0_forward_1.0/fx_graph_readable',
      'fx_graph_transformed',
      'model__0_forward_2.0/fx_graph_readable',
    ]);
    expect(r.skipped.map((s) => s.path.split('/').pop())).toEqual([
      'output_code.py',
      'fx_graph_runnable.py',
      'ir_post_fusion.txt',
      'inductor_provenance.log',
    ]);
  });

  it('a file that is not FX is listed with file:line:col and the other stages still load', () => {
    const r = importStageFolder([
      { path: 'd/2_after.py', text: after },
      { path: 'd/1_before.py', text: before },
      {
        path: 'd/10_broken.py',
        text: 'def forward(self, x: "bf16[s72, 2880]"):\n    y = torch.ops.aten.add.Tensor(x, \n',
      },
    ]);
    expect(r.stages.map((s) => s.name)).toEqual(['1_before', '2_after']);
    expect(r.skipped).toHaveLength(1);
    expect(r.skipped[0]!.reason).toMatch(/^d\/10_broken\.py:\d+:\d+: /);
  });
});

describe('the captured vLLM dump folder', () => {
  const DIR = new URL('../../fixtures/capture/vllm-dump-gpt-oss-before-tp2/', import.meta.url).pathname;
  it('{stage}-{rank}.py files in pass-manager order: before_noop_elimination, then after_fix_functionalization', async () => {
    const { readdirSync } = await import('node:fs');
    const names = readdirSync(DIR).sort().reverse();
    const r = importStageFolder(names.map((n) => ({ path: n, text: readFileSync(DIR + n, 'utf8') })));
    expect(r.stages.map((s) => s.name)).toEqual([
      'before_noop_elimination-0',
      'after_fix_functionalization-0',
    ]);
    expect(r.skipped).toEqual([]);
    // Another rank's dump of the same stages is set aside, named.
    const two = importStageFolder(
      [...names, 'before_noop_elimination-1.py'].map((n) => ({
        path: n,
        text: readFileSync(DIR + n.replace('-1.py', '-0.py'), 'utf8'),
      })),
    );
    expect(two.skipped).toEqual([
      {
        path: 'before_noop_elimination-1.py',
        reason: "rank_1: another rank's copy of the stages (showing rank_0)",
      },
    ]);
  });
});

describe('files outside any rank', () => {
  it("belong to every rank: kept beside rank 0's stages", () => {
    const r = importStageFolder([
      { path: 'before_noop_elimination-0.py', text: before },
      { path: 'README.md', text: '# notes' },
      { path: 'computation_graph.py', text: qwen },
    ]);
    expect(r.stages.map((s) => s.name)).toEqual(['computation_graph', 'before_noop_elimination-0']);
    expect(r.skipped.map((s) => s.reason)).toEqual(['not a graph file (.py, .txt, .json, .fx)']);
  });
});

describe('the world size a dump states in its file names', () => {
  it('reads `{stage}-{rank}.py` as TP > 1 and ranks up to N − 1 as N; `rank_N` folders only past rank 0', () => {
    expect(dumpWorldSize(['before_noop_elimination-0.py', 'after_fix_functionalization-0.py'])).toBe(2);
    expect(dumpWorldSize(['before_noop_elimination-0.py', 'before_noop_elimination-3.py'])).toBe(4);
    // No suffix: vLLM dumped at TP 1, or the name says nothing.
    expect(dumpWorldSize(['before_noop_elimination.py', 'notes.md'])).toBeUndefined();
    expect(dumpWorldSize(['rank_0/post_grad.0.NoOpEliminationPass.before'])).toBeUndefined();
    expect(dumpWorldSize(['rank_0/a.py', 'rank_1/a.py'])).toBe(2);
  });
});
