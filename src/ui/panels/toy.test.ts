// The toy's numbers on the CPU reference: two different partial sums per rank, and the two
// orders (sum then slice, slice then sum) equal bit for bit and equal to the sums themselves.

import { describe, expect, it } from 'vitest';
import { runToy } from './sliceSumToy.ts';

describe('slice(Σ x) = Σ slice(x), on two ranks', () => {
  it('computes both orders and they agree with the partials summed', async () => {
    const t = await runToy('cpu');
    expect(t.partials).toHaveLength(2);
    expect(t.partials[0]).not.toEqual(t.partials[1]);
    expect(t.bitwiseEqual).toBe(true);
    expect(t.sliceThenSum).toEqual(t.sumThenSlice);
    t.sumThenSlice.forEach((v, i) => expect(v).toBeCloseTo(t.partials[0][i] + t.partials[1][i], 6));
  });
});
