// The cost model's side of the SP bench: the passes turn the collective-path fragment into the
// SP and async-TP graphs (2 sites each), and the overlapped fused matmuls never cost more than SP.
import { describe, expect, it } from 'vitest';
import { measuredTable, predictSequenceParallel } from './sequenceParallel.ts';

describe('bench sp (cost model)', () => {
  it('predicts every T at TP 2/4/8; T not divisible by the ranks stays on the all-reduce path', () => {
    for (const tp of [2, 4, 8]) {
      const rows = predictSequenceParallel(tp);
      expect(rows.map((r) => r.T)).toEqual([
        1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
      ]);
      for (const r of rows) {
        expect(r.sp === null, `tp ${tp} T ${r.T}`).toBe(r.T % tp !== 0);
        if (r.sp !== null) expect(r.async!).toBeLessThanOrEqual(r.sp);
      }
    }
  });

  it('reads sp_bench lines beside the model and refuses a file without them', () => {
    const line = {
      section: 'sp',
      T: 1024,
      world: 2,
      chunks: 4,
      ar_us: 100,
      sp_us: 80,
      async_us: 50,
      max_ulp_sp: 0,
      max_ulp_async: 1,
    };
    const table = measuredTable(`{"section":"device"}\n${JSON.stringify(line)}\n`);
    expect(table).toContain('| 1024 | 100.0 | 80.0 | 50.0 | 1.25 | 2.00 |');
    expect(() => measuredTable('{"section":"device"}\n')).toThrow('no "sp" lines in the measured file');
  });
});
