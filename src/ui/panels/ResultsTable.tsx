// The comparison of a before/after run: per output the error and bitwise equality, the exact
// check of a fusing rewrite (the after-graph with its fused norms rounded as the unfused pair,
// bitwise against before), then per node and rank the measured time (median and spread of the
// timed runs, see runtime/timing.ts) and bytes on each side, slowest first.

import { useMemo } from 'react';
import { useStore } from '../store/index.ts';
import { formatBytes } from './Inspector.tsx';
import { calledOp } from '../../graph/call.ts';
import type { ExactCheck } from '../../runtime/index.ts';
import type { NodeTiming, SideTiming, Timing } from '../../runtime/timing.ts';
import { outputStatus, type OutputStatus } from './verdict.ts';
import { VerdictLine } from './VerdictLine.tsx';
import { runCaption } from './runCaption.ts';

/** One row per node and rank: the timed runs' median and spread on each side. */
interface NodeRow {
  node: string;
  op: string;
  rank: number;
  before?: NodeTiming;
  after?: NodeTiming;
}

function rowsOf(timing: Timing): NodeRow[] {
  const m = new Map<string, NodeRow>();
  const row = (t: NodeTiming) => {
    const key = `${t.rank}\u0000${t.node}`;
    let r = m.get(key);
    if (!r) m.set(key, (r = { node: t.node, op: t.op, rank: t.rank }));
    return r;
  };
  for (const t of timing.before.nodes) row(t).before = t;
  for (const t of timing.after.nodes) row(t).after = t;
  const slowest = (r: NodeRow) => Math.max(r.before?.us.median ?? 0, r.after?.us.median ?? 0);
  return [...m.values()].sort((a, b) => slowest(b) - slowest(a) || a.rank - b.rank);
}

/** Rows shown at once: a 300-layer graph has tens of thousands (node, rank) pairs. */
const ROW_LIMIT = 400;

/** One line: the exact check's verdict, what it compared, and the outputs that differ. */
function ExactCheckLine({ exact }: { exact: ExactCheck }) {
  const failed = exact.outputs?.filter((o) => !o.pass).map((o) => o.name) ?? [];
  const verdict = exact.skipped ? 'skipped' : exact.pass ? 'pass' : 'FAIL';
  return (
    <p className="pad" data-testid="exact-check">
      <span className={exact.skipped ? 'muted' : exact.pass ? 'ok' : 'error'}>{verdict}</span> {exact.note}
      {failed.length ? `: ${failed.join(', ')}` : ''}
    </p>
  );
}

export const CLOCK: Record<SideTiming['clock'], string> = {
  'timestamp-query': 'GPU timestamp queries',
  'cuda-event': 'CUDA events',
  host: 'host timers (include dispatch and staging)',
  mixed: 'GPU timestamps where the adapter has them, host timers elsewhere',
  none: 'no timed events',
};

const STATUS_LABEL: Record<OutputStatus, string> = { pass: 'pass', fail: 'FAIL', 'not gated': 'not gated' };
const STATUS_CLASS: Record<OutputStatus, string> = { pass: 'ok', fail: 'error', 'not gated': 'muted' };

const us = (v: number) => (v === 0 ? '—' : v < 10 ? v.toFixed(2) : v.toFixed(1));
/** Median with its spread over the timed runs. */
function Time({ t }: { t?: NodeTiming }) {
  if (!t) return <>—</>;
  return (
    <span title={`min ${us(t.us.min)} · max ${us(t.us.max)} µs`}>
      {us(t.us.median)}
      <span className="dim"> {t.us.max > t.us.min ? `±${us((t.us.max - t.us.min) / 2)}` : ''}</span>
    </span>
  );
}

export function ResultsTable() {
  const report = useStore((s) => s.report);
  const select = useStore((s) => s.select);
  const timing = useStore((s) => s.timing);
  const ranSettings = useStore((s) => s.ranSettings);
  const runNumber = useStore((s) => s.runNumber);
  const nodes = useMemo(() => (timing ? rowsOf(timing) : []), [timing]);
  const before = useStore((s) => s.stages[0]?.graph);
  // Trace nodes are graph nodes; auto_functionalized ones read better as the op they wrap.
  const after = useStore((s) => s.stages[s.cursor]?.graph);
  const opName = useMemo(() => {
    const m = new Map<string, string>();
    for (const g of [before, after]) for (const n of g?.nodes ?? []) m.set(n.name, calledOp(n));
    return m;
  }, [before, after]);
  if (!report) return <p className="muted pad">No run yet. Run before &amp; after in the Run tab.</p>;
  return (
    <div className="results">
      {/* Focusable, so the keyboard can scroll a long table. */}
      <div className="results-col" tabIndex={0} role="region" aria-label="Outputs and verdict">
        <VerdictLine />
        {report.exact && <ExactCheckLine exact={report.exact} />}
        <table className="grid" aria-label="Outputs">
          <thead>
            <tr>
              <th>output</th>
              <th>max abs</th>
              <th>max rel</th>
              <th>ulps</th>
              <th>allowed</th>
              <th>bitwise</th>
              <th>verdict</th>
            </tr>
          </thead>
          <tbody>
            {report.outputs.map((o) => (
              <tr key={o.name}>
                <td className="mono">{o.name}</td>
                <td className="num">{o.maxAbs.toExponential(2)}</td>
                <td className="num">{o.maxRel.toExponential(2)}</td>
                <td className="num">{o.ulps}</td>
                <td className="clip" title={o.tolerance}>
                  {o.tolerance}
                </td>
                <td>{o.bitwiseEqual ? 'equal' : 'differs'}</td>
                <td className={STATUS_CLASS[outputStatus(o)]}>{STATUS_LABEL[outputStatus(o)]}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="results-col" tabIndex={0} role="region" aria-label="Per-node times">
        {timing && (
          <p className="muted pad" data-testid="timing-method">
            {ranSettings && `${runCaption({ number: runNumber, settings: ranSettings, timing: null })} · `}
            per node and rank: median of {timing.runs} timed run{timing.runs > 1 ? 's' : ''} after a warm-up
            run (not timed) · ± half the min–max spread · {CLOCK[timing.before.clock]}
          </p>
        )}
        <table className="grid" aria-label="Per-node time and bytes">
          <thead>
            <tr>
              <th>node</th>
              <th>op</th>
              <th className="num">rank</th>
              <th>before µs</th>
              <th>after µs</th>
              <th>before bytes</th>
              <th>after bytes</th>
            </tr>
          </thead>
          <tbody>
            {nodes.slice(0, ROW_LIMIT).map((n) => (
              <tr key={`${n.rank}:${n.node}`} onClick={() => select(n.node, n.after ? 'after' : 'before')}>
                <td className="mono">{n.node}</td>
                <td className="mono dim clip" title={opName.get(n.node) ?? n.op}>
                  {opName.get(n.node) ?? n.op}
                </td>
                <td className="num">{n.rank}</td>
                <td className="num">
                  <Time t={n.before} />
                </td>
                <td className="num">
                  <Time t={n.after} />
                </td>
                <td className="num">{n.before?.bytes ? formatBytes(n.before.bytes) : '—'}</td>
                <td className="num">{n.after?.bytes ? formatBytes(n.after.bytes) : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {nodes.length > ROW_LIMIT && (
          <p className="muted pad">{nodes.length - ROW_LIMIT} faster (node, rank) rows not shown.</p>
        )}
      </div>
    </div>
  );
}
