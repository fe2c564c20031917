// The decode MoE at T = 1 with its routing folded into the first GEMV (no routing pass) against the
// same step with the one-workgroup routing pass: outputs bitwise equal, for random logits, logits
// that all tie (the tie rule alone picks) and a NaN logit. And RankDevice's batch: N steps encoded
// into one submit give what N submits give.

import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { MOE_GEMV_DEFAULT, moeFoldsRoute, moeGemvTokens, type MoeGemvConfig } from './moe.ts';
import { openMoeRig, type MoeRig } from '../runtime/webgpu/moeTestRig.ts';

let rig: MoeRig;
const H = 48,
  E = 32,
  K = 4,
  I = 120;
beforeAll(async () => {
  rig = await openMoeRig({ hidden: H, experts: E, topk: K, inter: I, seed: 11 });
});
afterAll(() => rig?.destroy());

/** Timestamped passes of the last moeOut (−1 without timestamps). */
let passes = 0;
/** The step's output words (bf16) at T = 1 with the given decode layout, after `times` calls, batched or not. */
async function moeOut(logits: number[], cfg: MoeGemvConfig, times = 1, batch = false): Promise<Uint16Array> {
  const x = Array.from({ length: H }, (_, i) => Math.sin(i * 0.7) * 1.5);
  const r = await rig.run(1, x, logits, cfg, { times, batch });
  passes = r.passes;
  return r.out;
}

const folded = MOE_GEMV_DEFAULT;
const routed = { ...MOE_GEMV_DEFAULT, foldRoute: false };

describe('MoE decode at T = 1: routing folded into the first GEMV', { timeout: 180_000 }, () => {
  it('is what the default layout does at T = 1, and only there', () => {
    expect(moeFoldsRoute(1, E, K, folded, moeGemvTokens(1, K, E, folded))).toBe(true);
    expect(moeFoldsRoute(1, E, K, routed, moeGemvTokens(1, K, E, routed))).toBe(false);
    expect(moeFoldsRoute(4, E, K, folded, moeGemvTokens(4, K, E, folded))).toBe(false);
  });

  const cases: [string, number[]][] = [
    ['random logits', Array.from({ length: E }, (_, i) => Math.cos(i * 1.3 + 0.2) * 3)],
    ['every logit tied', Array.from({ length: E }, () => 0.5)],
    ['a NaN logit', Array.from({ length: E }, (_, i) => (i === 5 ? NaN : Math.sin(i) * 2))],
  ];
  for (const [name, logits] of cases)
    it(`${name}: bitwise equal to the routing pass`, async () => {
      const a = await moeOut(logits, folded);
      const foldedPasses = passes;
      const b = await moeOut(logits, routed);
      if (passes >= 0) expect([foldedPasses, passes]).toEqual([3, 4]);
      expect(Array.from(a)).toEqual(Array.from(b));
      expect(a.some((w) => w !== 0)).toBe(true);
    });

  it('three steps in one batched submit give what one step gives', async () => {
    const logits = cases[0][1];
    const once = await moeOut(logits, folded);
    const batched = await moeOut(logits, folded, 3, true);
    expect(Array.from(batched)).toEqual(Array.from(once));
  });
});
