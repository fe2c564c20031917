// The legend of a node-data overlay, in the graph view's corner: the metric, its unit, where the
// numbers came from, the ramp with its ticks, and the no-data swatch.

import { formatMicros } from '../units.ts';
import type { Ref } from 'react';
import { formatBytes } from '../../graph/passes/flashinferLimits.ts';
import { METRIC_INFO, type OverlayLegendModel, type OverlayMetric } from './overlay.ts';

export function formatOverlayValue(metric: Exclude<OverlayMetric, 'kind'>, v: number): string {
  switch (metric) {
    case 'time':
      // Measured in µs; shown in the unit that keeps the number short.
      return v === 0 ? '0 µs' : formatMicros(v);
    case 'bytes':
      return formatBytes(Math.round(v));
    case 'delta':
      return v === 0 ? '0' : Number.isFinite(v) ? v.toExponential(2) : 'NaN on one side';
  }
}

/** Where `v` sits along the ramp, 0..1. */
export function rampPosition(scale: NonNullable<OverlayLegendModel['scale']>, v: number): number {
  const f = scale.log ? Math.log10 : (x: number) => x;
  const span = f(scale.max) - f(scale.min);
  return span > 0 ? (f(v) - f(scale.min)) / span : 0;
}

/** The ends, and ticks between them spaced so their labels (~45 px on a ~194 px ramp) never touch. */
export function shownTicks(scale: NonNullable<OverlayLegendModel['scale']>): number[] {
  const kept: number[] = [];
  for (const v of scale.ticks.slice(1, -1)) {
    const at = rampPosition(scale, v);
    const prev = kept.length ? rampPosition(scale, kept[kept.length - 1]) : 0;
    if (at >= 0.25 && at <= 0.7 && at - prev >= 0.25) kept.push(v);
  }
  return [scale.min, ...kept, ...(scale.max !== scale.min ? [scale.max] : [])];
}

export function OverlayLegend({
  legend,
  ref,
}: {
  legend: OverlayLegendModel;
  /** Measured by the view, which keeps the legend's band clear of the nodes it places. */
  ref?: Ref<HTMLDivElement>;
}) {
  const { metric, scale } = legend;
  const info = METRIC_INFO[metric];
  const stops = scale
    ? Array.from({ length: 11 }, (_, i) => {
        const t = i / 10;
        const v = scale.log
          ? 10 ** (Math.log10(scale.min) + t * (Math.log10(scale.max) - Math.log10(scale.min)))
          : scale.min + t * (scale.max - scale.min);
        return `${scale.colorOf(v)} ${t * 100}%`;
      })
    : [];
  return (
    <div
      ref={ref}
      className="fl-legend"
      data-testid="overlay-legend"
      data-metric={metric}
      role="group"
      aria-label="Legend"
    >
      <div className="fl-legend-title">
        <b data-testid="legend-metric">{info.label}</b> <span data-testid="legend-unit">({info.unit})</span>
      </div>
      {scale ? (
        <>
          <div
            className="fl-legend-ramp"
            style={{ background: `linear-gradient(to right, ${stops.join(', ')})` }}
          />
          <div className="fl-legend-ticks">
            {shownTicks(scale).map((v, i, all) => (
              <span
                key={i}
                className="fl-legend-tick"
                data-testid={i === 0 ? 'legend-min' : i === all.length - 1 ? 'legend-max' : undefined}
                data-color={scale.colorOf(v)}
                style={{ left: `${rampPosition(scale, v) * 100}%` }}
              >
                {formatOverlayValue(metric, v)}
              </span>
            ))}
          </div>
        </>
      ) : (
        <div className="fl-legend-empty">{legend.empty ?? 'no values'}</div>
      )}
      <div className="fl-legend-source">
        <span data-testid="legend-source">{legend.source}</span>
        {scale && (
          <span>
            {' · '}
            {scale.log ? 'log scale' : 'linear scale'}
            {scale.zeroAtFloor ? ', 0 at the low end' : ''}
          </span>
        )}
        {' · '}
        <span className="fl-legend-nodata" data-testid="legend-no-data">
          <i className="fl-legend-none" /> no data
        </span>
      </div>
    </div>
  );
}
