// The three graphs of one GPT-OSS layer on the CPU reference: fused sites as vLLM counts them
// (L+1 before a fix, 2L+1 after either), the re-land cheapest in the cost model, outputs of all
// three bitwise equal to the original's once fused norms round as the pair does.
import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { generateSample } from '../graph/samples/index.ts';
import { compareFixes } from './compareFixes.ts';
import { command } from '../cli/compareFixes.ts';
import { tinyCpuRun } from './testRuns.ts';

describe('compare fixes', () => {
  it('one GPT-OSS-20B layer at TP 2: 2, 3 and 3 fused sites; the re-land launches one kernel less than the hoist and moves fewer bytes; all equal', async () => {
    const layer = parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 2 })).graph;
    const r = await compareFixes(layer, tinyCpuRun({ tokens: 8, seed: 7 }));
    expect(r.rows.map((x) => [x.id, x.fusions, x.equal])).toEqual([
      ['original', 2, true],
      ['slice-hoist', 3, true],
      ['moe-unpad', 3, true],
    ]);
    const [orig, hoist, reland] = r.rows as [(typeof r.rows)[0], (typeof r.rows)[0], (typeof r.rows)[0]];
    // The pad goes: one launch and its [T, 3072] write and read.
    expect(reland.model.launches).toBe(hoist.model.launches - 1);
    expect(reland.model.hbmBytes).toBeLessThan(hoist.model.hbmBytes);
    // Both fixes reduce 2880 columns instead of 3072: the same link bytes.
    expect(reland.model.linkBytesPerRank).toBe(hoist.model.linkBytesPerRank);
    expect(hoist.model.linkBytesPerRank).toBeLessThan(orig.model.linkBytesPerRank);
    expect(r.rows.every((x) => x.check.length === 2 && x.check.every((c) => c.bitwiseEqual))).toBe(true);
    // The run counts each variant's own kernels (nodes, not the steps a fused op or the MoE runs):
    // the model's count, one less per fix.
    expect(r.rows.map((x) => x.measured.kernels)).toEqual(r.rows.map((x) => x.model.launches));
    // Its time is the busiest rank's median of the timed runs, inside their spread.
    for (const x of r.rows) {
      expect(x.measured.runs).toBe(3);
      expect(x.measured.spread.min <= x.measured.us && x.measured.us <= x.measured.spread.max).toBe(true);
      // The first fused site alone moves by the fused kernel's one rounding: at most 2 ulps.
      expect(x.drift.firstSite!.ulps).toBeLessThanOrEqual(2);
    }
  });

  it('the CLI prints the table and refuses a bad option with its usage', async () => {
    const out: string[] = [],
      err: string[] = [];
    const w = process.stdout.write.bind(process.stdout),
      e = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => {
      out.push(s);
      return true;
    }) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => {
      err.push(s);
      return true;
    }) as typeof process.stderr.write;
    try {
      expect(await command(['--tokens', '8', '--seed', '3'])).toBe(0);
      expect(await command(['--ranks', '3'])).toBe(2);
    } finally {
      process.stdout.write = w;
      process.stderr.write = e;
    }
    const text = out.join('');
    expect(text).toMatch(/^GPT-OSS layer, 2 rank\(s\), T=8; model: H200/);
    expect(text.split('\n').filter((l) => l.endsWith('bitwise equal'))).toHaveLength(3);
    expect(err.join('')).toContain('fusionlab compare-fixes: --ranks takes 1, 2, 4 or 8');
  });
});
