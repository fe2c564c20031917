// Counter-based random numbers, reproducible bit for bit in TypeScript, WGSL and C++ (the agent's
// native worker mirrors these three functions). A value depends only on (seed, stream, index), so
// any rank, thread or backend can generate any slice of any tensor without sharing state.

/** Chris Wellons' lowbias32 integer hash. */
export function lowbias32(x: number): number {
  x = x >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** FNV-1a over the UTF-8 bytes of a name: the stream of a tensor. */
export function fnv1a32(name: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(name)) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function rand(seed: number, stream: number, i: number): number {
  return lowbias32((lowbias32((lowbias32(seed) ^ stream) >>> 0) ^ i) >>> 0);
}

/** Uniform in [-1, 1): the top 24 bits of `rand`, so the value is exact in f32. */
export function uniform(seed: number, stream: number, i: number): number {
  return (rand(seed, stream, i) >>> 8) * 2 ** -24 * 2 - 1;
}

/** Stream of a replicated tensor (same on every rank). */
export function replicatedStream(name: string): number {
  return fnv1a32(name);
}

/** Stream of a per-rank shard. */
export function shardStream(name: string, rank: number): number {
  return fnv1a32(`${name}#r${rank}`);
}
