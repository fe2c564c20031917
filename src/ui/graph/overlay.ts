// Node-data overlays: the graph views colour each node's fill by a measured value (time, bytes,
// |after − before|) instead of its kind; the border and accent keep the kind. Values → colours on
// one sequential scale shared by every pane, so the same colour means the same number before and
// after. Viridis: perceptually ordered, colour-blind safe, and without the grey the no-data style
// uses. Pure: no DOM, no store.

import { interpolateViridis, rgb } from 'd3';

export const OVERLAY_METRICS = ['kind', 'time', 'bytes', 'delta'] as const;
export type OverlayMetric = (typeof OVERLAY_METRICS)[number];

export const METRIC_INFO: Record<OverlayMetric, { label: string; unit: string }> = {
  kind: { label: 'kind', unit: '' },
  time: { label: 'measured time', unit: 'per node and run' },
  bytes: { label: 'bytes', unit: 'bytes read + written' },
  delta: { label: '|Δ| before vs after', unit: 'largest absolute difference' },
};

/** One rank's values, or per node the largest over every rank. */
export type RankChoice = number | 'max';

export const rankLabel = (r: RankChoice): string => (r === 'max' ? 'max over ranks' : `rank ${r}`);

/** A value the run recorded for one node on one rank. */
export interface RankValue {
  node: string;
  rank: number;
  value: number;
}

/** Per node: the chosen rank's value, or the largest over the ranks. A node the rank lacks has none. */
export function valuesForRank(rows: readonly RankValue[], rank: RankChoice): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of rows) {
    if (rank !== 'max' && r.rank !== rank) continue;
    const was = out.get(r.node);
    if (was === undefined || r.value > was) out.set(r.node, r.value);
  }
  return out;
}

/** A positive range wider than this many decades is shown on a log scale. */
export const LOG_DECADES = 2;

export interface OverlayScale {
  log: boolean;
  min: number;
  max: number;
  /** The fill of a value: out-of-range values take the nearest end. */
  colorOf(v: number): string;
  /** min, max and (log) every power of ten between them, low to high. */
  ticks: number[];
  /** Zeros sit below the range, at its low end (times under the clock's resolution, no traffic). */
  zeroAtFloor: boolean;
}

/** Colours as the browser reports a computed fill (`rgb(r, g, b)`), so tests compare strings. */
const ramp = (t: number) => rgb(interpolateViridis(Math.min(1, Math.max(0, t)))).formatRgb();

/**
 * The scale over these values (non-finite ones ignored), or null when there are none. Log when
 * every value is positive and max/min spans more than LOG_DECADES decades; linear otherwise (a
 * 0, as an untouched node's |Δ|, has no place on a log axis). One value alone takes the low end.
 * `zeroAtFloor` (times, bytes): the range is that of the positive values and a 0 takes its low
 * end, so a few kernels under the clock's resolution do not force a linear scale on the rest.
 */
export function overlayScale(values: Iterable<number>, zeroAtFloor = false): OverlayScale | null {
  let min = Infinity,
    max = -Infinity,
    any = false;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    any = true;
    if (zeroAtFloor && v <= 0) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!any) return null;
  // Only zeros: one value, 0.
  if (min > max) min = max = 0;
  const log = min > 0 && max / min > 10 ** LOG_DECADES;
  const f = log ? Math.log10 : (v: number) => v;
  const lo = f(min),
    span = f(max) - lo;
  const colorOf = (v: number) => {
    if (Number.isNaN(v)) return ramp(1);
    if (span === 0) return ramp(0);
    return ramp((f(Math.min(max, Math.max(min, v))) - lo) / span);
  };
  const ticks = [min];
  if (log)
    for (let e = Math.ceil(Math.log10(min)); e <= Math.floor(Math.log10(max)); e++)
      if (10 ** e > min && 10 ** e < max) ticks.push(10 ** e);
  if (max !== min) ticks.push(max);
  return { log, min, max, colorOf, ticks, zeroAtFloor: zeroAtFloor && min > 0 };
}

/**
 * Per node of a graph: its fill, or null for a node with no value (drawn in the no-data style,
 * never as the scale's low end).
 */
export function nodeFills(
  names: Iterable<string>,
  values: ReadonlyMap<string, number>,
  scale: OverlayScale | null,
): Map<string, string | null> {
  const fills = new Map<string, string | null>();
  for (const n of names) {
    const v = values.get(n);
    fills.set(n, v === undefined || !scale ? null : scale.colorOf(v));
  }
  return fills;
}

/** Text on a fill: light on the ramp's dark end, dark on its light end (WCAG relative luminance). */
export function inkOn(fill: string): 'light' | 'dark' {
  const c = rgb(fill);
  const lin = (u: number) => {
    const s = u / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const y = 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  // The luminance where black and white text have the same contrast.
  return y < 0.179 ? 'light' : 'dark';
}

/** What a legend shows: the metric, its unit, where the numbers came from, and the scale. */
export interface OverlayLegendModel {
  metric: Exclude<OverlayMetric, 'kind'>;
  source: string;
  scale: OverlayScale | null;
  /** Why there are no values at all, when there are none (still computing, failed). */
  empty?: string;
}

/** One pane's overlay: the fill of each node (null: no data), its value, and the shared legend. */
export interface PaneOverlay {
  fills: ReadonlyMap<string, string | null>;
  values: ReadonlyMap<string, number>;
  legend: OverlayLegendModel;
}
