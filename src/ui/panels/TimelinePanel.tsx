// The timeline tab: the last run's traces, or a trace file recorded elsewhere (the CLI's
// `fusionlab run --trace`, the agent on a real GPU), so runs from other machines can be read here.

import { useMemo, useState } from 'react';
import type { Graph } from '../../graph/ir.ts';
import { calledOp, callFormOf } from '../../graph/call.ts';
import { useStore } from '../store/index.ts';
import { FilePicker } from './FilePicker.tsx';
import { formatMicros, Timeline, type TimelineEvent, type TimelineTraces } from './Timeline.tsx';
import type { Timing } from '../../runtime/timing.ts';
import { runCaption } from './runCaption.ts';

const EVENT_FIELDS: [keyof TimelineEvent, 'number' | 'string'][] = [
  ['rank', 'number'],
  ['node', 'string'],
  ['op', 'string'],
  ['kind', 'string'],
  ['start_us', 'number'],
  ['dur_us', 'number'],
];

/** Checks a trace file's shape; errors name the side, the event index and the field. */
export { resolveWrappedOps };

export function parseTraceFile(text: string, name: string): TimelineTraces {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw new Error(`${name}: not JSON (${(e as Error).message})`);
  }
  const root = o as Record<string, { events?: unknown }>;
  for (const side of ['before', 'after'] as const) {
    const events = root?.[side]?.events;
    if (!Array.isArray(events))
      throw new Error(
        `${name}: ${side}.events is missing; expected {before: {events: [...]}, after: {events: [...]}}`,
      );
    events.forEach((ev, i) => {
      for (const [field, type] of EVENT_FIELDS) {
        if (typeof (ev as Record<string, unknown>)?.[field] !== type)
          throw new Error(`${name}: ${side}.events[${i}].${field} is not a ${type}`);
      }
    });
  }
  return root as unknown as TimelineTraces;
}

/** auto_functionalized events name the op they wrap, looked up in the graph of their side. */
function resolveWrappedOps(
  traces: TimelineTraces,
  before: Graph | undefined,
  after: Graph | undefined,
): TimelineTraces {
  const resolve = (events: TimelineEvent[], g: Graph | undefined) => {
    if (!g) return events;
    const byName = new Map(g.nodes.map((n) => [n.name, n]));
    return events.map((e) => {
      const n = callFormOf(e.op) !== 'plain' ? byName.get(e.node) : undefined;
      return n ? { ...e, op: calledOp(n) } : e;
    });
  };
  return {
    before: { events: resolve(traces.before.events, before) },
    after: { events: resolve(traces.after.events, after) },
  };
}

/**
 * Which run the timeline shows: of the last run, the timed run whose busiest rank took the median
 * time on each side (the Results and Cost model numbers are medians of the same runs), not the
 * comparison's first run, which compiles kernels and is never timed.
 */
export function shownRun(
  timing: Timing,
  caption: string,
): { traces: TimelineTraces; label: string; fed: { before: number; after: number } } | null {
  const b = timing.before.medianRun,
    a = timing.after.medianRun;
  if (!b || !a) return null;
  const fedUs = (events: readonly TimelineEvent[]) =>
    events.filter((e) => e.kind === 'fed').reduce((t, e) => t + e.dur_us, 0);
  const which = (i: number) => `timed run ${i + 1} of ${timing.runs}`;
  return {
    traces: { before: { events: b.trace.events }, after: { events: a.trace.events } },
    label: `${caption} · showing the median run of each side (before: ${which(b.index)}, after: ${which(a.index)})`,
    fed: { before: fedUs(b.trace.events), after: fedUs(a.trace.events) },
  };
}

export function TimelinePanel() {
  const report = useStore((s) => s.report);
  const timing = useStore((s) => s.timing);
  const ranSettings = useStore((s) => s.ranSettings);
  const runNumber = useStore((s) => s.runNumber);
  const stages = useStore((s) => s.stages);
  const cursor = useStore((s) => s.cursor);
  const [loaded, setLoaded] = useState<{ name: string; traces: TimelineTraces } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = useMemo(
    () =>
      report && timing && ranSettings
        ? shownRun(timing, runCaption({ number: runNumber, settings: ranSettings, timing }))
        : null,
    [report, timing, ranSettings, runNumber],
  );
  const raw = useMemo(
    () => loaded?.traces ?? run?.traces ?? (report ? { before: report.before, after: report.after } : null),
    [loaded, run, report],
  );
  const before = stages[0]?.graph;
  const after = stages[cursor]?.graph;
  const traces = useMemo(() => (raw ? resolveWrappedOps(raw, before, after) : null), [raw, before, after]);
  return (
    <div className="timeline-panel">
      <div className="source-toolbar">
        <span className="muted" data-testid="timeline-run">
          {loaded ? `trace file ${loaded.name}` : (run?.label ?? (report ? 'last run' : 'no run yet'))}
        </span>
        <span className="spacer" />
        {loaded && (
          <button type="button" onClick={() => setLoaded(null)}>
            Show last run
          </button>
        )}
        <FilePicker
          label="Open trace…"
          inputLabel="Trace file"
          accept=".json"
          onFiles={async ([f]) => {
            try {
              setLoaded({ name: f.name, traces: parseTraceFile(await f.text(), f.name) });
              setError(null);
            } catch (err) {
              setError((err as Error).message);
            }
          }}
        />
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {!loaded && run && (run.fed.before > 0 || run.fed.after > 0) && (
        <p className="muted pad" data-testid="timeline-fed">
          Fed inputs (seeded values for ops without a kernel: the fed input bars) take{' '}
          {formatMicros(run.fed.before)} before and {formatMicros(run.fed.after)} after; the measured times
          leave them out.
        </p>
      )}
      {traces ? (
        <Timeline traces={traces} />
      ) : (
        <p className="muted pad">Run before &amp; after, or open a trace file.</p>
      )}
    </div>
  );
}
