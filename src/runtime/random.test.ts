import { describe, it, expect } from 'vitest';
import { fnv1a32, lowbias32, rand, uniform, shardStream, replicatedStream } from './random.ts';

/** The spec, written out independently with BigInt arithmetic. */
function lowbias32Spec(x: bigint): bigint {
  const M = 0xffffffffn;
  x &= M;
  x ^= x >> 16n;
  x = (x * 0x7feb352dn) & M;
  x ^= x >> 15n;
  x = (x * 0x846ca68bn) & M;
  x ^= x >> 16n;
  return x;
}

describe('counter-based random numbers', () => {
  it('lowbias32 and rand follow the spec for random counters', () => {
    for (let i = 0; i < 2000; i++) {
      const x = (Math.random() * 2 ** 32) >>> 0;
      expect(lowbias32(x)).toBe(Number(lowbias32Spec(BigInt(x))));
      const seed = (Math.random() * 2 ** 32) >>> 0,
        stream = (Math.random() * 2 ** 32) >>> 0;
      const want = lowbias32Spec(lowbias32Spec(lowbias32Spec(BigInt(seed)) ^ BigInt(stream)) ^ BigInt(i));
      expect(rand(seed, stream, i)).toBe(Number(want));
    }
  });

  it('uniform is in [-1, 1), exact in f32, and centred', () => {
    let sum = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const u = uniform(1234, 99, i);
      expect(u).toBeGreaterThanOrEqual(-1);
      expect(u).toBeLessThan(1);
      expect(Math.fround(u)).toBe(u);
      sum += u;
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.02);
  });

  it('streams: FNV-1a of the name, per-rank shards differ', () => {
    // FNV-1a's published test vector: "a" → 0xe40c292c.
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(replicatedStream('w')).toBe(fnv1a32('w'));
    expect(shardStream('w', 1)).toBe(fnv1a32('w#r1'));
    expect(shardStream('w', 0)).not.toBe(shardStream('w', 1));
  });
});
