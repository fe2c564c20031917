import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import { passSavings } from './passSavings.ts';
import { PROFILES } from './profiles.ts';

const capture = (name: string) =>
  importGraph(readFileSync(new URL(`../../../fixtures/capture/${name}`, import.meta.url), 'utf8')).graph;

describe('what each fusion buys, from the cost model’s byte and launch accounting', () => {
  const T = 1024;
  const env = { tp: 1, tokens: T };
  const h100 = PROFILES['H100-NVLink']!;

  it('on the FP8 Llama capture: norm + quant and SiLU-mul + quant, counted by hand', () => {
    // llama-fp8-tp1.py: hidden H = 96, bf16 activations, 2 layers. Counted by hand from the graph:
    // norm + quant fuses 4 sites (the first rms_norm, then 3 fused_add_rms_norm), each followed by
    // static_scaled_fp8_quant. Each fusion drops one kernel and the bf16 normed activation's write
    // (by the norm) and read (by the quant): 2 · T·H·2 B. The residual is read and written by both
    // the unfused norm and the fused kernel, so it saves nothing.
    // SiLU-mul + quant fuses 2 sites (one per layer's MLP, gate_up 128 → 64 columns): each drops
    // one kernel and silu_and_mul's bf16 output written then read: 2 · T·64·2 B.
    const H = 96;
    const [norm, act, ar] = passSavings(
      capture('llama-fp8-tp1.py'),
      ['norm-quant', 'act-quant', 'allreduce-rmsnorm'],
      {},
      h100,
      env,
    );
    expect(norm).toMatchObject({ pass: 'norm-quant', sites: 4, launches: 4, hbmBytes: 4 * (2 * T * H * 2) });
    expect(act).toMatchObject({ pass: 'act-quant', sites: 2, launches: 2, hbmBytes: 2 * (2 * T * 64 * 2) });
    expect(ar).toMatchObject({ pass: 'allreduce-rmsnorm', sites: 0, launches: 0, hbmBytes: 0, us: 0 });
    // Fewer bytes and launches take less time on the profile.
    expect(norm!.us).toBeGreaterThan(0);
  });

  it('on the TP 2 Llama capture: the all-reduce + RMSNorm fusion, counted by hand', () => {
    // llama-tp2.py (H = 96): 5 all-reduce + norm sites. The 4 with a residual (fused_add_rms_norm)
    // each drop the norm's kernel and the reduced activation's write and read: 2 · T·H·2 B.
    // The first (rms_norm, no residual) drops the norm's kernel, but vLLM's replacement adds a
    // zeros_like residual (allreduce_rms_fusion.py, AllReduceRMSNormPattern.replacement): a kernel
    // back. Before: all-reduce reads and writes T·H·2, the norm reads T·H·2 and writes T·H·2
    // (8·T·H, weights aside). After: zeros_like writes T·H·2, the fused kernel reads input and
    // residual and writes the norm's output and the residual (8·T·H): it costs 2·T·H more.
    const H = 96;
    const FIRST_SITE_BYTES = (t: number, h: number) => 8 * t * h - (2 * t * h + 8 * t * h);
    const [ar] = passSavings(capture('llama-tp2.py'), ['allreduce-rmsnorm'], { worldSize: 2 }, h100, {
      tp: 2,
      tokens: T,
    });
    expect(ar).toMatchObject({ sites: 5, launches: 4 });
    expect(ar!.hbmBytes).toBe(4 * (2 * T * H * 2) + FIRST_SITE_BYTES(T, H));
    expect(ar!.linkBytesPerRank).toBe(0);
  });
});
