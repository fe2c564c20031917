import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { generateSample } from '../graph/samples/index.ts';
import { PASSES } from '../graph/passes/pipeline.ts';

const BIN = join(import.meta.dirname, '../../bin/fusionlab.js');
const run = (args: string[], input?: string) => {
  const r = spawnSync('node', [BIN, ...args], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const SEED = new URL('../../fixtures/fx/seed/pr28841-before.fragment.txt', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'fusionlab-rewrite-'));

describe('fusionlab rewrite', () => {
  const sample = generateSample('gpt-oss-20b');
  const nodesBefore = parseFx(sample).graph.nodes.length;

  it('--report: one JSON object with per-pass matches and sites, diagnostics and node counts (stdin input)', () => {
    const r = run(['rewrite', '-', '--report'], sample);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(Object.keys(rep)).toEqual(['costModel', 'passes', 'diagnostics', 'nodes']);
    expect(rep.passes.map((p: { name: string; matches: number }) => [p.name, p.matches])).toEqual([
      ['noop-elimination', 0],
      ['slice-hoist', 24],
      ['allreduce-rmsnorm', 49],
    ]);
    expect(rep.passes[1].sites).toHaveLength(24);
    expect(rep.passes[1].sites[0]).toBe('all_reduce_2');
    expect(rep.diagnostics).toEqual([]);
    // 48 pairs (all_reduce, fused_add_rms_norm) become one node each; the first-layer rms_norm
    // site trades 4 nodes for 5 (zeros, norm_out buffer, fused op, normed and reduced getitems).
    expect(rep.nodes).toEqual({ before: nodesBefore, after: nodesBefore - 48 + 1 });
  });

  it('--passes allreduce-rmsnorm alone leaves the slices: 25 fused, 24 diagnosed with the slice and the fix', () => {
    const r = run(['rewrite', '-', '--report', '--passes', 'allreduce-rmsnorm'], sample);
    const rep = JSON.parse(r.stdout);
    expect(rep.passes).toHaveLength(1);
    expect(rep.passes[0].matches).toBe(25);
    expect(rep.diagnostics).toHaveLength(24);
    expect(rep.diagnostics[0]).toEqual({
      pass: 'allreduce-rmsnorm',
      node: 'all_reduce_2',
      blocker: 'slice_1',
      reason: 'slice_1 (aten.slice.Tensor) sits between all_reduce_2 and the norm; run slice-hoist',
      fix: 'run slice-hoist',
    });
  });

  it("--report keeps every stage's diagnostics in stage order, each stage's count with its pass", () => {
    const rep = JSON.parse(
      run(
        [
          'rewrite',
          '-',
          '--report',
          '--world-size',
          '2',
          '--passes',
          'noop-elimination,sequence-parallelism,async-tp',
        ],
        generateSample('gpt-oss-20b', { layers: 1, tp: 2 }),
      ).stdout,
    );
    expect(rep.passes.map((p: { name: string; refused?: number }) => [p.name, p.refused])).toEqual([
      ['noop-elimination', undefined],
      ['sequence-parallelism', 3],
      ['async-tp', 3],
    ]);
    const passes = rep.diagnostics.map((d: { pass: string }) => d.pass);
    expect(passes).toEqual([...Array(3).fill('sequence-parallelism'), ...Array(3).fill('async-tp')]);
    // async-tp gives sequence-parallelism's reason, not "run sequence-parallelism first".
    for (const d of rep.diagnostics.slice(3))
      expect(d.reason).toMatch(/is left as sequence-parallelism left it: /);
  });

  it('writes the rewritten graph as FX text or JSON, to stdout or --out; the PR fragment fuses as in the PR', () => {
    const fx = run(['rewrite', SEED, '--gpu', 'blackwell']);
    expect(fx.code).toBe(0);
    expect(fx.stdout).toContain(
      'torch.ops.higher_order.auto_functionalized(torch.ops.vllm.flashinfer_trtllm_fused_allreduce_norm.default, allreduce_in = slice_1, residual = getitem_18, norm_out = None, quant_out = None, scale_out = None, rms_gamma = arg8_1, rms_eps = 1e-05, pattern_code = 1, world_rank = 0, world_size = 4, launch_with_pdl = True, trigger_completion_at_end = True, fp32_acc = True, max_token_num = 5825)',
    );
    expect(fx.stdout).toContain(
      'slice_1: "bf16[s72, 2880]" = torch.ops.aten.slice.Tensor(getitem_3, 1, 0, 2880)',
    );
    const out = join(dir, 'after.json');
    const js = run(['rewrite', SEED, '--emit', 'json', '--out', out]);
    expect([js.code, js.stdout]).toEqual([0, '']);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    expect(doc.schema).toBe('fusionlab.graph/1');
    expect(doc.graph.nodes.map((n: { name: string }) => n.name)).toEqual([
      'auto_functionalized_1',
      'getitem_3',
      'slice_1',
      'auto_functionalized',
    ]);
  });

  it('gates show in the report: world size 3', () => {
    const rep = JSON.parse(run(['rewrite', SEED, '--report', '--world-size', '3']).stdout);
    expect(rep.passes.map((p: { matches: number }) => p.matches)).toEqual([0, 1, 0]);
    expect(rep.diagnostics).toEqual([
      {
        pass: 'allreduce-rmsnorm',
        node: 'all_reduce_1',
        blocker: 'world size',
        reason: "world size 3 (option): FlashInfer's fused all-reduce + RMSNorm runs on 2, 4 or 8 ranks",
        fix: 'world size must be 2, 4 or 8',
      },
    ]);
  });

  it('bad input: exit 2 and one line naming file, line and column', () => {
    const bad = join(dir, 'bad.py');
    writeFileSync(
      bad,
      readFileSync(SEED, 'utf8').replace('slice_1: "bf16[s72, 2880]"', 'slice_1: "bf16[s72, 2880"'),
    );
    const r = run(['rewrite', bad, '--report']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    // The slice_1 line of the fragment (line 9), with the column of the fault.
    expect(lines[0]!.startsWith(`${bad}:9:`)).toBe(true);
    expect(lines[0]).toMatch(/^[^:]+:9:\d+: .*bf16\[s72, 2880/);
  });

  it('bad options and missing files: exit 2 with the reason', () => {
    const unknown = run(['rewrite', SEED, '--passes', 'slice-hoist,fuse-everything']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(
      `unknown pass 'fuse-everything' (known: ${Object.keys(PASSES).join(', ')})`,
    );
    const unwritable = run(['rewrite', SEED, '--out', join(dir, 'no-such-dir', 'x.py')]);
    expect(unwritable.code).toBe(2);
    expect(unwritable.stderr).toBe(
      `fusionlab rewrite: cannot write ${join(dir, 'no-such-dir', 'x.py')}: ENOENT\n`,
    );
    const missing = run(['rewrite', join(dir, 'nope.py')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read');
    expect(missing.stderr).toContain('ENOENT');
  });

  it('--tp-group: an all-reduce over another group is refused by name until that group is the TP group', () => {
    const dp = readFileSync(SEED, 'utf8').replaceAll("'tp:0'", "'dp:0'");
    const refused = JSON.parse(run(['rewrite', '-', '--report'], dp).stdout);
    expect(refused.passes.map((p: { matches: number }) => p.matches)).toEqual([0, 1, 0]);
    expect(refused.diagnostics.map((d: { blocker: string }) => d.blocker)).toEqual(['group']);
    const fused = JSON.parse(run(['rewrite', '-', '--report', '--tp-group', 'dp:0'], dp).stdout);
    expect(fused.passes.map((p: { matches: number }) => p.matches)).toEqual([0, 1, 1]);
    expect(run(['rewrite', SEED, '--tp-group']).stderr).toContain('--tp-group takes');
  });

  it('--report lists, per fused site, the gates a shapeless graph left unevaluated', () => {
    const text = [
      'graph():',
      '    %mm_1 : [num_users=1] = placeholder[target=mm_1]',
      '    %getitem_5 : [num_users=1] = placeholder[target=getitem_5]',
      '    %arg7_1 : [num_users=1] = placeholder[target=arg7_1]',
      '    %all_reduce_1 : [num_users=1] = call_function[target=torch.ops.vllm.all_reduce.default](args = (%mm_1, tp:0), kwargs = {})',
      '    %auto_functionalized_2 : [num_users=1] = call_function[target=torch.ops.higher_order.auto_functionalized](args = (_C.fused_add_rms_norm.default,), kwargs = {input: %all_reduce_1, residual: %getitem_5, weight: %arg7_1, epsilon: 1e-05})',
      '    %getitem_6 : [num_users=1] = call_function[target=operator.getitem](args = (%auto_functionalized_2, 1), kwargs = {})',
      '    return (getitem_6,)',
    ].join('\n');
    const rep = JSON.parse(run(['rewrite', '-', '--report'], text).stdout);
    expect(rep.passes[2]).toMatchObject({ name: 'allreduce-rmsnorm', matches: 1, sites: ['all_reduce_1'] });
    expect(rep.passes[2].unevaluated).toEqual([
      {
        site: 'all_reduce_1',
        gates: [expect.stringContaining("token capacity: all_reduce_1's input shape is unknown")],
      },
    ]);
    expect(rep.passes[1].unevaluated).toBeUndefined();
  });

  it("a folder (vLLM's debug dump) imports as ordered stages: the first is rewritten, the report lists each with its fused sites", () => {
    const dump = join(dir, 'dump');
    mkdirSync(join(dump, 'rank_0'), { recursive: true });
    const after = readFileSync(SEED.replace('before', 'after'), 'utf8');
    writeFileSync(join(dump, 'rank_0', 'post_grad.3.AllReduceFusionPass.after.py'), after);
    writeFileSync(
      join(dump, 'rank_0', 'post_grad.3.AllReduceFusionPass.before.py'),
      readFileSync(SEED, 'utf8'),
    );
    writeFileSync(join(dump, 'rank_0', 'patterns.AllReduceFusionPass.0.py'), 'patterns = {}\n');
    const r = run(['rewrite', dump, '--report', '--gpu', 'blackwell']);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.stage).toBe('post_grad.3.AllReduceFusionPass.before');
    expect(rep.stages.map((s: { name: string; fusedSites: number }) => [s.name, s.fusedSites])).toEqual([
      ['post_grad.3.AllReduceFusionPass.before', 0],
      ['post_grad.3.AllReduceFusionPass.after', 1],
    ]);
    expect(rep.passes.map((p: { matches: number }) => p.matches)).toEqual([0, 1, 1]);
    expect(r.stderr).toContain("patterns.AllReduceFusionPass.0.py: warning: skipped: vLLM's pattern dump");
    const second = JSON.parse(run(['rewrite', dump, '--report', '--stage', '1']).stdout);
    expect(second.stage).toBe('post_grad.3.AllReduceFusionPass.after');
    expect(second.passes.map((p: { matches: number }) => p.matches)).toEqual([0, 0, 0]);
    const bad = run(['rewrite', dump, '--stage', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("no stage 'nope'");
    const empty = join(dir, 'empty-dump');
    mkdirSync(empty);
    writeFileSync(join(empty, 'notes.md'), '# not a graph');
    expect(run(['rewrite', empty]).stderr).toContain('no graph among its 1 files');
  });
});
