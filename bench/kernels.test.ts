import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bench, type KernelResult } from './kernels.ts';

describe('bench kernels --quick (SwiftShader)', () => {
  it('measures every suite against the copy ceiling of the same run', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'fusionlab-bench-')), 'k.json');
    expect(await bench(['--quick', '--json', file])).toBe(0);
    const out = JSON.parse(readFileSync(file, 'utf8')) as { ceiling_gbs: number; results: KernelResult[] };
    const suites = new Set(out.results.map((r) => r.suite));
    expect([...suites]).toEqual([
      'copy',
      'pass floor',
      'add+rmsnorm',
      'allreduce+rmsnorm (2 ranks gathered)',
      // Thread and row layouts of the add+RMSNorm kernel at large T, each checked against the default.
      'add+rmsnorm layout',
      'moe (expert weights streamed)',
      // The passes after routing, beside per-expert cuBLAS (which routes outside its time).
      'moe without routing',
      // Other MoE GEMV layouts beside the default, each checked bitwise against it on the device.
      'moe layout',
      'gemm',
    ]);
    const layouts = out.results.filter((r) => r.suite === 'moe layout');
    expect(layouts.length).toBeGreaterThan(0);
    for (const r of layouts) expect(r.note, JSON.stringify(r.layout)).toMatch(/; bitwise the default/);
    expect(out.ceiling_gbs).toBe(
      Math.max(...out.results.filter((r) => r.suite === 'copy').map((r) => r.gbs)),
    );
    for (const r of out.results) {
      expect(r.us, r.suite).toBeGreaterThan(0);
      expect(r.ofCeiling).toBeCloseTo(r.gbs / out.ceiling_gbs, 9);
    }
  }, 300_000);
});
