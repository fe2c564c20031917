import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { printFx } from '../graph/fx/print.ts';
import { attentionGraph } from '../graph/passes/attnQuantForms.ts';

const BIN = join(import.meta.dirname, '../../bin/fusionlab.js');
const LLAMA = new URL('../../fixtures/capture/llama-tp2.py', import.meta.url).pathname;
const run = (args: string[], input = LLAMA) => {
  const r = spawnSync('node', [BIN, 'rewrite', input, '--report', ...args], { encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr, rep: r.status === 0 ? JSON.parse(r.stdout) : undefined };
};
const counts = (rep: { passes: { name: string; matches: number }[] }) =>
  rep.passes.map((p) => [p.name, p.matches]);

describe("fusionlab rewrite with vLLM's own flags", () => {
  it('-O2 -tp 2 on Hopper runs what vLLM runs: noop elimination, the 5 all-reduce + RMSNorm sites, then the IR lowering', () => {
    const r = run(['-O2', '-tp', '2']);
    expect(r.code).toBe(0);
    expect(counts(r.rep)).toEqual([
      ['noop-elimination', 0],
      ['allreduce-rmsnorm', 5],
      ['vllm-ir-lowering', 0],
    ]);
    expect(r.rep.vllm).toMatchObject({ level: 2, platform: 'sm90', tp: 2 });
    // What the fusion saves at 8192 tokens (hidden 96, bf16), counted as in
    // graph/cost/passSavings.test.ts: 4 residual sites × (1 launch, 4·T·H B), the first site −2·T·H B.
    expect(r.rep.costModel).toEqual({ profile: 'H100-NVLink', tp: 2, tokens: 8192 });
    expect(r.rep.passes[1].saves).toEqual({ launches: 4, hbmBytes: 14 * 8192 * 96, linkBytesPerRank: 0 });
  });

  it('an explicit flag turns off what the level turned on, and the report says where each switch came from', () => {
    const r = run(['-O2', '-tp', '2', '-cc.pass_config.fuse_allreduce_rms=False']);
    expect(counts(r.rep)).toEqual([
      ['noop-elimination', 0],
      ['vllm-ir-lowering', 0],
    ]);
    const ar = r.rep.vllm.flags.find((f: { flag: string }) => f.flag === 'fuse_allreduce_rms');
    expect(ar).toMatchObject({ on: false, source: 'explicit' });
  });

  it('on Ampere the FlashInfer fusion stays off, and the report says why', () => {
    const r = run(['-O3', '-tp', '2', '--platform', 'sm80']);
    expect(counts(r.rep)).toEqual([
      ['noop-elimination', 0],
      ['vllm-ir-lowering', 0],
    ]);
    const ar = r.rep.vllm.flags.find((f: { flag: string }) => f.flag === 'fuse_allreduce_rms');
    expect(ar.why).toMatch(/sm80/);
  });

  it('a pass vLLM would run that fusionlab lacks is named on stderr, not dropped silently', () => {
    const r = run(['-O2', '-tp', '2', '-cc.pass_config.fuse_mla_dual_rms_norm=true']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/MLA dual RMSNorm fusion \(fuse_mla_dual_rms_norm\)/);
    expect(r.rep.vllm.notRun).toContainEqual({
      flag: 'fuse_mla_dual_rms_norm',
      vllmPass: 'MLA dual RMSNorm fusion',
    });
  });

  it('refuses --passes together with vLLM flags, and a PassConfig field that does not exist', () => {
    expect(run(['-O2', '--passes', 'slice-hoist']).code).toBe(2);
    const bad = run(['-cc.pass_config.fuse_all=true']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no field 'fuse_all'/);
  });

  it('--platform reaches attn-quant, whose verdict names the attention backend it assumed; --attention-backend overrides it', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'fusionlab-attn-')), 'attn.py');
    writeFileSync(file, printFx(attentionGraph()));
    const rewrite = (args: string[]) => {
      const r = spawnSync(
        'node',
        [BIN, 'rewrite', file, '--report', '-O2', '-cc.pass_config.fuse_attn_quant=true', ...args],
        {
          encoding: 'utf8',
        },
      );
      return JSON.parse(r.stdout) as {
        passes: { name: string; matches: number; unevaluated?: { gates: string[] }[] }[];
        diagnostics: { pass: string; reason: string }[];
      };
    };
    const attn = (rep: ReturnType<typeof rewrite>) => rep.passes.find((p) => p.name === 'attn-quant')!;
    const hopper = rewrite([]);
    expect(attn(hopper).matches).toBe(0);
    expect(hopper.diagnostics.find((d) => d.pass === 'attn-quant')!.reason).toContain(
      "FLASH_ATTN attention backend (vLLM's default on sm90",
    );
    const rocm = rewrite(['--platform', 'rocm']);
    expect(attn(rocm).matches).toBe(1);
    expect(attn(rocm).unevaluated![0]!.gates[0]).toContain(
      "ROCM_ATTN attention backend (vLLM's default on rocm",
    );
    expect(attn(rewrite(['--attention-backend', 'TRITON_ATTN'])).matches).toBe(1);
  });
});

describe('fusionlab rewrite and the compile range it ran', () => {
  // llama-tp2.py's all-reduce input is bf16[s72, 96]: 0.01 MiB / (96 × 2 B) = 54 tokens for the
  // FlashInfer workspace, so vLLM splits at 54 (vllm/config/vllm.py _set_compile_ranges).
  const SMALL_WORKSPACE = ['-O2', '-tp', '4', '-cc.pass_config.fi_allreduce_fusion_max_size_mb=0.01'];

  it('says the range on stderr and in the report, the first (smallest) by default', () => {
    const r = run(SMALL_WORKSPACE);
    expect(r.stderr).toMatch(
      /compile range \(1, 54\) \(the first vLLM compiles; the config makes \(1, 54\), \(55, 8192\)\)/,
    );
    expect(r.rep.vllm.range).toEqual({ start: 1, end: 54, from: 'first' });
    expect(counts(r.rep)).toContainEqual(['allreduce-rmsnorm', 5]);
  });

  it('--compile-range above the fusion’s max_token_num leaves the all-reduce fusion out, naming the bound', () => {
    const r = run([...SMALL_WORKSPACE, '--compile-range', '55-8192']);
    expect(counts(r.rep)).toEqual([
      ['noop-elimination', 0],
      ['vllm-ir-lowering', 0],
    ]);
    expect(r.rep.vllm.outOfRange).toEqual([
      {
        flag: 'fuse_allreduce_rms',
        pass: 'allreduce-rmsnorm',
        why: expect.stringMatching(/ends above 54 tokens/),
      },
    ]);
    expect(r.stderr).toMatch(
      /AllReduceFusionPass \(fuse_allreduce_rms\) not applicable in range \(55, 8192\)/,
    );
    expect(run([...SMALL_WORKSPACE, '--compile-range', '8-2']).code).toBe(2);
  });

  it("a dump folder's vLLM log picks the range its graph was compiled for", () => {
    const dir = mkdtempSync(join(tmpdir(), 'fusionlab-range-'));
    copyFileSync(LLAMA, join(dir, 'llama-tp2.py'));
    writeFileSync(
      join(dir, 'vllm.log'),
      'INFO 04-24 03:26:39 [backends.py:390] Compiling a graph for compile range (55, 8192) takes 12.10 s\n',
    );
    const r = run(SMALL_WORKSPACE, dir);
    expect(r.rep.vllm.range).toEqual({ start: 55, end: 8192, from: 'dump' });
    expect(counts(r.rep)).not.toContainEqual(['allreduce-rmsnorm', 5]);
  });
});
