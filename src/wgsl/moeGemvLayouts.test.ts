// Every layout of the decode MoE GEMV computes each (row, token) dot product in the same order (lane
// partials over k, then the same 32-lane reduction), so all layouts must give the default's output
// bit for bit (the default's with the same `fma`: with and without it the terms add in other orders): prefetched W words, the branch-free copy of the loop for full tiles, unrolling, other
// row and group counts, token slots that split an expert over several tiles. Widths whose word
// counts are not multiples of the 32 lanes exercise the loop tails.

import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { MOE_GEMV_DEFAULT, moeGemvTokens, type MoeGemvConfig } from './moe.ts';
import { openMoeRig, type MoeRig } from '../runtime/webgpu/moeTestRig.ts';

let rig: MoeRig;
// 38 words of hidden, 33 of intermediate: both past one 32-lane step and not a multiple of it.
const H = 304,
  E = 32,
  K = 4,
  I = 264;
beforeAll(async () => {
  rig = await openMoeRig({ hidden: H, experts: E, topk: K, inter: I, seed: 5 });
});
afterAll(() => rig?.destroy());

async function moeOut(T: number, cfg: MoeGemvConfig): Promise<Uint16Array> {
  const x = Array.from({ length: T * H }, (_, i) => Math.sin(i * 0.37) * 1.5);
  // Skewed logits: a few experts get many of the T tokens, so tiles fill and experts span tiles.
  const logits = Array.from(
    { length: T * E },
    (_, i) => Math.cos((i % E) * 0.9 + Math.floor(i / E) * 0.13) * 2 + ((i % E) % 5 === 0 ? 1 : 0),
  );
  return (await rig.run(T, x, logits, cfg)).out;
}

const layouts: [string, Partial<MoeGemvConfig>][] = [
  ['two-dot-product sums', { fma: false }],
  ['prefetched W words', { prefetch: true }],
  ['slot branches in every tile, 2 slots', { fullTiles: false, tm: 2 }],
  ['prefetch, 8 slots', { prefetch: true, maxTm: 8 }],
  ['prefetch, 8 rows × 4 groups', { prefetch: true, groups: 4, rows1: 8, rows2: 8 }],
  ['unrolled twice, 16 slots', { unroll: 2, maxTm: 16 }],
  ['two-dot-product sums, prefetch, full tiles, 4 slots', { fma: false, prefetch: true, tm: 4 }],
  ['two-dot-product sums, unrolled twice, 4 groups', { fma: false, unroll: 2, groups: 4 }],
  ['2 W2 rows a group', { rows2: 2 }],
  ['activations staged as f32', { stageX: true }],
  ['staged, two-dot-product sums, 8 slots, 4 groups', { stageX: true, fma: false, maxTm: 8, groups: 4 }],
];

describe('MoE decode GEMV layouts', { timeout: 300_000 }, () => {
  for (const T of [3, 40]) {
    it(`T = ${T}: every layout is bitwise the default`, async () => {
      // The default's output in each summation order: with and without fused multiply-adds.
      const wants = new Map<boolean, Uint16Array>();
      for (const fma of [true, false]) wants.set(fma, await moeOut(T, { ...MOE_GEMV_DEFAULT, fma }));
      expect((wants.get(true) as Uint16Array).some((w) => w !== 0)).toBe(true);
      for (const [name, more] of layouts) {
        const cfg = { ...MOE_GEMV_DEFAULT, ...more };
        const got = await moeOut(T, cfg);
        const want = wants.get(cfg.fma) as Uint16Array;
        const diff = got.findIndex((w, i) => w !== want[i]);
        expect(diff, `${name} (tm ${moeGemvTokens(T, K, E, cfg)}): first differing word`).toBe(-1);
      }
    });
  }
});
