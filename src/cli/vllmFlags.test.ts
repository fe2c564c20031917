import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { printFx } from '../graph/fx/print.ts';
import { attentionGraph } from '../graph/passes/attnQuantForms.ts';

const BIN = join(import.meta.dirname, '../../bin/fusionlab.js');
const LLAMA = new URL('../../fixtures/capture/llama-tp2.py', import.meta.url).pathname;
const run = (args: string[]) => {
  const r = spawnSync('node', [BIN, 'rewrite', LLAMA, '--report', ...args], { encoding: 'utf8' });
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
