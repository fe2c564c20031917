// The legend of a node-data overlay, in the graph view's corner: the metric, its unit, where the
// numbers came from, the ramp with its ticks, and the no-data swatch.

import { formatBytes } from '../../graph/passes/flashinferLimits.ts';
import { METRIC_INFO, type OverlayLegendModel, type OverlayMetric } from './overlay.ts';

export function formatOverlayValue(metric: Exclude<OverlayMetric, 'kind'>, v: number): string {
  switch (metric) {
    case 'time':
      return `${v < 10 ? v.toFixed(2) : v.toFixed(1)} µs`;
    case 'bytes':
      return formatBytes(Math.round(v));
    case 'delta':
      return v === 0 ? '0' : Number.isFinite(v) ? v.toExponential(2) : 'NaN on one side';
  }
}

export function OverlayLegend({ legend }: { legend: OverlayLegendModel }) {
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
      className="fl-legend"
      data-testid="overlay-legend"
      data-metric={metric}
      role="group"
      aria-label="Legend"
    >
      <div className="fl-legend-title">
        <b data-testid="legend-metric">{info.label}</b> <span data-testid="legend-unit">({info.unit})</span>
      </div>
      <div className="fl-legend-source" data-testid="legend-source">
        {legend.source}
      </div>
      {scale ? (
        <>
          <div
            className="fl-legend-ramp"
            style={{ background: `linear-gradient(to right, ${stops.join(', ')})` }}
          />
          <div className="fl-legend-ticks">
            {scale.ticks.map((v, i) => (
              <span
                key={i}
                className="fl-legend-tick"
                data-testid={i === 0 ? 'legend-min' : i === scale.ticks.length - 1 ? 'legend-max' : undefined}
                data-color={scale.colorOf(v)}
              >
                <i style={{ background: scale.colorOf(v) }} />
                {formatOverlayValue(metric, v)}
              </span>
            ))}
          </div>
          <div className="fl-legend-scale">
            {scale.log ? 'log scale' : 'linear scale'}
            {scale.zeroAtFloor ? ' · 0 shown as the low end' : ''}
          </div>
        </>
      ) : (
        <div className="fl-legend-empty">{legend.empty ?? 'no values'}</div>
      )}
      <div className="fl-legend-tick" data-testid="legend-no-data">
        <i className="fl-legend-none" /> no data
      </div>
    </div>
  );
}
