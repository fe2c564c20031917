// Per-rank timeline of a before/after run: one row per (graph, rank), kernels and transfers as
// bars on a shared time axis. Wheel or drag zooms and pans the time axis (d3-zoom); hovering a
// bar names the node, its op and its duration.

import { formatMicros } from '../units.ts';
import { useEffect, useMemo, useRef, useState } from 'react';
import * as d3 from 'd3';
import { useStore } from '../store/index.ts';

/** The part of a runtime trace the timeline draws. */
export interface TimelineEvent {
  rank: number;
  node: string;
  op: string;
  kind: string;
  start_us: number;
  dur_us: number;
}
export interface TimelineTraces {
  before: { events: TimelineEvent[] };
  after: { events: TimelineEvent[] };
}

interface Row {
  key: string;
  label: string;
  events: TimelineEvent[];
}

/** Colour classes for the ops the fusion is about; everything else is coloured by event kind. */
function opClass(op: string): string {
  if (op.includes('fused_allreduce_norm')) return ' op-fused';
  if (op.includes('rms_norm')) return ' op-norm';
  return '';
}

function rowsOf(traces: TimelineTraces): Row[] {
  const rows: Row[] = [];
  for (const side of ['before', 'after'] as const) {
    const ranks = [...new Set(traces[side].events.map((e) => e.rank))].sort((a, b) => a - b);
    for (const r of ranks) {
      rows.push({
        key: `${side}-${r}`,
        label: `${side} · rank ${r}`,
        events: traces[side].events.filter((e) => e.rank === r),
      });
    }
  }
  return rows;
}

/** Axis labels in the unit that fits the span (units.ts). */
export { formatMicros };

const LEGEND: { cls: string; label: string }[] = [
  { cls: 'kind-kernel', label: 'kernel' },
  { cls: 'kind-transfer', label: 'transfer (host staging)' },
  { cls: 'op-fused', label: 'fused all-reduce + norm' },
  { cls: 'op-norm', label: 'RMSNorm' },
  { cls: 'kind-fed', label: 'fed input' },
];

const ROW_H = 22;
const LABEL_W = 104;
const AXIS_H = 20;

export function Timeline({ traces }: { traces: TimelineTraces }) {
  const host = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  const [width, setWidth] = useState(800);
  const [hover, setHover] = useState<TimelineEvent | null>(null);
  const selected = useStore((s) => s.selected);
  const select = useStore((s) => s.select);
  const rows = useMemo(() => rowsOf(traces), [traces]);
  const end = useMemo(
    () => Math.max(1, ...rows.flatMap((r) => r.events.map((e) => e.start_us + e.dur_us))),
    [rows],
  );
  const height = AXIS_H + rows.length * ROW_H + 4;

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setWidth(Math.max(200, Math.floor(el.clientWidth))));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    const svg = d3.select(svgRef.current!);
    svg.selectAll('*').remove();
    const x0 = d3
      .scaleLinear()
      .domain([0, end])
      .range([LABEL_W, width - 8]);
    const clipId = 'timeline-clip';
    svg
      .append('clipPath')
      .attr('id', clipId)
      .append('rect')
      .attr('x', LABEL_W)
      .attr('y', 0)
      .attr('width', Math.max(0, width - 8 - LABEL_W))
      .attr('height', height);
    const axisG = svg
      .append('g')
      .attr('class', 'axis')
      .attr('transform', `translate(0, ${AXIS_H - 2})`);
    const body = svg.append('g').attr('clip-path', `url(#${clipId})`);
    const labels = svg.append('g').attr('class', 'row-labels');

    rows.forEach((row, i) => {
      const y = AXIS_H + i * ROW_H;
      labels
        .append('text')
        .attr('x', 6)
        .attr('y', y + ROW_H / 2 + 4)
        .text(row.label);
      body
        .append('rect')
        .attr('class', `lane ${i % 2 ? 'odd' : 'even'}`)
        .attr('x', LABEL_W)
        .attr('y', y)
        .attr('width', width)
        .attr('height', ROW_H);
    });

    const bars = body
      .selectAll<SVGRectElement, { e: TimelineEvent; row: number }>('rect.bar')
      .data(rows.flatMap((row, i) => row.events.map((e) => ({ e, row: i }))))
      .join('rect')
      .attr('class', (d) => `bar kind-${d.e.kind}${opClass(d.e.op)}`)
      .attr('y', (d) => AXIS_H + d.row * ROW_H + 3)
      .attr('height', ROW_H - 6)
      .attr('data-node', (d) => d.e.node)
      .on('mouseenter', (_, d) => setHover(d.e))
      .on('mouseleave', () => setHover(null))
      .on('click', (_, d) => select(d.e.node, d.row < rows.length / 2 ? 'before' : 'after'));
    bars.append('title').text((d) => `${d.e.node} (${d.e.op}) ${formatMicros(d.e.dur_us)}`);

    const draw = (x: d3.ScaleLinear<number, number>) => {
      bars
        .attr('x', (d) => x(d.e.start_us))
        .attr('width', (d) => Math.max(1, x(d.e.start_us + d.e.dur_us) - x(d.e.start_us)));
      axisG.call(
        d3
          .axisTop(x)
          .ticks(Math.max(2, Math.floor(width / 110)))
          .tickFormat((v) => formatMicros(Number(v))),
      );
    };
    draw(x0);

    const zoom = d3
      .zoom<SVGSVGElement, unknown>()
      .scaleExtent([1, 1000])
      .translateExtent([
        [LABEL_W, 0],
        [width - 8, height],
      ])
      .extent([
        [LABEL_W, 0],
        [width - 8, height],
      ])
      .on('zoom', (ev: d3.D3ZoomEvent<SVGSVGElement, unknown>) => draw(ev.transform.rescaleX(x0)));
    svg.call(zoom);
    return () => {
      svg.on('.zoom', null);
    };
  }, [rows, end, width, height, select]);

  useEffect(() => {
    d3.select(svgRef.current!)
      .selectAll<SVGRectElement, unknown>('rect.bar')
      .classed('selected', function () {
        return this.getAttribute('data-node') === selected;
      });
  }, [selected, rows, width]);

  return (
    <div className="timeline" ref={host}>
      <svg
        ref={svgRef}
        width={width}
        height={height}
        role="img"
        aria-label={`Per-rank timeline, ${rows.length} rows, ${formatMicros(end)}`}
        data-testid="timeline"
      />
      <div className="timeline-legend" aria-label="Legend">
        {LEGEND.map((l) => (
          <span key={l.cls}>
            <i className={`swatch ${l.cls}`} />
            {l.label}
          </span>
        ))}
      </div>
      <div className="timeline-hover" aria-live="polite">
        {hover ? (
          <>
            <span className="mono">{hover.node}</span> · {hover.op} · {hover.kind} ·{' '}
            {formatMicros(hover.dur_us)} at {formatMicros(hover.start_us)}
          </>
        ) : (
          <span className="muted">Wheel to zoom, drag to pan; click a bar to select its node.</span>
        )}
      </div>
    </div>
  );
}
