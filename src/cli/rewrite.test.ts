import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { generateSample } from '../graph/samples/index.ts';

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
    expect(Object.keys(rep)).toEqual(['passes', 'diagnostics', 'nodes']);
    expect(rep.passes.map((p: { name: string; matches: number }) => [p.name, p.matches])).toEqual([['noop-elimination', 0], ['slice-hoist', 24], ['allreduce-rmsnorm', 49]]);
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
      pass: 'allreduce-rmsnorm', node: 'all_reduce_2', blocker: 'slice_1',
      reason: 'slice_1 (aten.slice.Tensor) sits between all_reduce_2 and the norm; run slice-hoist', fix: 'run slice-hoist',
    });
  });

  it('writes the rewritten graph as FX text or JSON, to stdout or --out; the PR fragment fuses as in the PR', () => {
    const fx = run(['rewrite', SEED, '--gpu', 'blackwell']);
    expect(fx.code).toBe(0);
    expect(fx.stdout).toContain('torch.ops.higher_order.auto_functionalized(torch.ops.vllm.flashinfer_trtllm_fused_allreduce_norm.default, allreduce_in = slice_1, residual = getitem_18, norm_out = None, quant_out = None, scale_out = None, rms_gamma = arg8_1, rms_eps = 1e-05, pattern_code = 1, world_rank = 0, world_size = 4, launch_with_pdl = True, trigger_completion_at_end = True, fp32_acc = True, max_token_num = 5825)');
    expect(fx.stdout).toContain('slice_1: "bf16[s72, 2880]" = torch.ops.aten.slice.Tensor(getitem_3, 1, 0, 2880)');
    const out = join(dir, 'after.json');
    const js = run(['rewrite', SEED, '--emit', 'json', '--out', out]);
    expect([js.code, js.stdout]).toEqual([0, '']);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    expect(doc.schema).toBe('fusionlab.graph/1');
    expect(doc.graph.nodes.map((n: { name: string }) => n.name)).toEqual(['auto_functionalized_1', 'getitem_3', 'slice_1', 'auto_functionalized']);
  });

  it('gates show in the report: world size 3', () => {
    const rep = JSON.parse(run(['rewrite', SEED, '--report', '--world-size', '3']).stdout);
    expect(rep.passes.map((p: { matches: number }) => p.matches)).toEqual([0, 1, 0]);
    expect(rep.diagnostics).toEqual([{
      pass: 'allreduce-rmsnorm', node: 'all_reduce_1', blocker: 'world size',
      reason: "world size 3 (option): FlashInfer's fused all-reduce + RMSNorm runs on 2, 4 or 8 ranks", fix: 'world size must be 2, 4 or 8',
    }]);
  });

  it('bad input: exit 2 and one line naming file, line and column', () => {
    const bad = join(dir, 'bad.py');
    writeFileSync(bad, readFileSync(SEED, 'utf8').replace("slice_1: \"bf16[s72, 2880]\"", 'slice_1: "bf16[s72, 2880"'));
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
    expect(unknown.stderr).toContain("unknown pass 'fuse-everything' (known: noop-elimination, slice-hoist, moe-unpad, sequence-parallelism, async-tp, allreduce-rmsnorm)");
    const unwritable = run(['rewrite', SEED, '--out', join(dir, 'no-such-dir', 'x.py')]);
    expect(unwritable.code).toBe(2);
    expect(unwritable.stderr).toBe(`fusionlab rewrite: cannot write ${join(dir, 'no-such-dir', 'x.py')}: ENOENT\n`);
    const missing = run(['rewrite', join(dir, 'nope.py')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read');
    expect(missing.stderr).toContain('ENOENT');
  });
});
