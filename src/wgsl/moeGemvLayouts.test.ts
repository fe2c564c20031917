// Every layout of the decode MoE GEMV computes each (row, token) dot product in the same order (lane
// partials over k, then the same 32-lane reduction), so all layouts must give the default's output
// bit for bit (the default's with the same `fma`: with and without it the terms add in other orders): prefetched W words, the branch-free copy of the loop for full tiles, unrolling, other
// row and group counts, token slots that split an expert over several tiles. Widths whose word
// counts are not multiples of the 32 lanes exercise the loop tails.

import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { nodeGpu } from '../runtime/nodeGpu.ts';
import { openRanks, type RankDevice } from '../runtime/webgpu/rankDevice.ts';
import { encodeMoeDispatch, seedExpertWeights, type ExpertWeights } from '../runtime/webgpu/moeEncoders.ts';
import { bf16Bits } from '../runtime/bf16.ts';
import { MOE_GEMV_DEFAULT, moeGemvTokens, type MoeGemvConfig } from './moe.ts';

let dev: RankDevice;
let weights: ExpertWeights;
// 38 words of hidden, 33 of intermediate: both past one 32-lane step and not a multiple of it.
const H = 304,
  E = 32,
  K = 4,
  I = 264;
beforeAll(async () => {
  [dev] = await openRanks(await nodeGpu(), 1, { f16: false });
  weights = seedExpertWeights(dev, 'moe', 'vllm.moe_forward', {
    layer: 'test.moe.layouts',
    experts: E,
    hidden: H,
    interShard: I,
    interFull: I,
    dtype: 'bf16',
    seed: 5,
    keep: true,
  });
  await dev.sync();
});
afterAll(() => dev?.destroy());

function bf16Buffer(id: string, values: number[]): GPUBuffer {
  const words = new Uint16Array(values.length + (values.length & 1));
  values.forEach((v, i) => (words[i] = bf16Bits(v)));
  const b = dev.alloc(id, Math.max(16, words.byteLength));
  dev.write(b, 0, new Uint8Array(words.buffer));
  return b;
}

async function moeOut(T: number, cfg: MoeGemvConfig): Promise<Uint16Array> {
  const x = bf16Buffer(
    'x',
    Array.from({ length: T * H }, (_, i) => Math.sin(i * 0.37) * 1.5),
  );
  // Skewed logits: a few experts get many of the T tokens, so tiles fill and experts span tiles.
  const l = bf16Buffer(
    'logits',
    Array.from(
      { length: T * E },
      (_, i) => Math.cos((i % E) * 0.9 + Math.floor(i / E) * 0.13) * 2 + ((i % E) % 5 === 0 ? 1 : 0),
    ),
  );
  const out = dev.alloc('out', T * H * 2);
  encodeMoeDispatch(dev, 'moe', 'vllm.moe_forward', {
    T,
    H,
    E,
    K,
    Is: I,
    dtype: 'bf16',
    logitsDtype: 'bf16',
    x,
    xOff: 0,
    xRowStride: H,
    logits: l,
    lOff: 0,
    lRowStride: E,
    out,
    weights,
    decodeKernel: cfg,
  });
  await dev.sync();
  const bytes = await dev.read(out, 0, T * H * 2);
  for (const id of ['x', 'logits', 'out']) dev.free(id);
  return new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + T * H * 2));
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
