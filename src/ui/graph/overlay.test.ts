import { describe, expect, it } from 'vitest';
import { interpolateViridis, rgb } from 'd3';
import { inkOn, nodeFills, overlayScale, valuesForRank, type RankValue } from './overlay.ts';

const viridis = (t: number) => rgb(interpolateViridis(t)).formatRgb();

describe('overlayScale', () => {
  it('maps the ends of the range to the ends of the ramp, clamping outside it', () => {
    const s = overlayScale([3, 7, 5])!;
    expect(s.log).toBe(false);
    expect([s.min, s.max]).toEqual([3, 7]);
    expect(s.colorOf(3)).toBe(viridis(0));
    expect(s.colorOf(7)).toBe(viridis(1));
    expect(s.colorOf(5)).toBe(viridis(0.5));
    expect(s.colorOf(100)).toBe(viridis(1));
    expect(s.colorOf(-1)).toBe(viridis(0));
    expect(s.ticks).toEqual([3, 7]);
  });

  it('goes log past two decades, with a tick at every power of ten between', () => {
    const s = overlayScale([2, 50, 5000])!;
    expect(s.log).toBe(true);
    expect(s.ticks).toEqual([2, 10, 100, 1000, 5000]);
    // 2 → 5000 is log10(2500) decades; 100 sits at log10(50)/log10(2500) of the way.
    expect(s.colorOf(100)).toBe(viridis(Math.log10(50) / Math.log10(2500)));
  });

  it('stays linear at exactly two decades, and whenever a value is 0', () => {
    expect(overlayScale([1, 100])!.log).toBe(false);
    expect(overlayScale([1, 101])!.log).toBe(true);
    const withZero = overlayScale([0, 1e-6, 4])!;
    expect(withZero.log).toBe(false);
    expect(withZero.colorOf(0)).toBe(viridis(0));
  });

  it('ignores non-finite values; none at all gives no scale; one value takes the low end', () => {
    expect(overlayScale([])).toBeNull();
    expect(overlayScale([NaN, Infinity])).toBeNull();
    const s = overlayScale([Infinity, 2, 4])!;
    expect([s.min, s.max]).toEqual([2, 4]);
    expect(s.colorOf(Infinity)).toBe(viridis(1));
    const one = overlayScale([0, 0])!;
    expect(one.colorOf(0)).toBe(viridis(0));
    expect(one.ticks).toEqual([0]);
  });
});

describe('overlayScale with zeros at the floor (times, bytes)', () => {
  it('spans the positive values, goes log over them, and colours a 0 as the low end', () => {
    const s = overlayScale([0, 0.5, 5, 5000], true)!;
    expect([s.min, s.max, s.log, s.zeroAtFloor]).toEqual([0.5, 5000, true, true]);
    expect(s.colorOf(0)).toBe(viridis(0));
    expect(s.colorOf(0.5)).toBe(viridis(0));
    expect(s.colorOf(5000)).toBe(viridis(1));
    // Without the floor the 0 keeps the scale linear, and 5 µs is nearly the colour of 0.
    expect(overlayScale([0, 0.5, 5, 5000])!.log).toBe(false);
  });
  it('still has a scale when every value is 0', () => {
    const s = overlayScale([0, 0], true)!;
    expect([s.min, s.max, s.zeroAtFloor]).toEqual([0, 0, false]);
  });
});

describe('nodeFills', () => {
  it('gives a node without a value no fill (the no-data style), not the colour of 0', () => {
    const values = new Map([
      ['a', 0],
      ['b', 2],
    ]);
    const fills = nodeFills(['a', 'b', 'fused'], values, overlayScale(values.values()));
    expect(fills.get('a')).toBe(viridis(0));
    expect(fills.get('b')).toBe(viridis(1));
    expect(fills.has('fused')).toBe(true);
    expect(fills.get('fused')).toBeNull();
  });
});

describe('valuesForRank', () => {
  const rows: RankValue[] = [
    { node: 'mm', rank: 0, value: 5 },
    { node: 'mm', rank: 1, value: 9 },
    { node: 'all_reduce', rank: 0, value: 3 },
    { node: 'all_reduce', rank: 1, value: 1 },
    { node: 'only_on_1', rank: 1, value: 4 },
  ];
  it('takes the largest over the ranks, per node (not their sum)', () => {
    expect(Object.fromEntries(valuesForRank(rows, 'max'))).toEqual({ mm: 9, all_reduce: 3, only_on_1: 4 });
  });
  it("takes one rank's values, and none for a node that rank did not run", () => {
    expect(Object.fromEntries(valuesForRank(rows, 0))).toEqual({ mm: 5, all_reduce: 3 });
    expect(Object.fromEntries(valuesForRank(rows, 1))).toEqual({ mm: 9, all_reduce: 1, only_on_1: 4 });
  });
});

describe('inkOn', () => {
  it("puts light text on viridis' dark end and dark text on its light end", () => {
    expect(inkOn(viridis(0))).toBe('light');
    expect(inkOn(viridis(1))).toBe('dark');
  });
});
