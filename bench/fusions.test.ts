import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bench, type FusionRun } from './fusions.ts';
import { FUSION_NAMES } from './fusionCases.ts';

describe('bench fusions --quick (SwiftShader)', () => {
  it('times every fusion fused and unfused at each T, and the fused op on WebGPU is bitwise the pair and the CPU reference', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fusionlab-bench-'));
    const [file, check] = [join(dir, 'f.json'), join(dir, 'check.json')];
    expect(await bench(['--quick', '--json', file, '--check', check])).toBe(0);
    const run = JSON.parse(readFileSync(file, 'utf8')) as FusionRun;
    expect(run.ceiling_gbs).toBeGreaterThan(0);
    expect([...new Set(run.results.map((r) => r.fusion))]).toEqual([...FUSION_NAMES]);
    for (const r of run.results) {
      for (const side of [r.fused, r.pair]) {
        expect(side.us, `${r.fusion} T=${r.T}`).toBeGreaterThan(0);
        expect(side.b2b_us).toBeGreaterThan(0);
        expect(side.kernels).toBeGreaterThan(0);
      }
      expect(r.bytes).toBeGreaterThan(0);
    }
    expect(run.checks.map((c) => c.fusion)).toEqual([...FUSION_NAMES]);
    for (const c of run.checks) {
      expect(
        c.vsPair.map((d) => d.differ),
        c.fusion,
      ).toEqual(c.vsPair.map(() => 0));
      expect(
        c.vsCpu.map((d) => d.differ),
        c.fusion,
      ).toEqual(c.vsCpu.map(() => 0));
    }
    // What torch_fusions.py reads: every fusion's inputs and the fused op's outputs, in return order.
    const dump = JSON.parse(readFileSync(check, 'utf8')) as {
      fusions: Record<string, { inputs: Record<string, { data: number[] }>; outputs: { data: number[] }[] }>;
    };
    expect(Object.keys(dump.fusions)).toEqual([...FUSION_NAMES]);
    expect(dump.fusions['qk-norm+rope']!.outputs).toHaveLength(3);
    expect(Object.keys(dump.fusions['fused_add_rmsnorm+fp8 static']!.inputs)).toEqual([
      'x',
      'residual',
      'weight',
      'scale',
    ]);
  }, 300_000);
});
