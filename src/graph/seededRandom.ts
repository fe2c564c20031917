// A small seeded generator, so a seed names the same sequence everywhere: the importers' and the
// CLI's mutants (mutants.ts), the differential check's random graphs and the map functions' value
// tests. The runtime's tensor values come from a counter-based generator instead
// (src/runtime/random.ts), which WGSL and C++ reproduce at any index.

/** mulberry32: uniform in [0, 1), the same sequence for the same seed everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
