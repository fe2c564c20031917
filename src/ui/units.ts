// How the app prints a duration measured in µs: in the unit that keeps the number short (µs, ms
// or s, three significant digits), so a 16-second run reads "16.1 s", not "16100213.3 µs".

export function formatMicros(us: number): string {
  if (us === 0) return '0';
  if (Math.abs(us) < 1000) return `${+us.toPrecision(3)} µs`;
  if (Math.abs(us) < 1e6) return `${+(us / 1000).toPrecision(3)} ms`;
  return `${+(us / 1e6).toPrecision(3)} s`;
}

/** A spread of durations: "1.52–1.61 s". */
export function formatMicrosRange(s: { min: number; max: number }): string {
  const [lo, hi] = [formatMicros(s.min), formatMicros(s.max)];
  const unit = (t: string) => t.slice(t.lastIndexOf(' ') + 1);
  return unit(lo) === unit(hi) && lo !== '0' ? `${lo.slice(0, lo.lastIndexOf(' '))}–${hi}` : `${lo}–${hi}`;
}
