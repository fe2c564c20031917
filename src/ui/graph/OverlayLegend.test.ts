import { describe, expect, it } from 'vitest';
import { overlayScale } from './overlay.ts';
import { formatOverlayValue, rampPosition, shownTicks } from './OverlayLegend.tsx';

describe('the overlay legend', () => {
  it('writes times in the unit that keeps them short, three significant digits', () => {
    expect(formatOverlayValue('time', 5)).toBe('5 µs');
    expect(formatOverlayValue('time', 12.345)).toBe('12.3 µs');
    expect(formatOverlayValue('time', 139615)).toBe('140 ms');
    expect(formatOverlayValue('time', 2.5e6)).toBe('2.5 s');
  });

  it('keeps both ends and spaces the ticks between them a quarter of the ramp apart', () => {
    // 5 µs … 143 ms: decades at 10, 100, 1e3, 1e4, 1e5 µs on a log scale.
    const scale = overlayScale([5, 80, 900, 143_000])!;
    expect(scale.log).toBe(true);
    const ticks = shownTicks(scale);
    expect(ticks[0]).toBe(5);
    expect(ticks[ticks.length - 1]).toBe(143_000);
    const at = ticks.map((v) => rampPosition(scale, v));
    for (let i = 1; i < at.length; i++) expect(at[i] - at[i - 1]).toBeGreaterThanOrEqual(0.25);
    expect(ticks.length).toBeGreaterThan(2);
  });
});
