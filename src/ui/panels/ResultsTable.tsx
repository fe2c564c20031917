// The comparison of a before/after run: per output the error and bitwise equality, the exact
// check of a fusing rewrite (the after-graph with its fused norms rounded as the unfused pair,
// bitwise against before), then per node the measured time and bytes on each side (summed over
// ranks), slowest first.

import { useMemo } from 'react';
import { useStore } from '../store/index.ts';
import { formatBytes } from './Inspector.tsx';
import { innerOp } from './nodeOp.ts';
import type { ExactCheck } from '../../runtime/index.ts';
import { outputStatus, type OutputStatus } from './verdict.ts';
import { VerdictLine } from './VerdictLine.tsx';

interface NodeTotals { node: string; op: string; beforeUs: number; afterUs: number; beforeBytes: number; afterBytes: number }

interface TraceEventLike { node: string; op: string; kind: string; dur_us: number; bytesRead: number; bytesWritten: number }

function totals(before: readonly TraceEventLike[], after: readonly TraceEventLike[]): NodeTotals[] {
  const m = new Map<string, NodeTotals>();
  const row = (e: TraceEventLike) => {
    let r = m.get(e.node);
    if (!r) m.set(e.node, (r = { node: e.node, op: e.op, beforeUs: 0, afterUs: 0, beforeBytes: 0, afterBytes: 0 }));
    return r;
  };
  // Fed inputs (seeded data, no kernel) are not work the graph does.
  before = before.filter((e) => e.kind !== 'fed');
  after = after.filter((e) => e.kind !== 'fed');
  for (const e of before) { const r = row(e); r.beforeUs += e.dur_us; r.beforeBytes += e.bytesRead + e.bytesWritten; }
  for (const e of after) { const r = row(e); r.afterUs += e.dur_us; r.afterBytes += e.bytesRead + e.bytesWritten; }
  return [...m.values()].sort((a, b) => Math.max(b.beforeUs, b.afterUs) - Math.max(a.beforeUs, a.afterUs));
}

/** One line: the exact check's verdict, what it compared, and the outputs that differ. */
function ExactCheckLine({ exact }: { exact: ExactCheck }) {
  const failed = exact.outputs?.filter((o) => !o.pass).map((o) => o.name) ?? [];
  const verdict = exact.skipped ? 'skipped' : exact.pass ? 'pass' : 'FAIL';
  return (
    <p className="pad" data-testid="exact-check">
      <span className={exact.skipped ? 'muted' : exact.pass ? 'ok' : 'error'}>{verdict}</span>{' '}
      {exact.note}{failed.length ? `: ${failed.join(', ')}` : ''}
    </p>
  );
}

const STATUS_LABEL: Record<OutputStatus, string> = { pass: 'pass', fail: 'FAIL', 'not gated': 'not gated' };
const STATUS_CLASS: Record<OutputStatus, string> = { pass: 'ok', fail: 'error', 'not gated': 'muted' };

const us = (v: number) => (v === 0 ? '—' : v < 10 ? v.toFixed(2) : v.toFixed(1));

export function ResultsTable() {
  const report = useStore((s) => s.report);
  const select = useStore((s) => s.select);
  const nodes = useMemo(() => (report ? totals(report.before.events, report.after.events) : []), [report]);
  const before = useStore((s) => s.stages[0]?.graph);
  // Trace nodes are graph nodes; auto_functionalized ones read better as the op they wrap.
  const after = useStore((s) => s.stages[s.cursor]?.graph);
  const opName = useMemo(() => {
    const m = new Map<string, string>();
    for (const g of [before, after]) for (const n of g?.nodes ?? []) m.set(n.name, innerOp(n));
    return m;
  }, [before, after]);
  if (!report) return <p className="muted pad">No run yet. Run before &amp; after in the Run tab.</p>;
  return (
    <div className="results">
      <div className="results-col">
      <VerdictLine />
      {report.exact && <ExactCheckLine exact={report.exact} />}
      <table className="grid" aria-label="Outputs">
        <thead>
          <tr><th>output</th><th>max abs</th><th>max rel</th><th>ulps</th><th>allowed</th><th>bitwise</th><th>verdict</th></tr>
        </thead>
        <tbody>
          {report.outputs.map((o) => (
            <tr key={o.name}>
              <td className="mono">{o.name}</td>
              <td className="num">{o.maxAbs.toExponential(2)}</td>
              <td className="num">{o.maxRel.toExponential(2)}</td>
              <td className="num">{o.ulps}</td>
              <td className="clip" title={o.tolerance}>{o.tolerance}</td>
              <td>{o.bitwiseEqual ? 'equal' : 'differs'}</td>
              <td className={STATUS_CLASS[outputStatus(o)]}>{STATUS_LABEL[outputStatus(o)]}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </div>
      <div className="results-col">
      <table className="grid" aria-label="Per-node time and bytes">
        <thead>
          <tr><th>node</th><th>op</th><th>before µs</th><th>after µs</th><th>before bytes</th><th>after bytes</th></tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <tr key={n.node} onClick={() => select(n.node, n.afterUs > 0 ? 'after' : 'before')}>
              <td className="mono">{n.node}</td>
              <td className="mono dim clip" title={opName.get(n.node) ?? n.op}>{opName.get(n.node) ?? n.op}</td>
              <td className="num">{us(n.beforeUs)}</td>
              <td className="num">{us(n.afterUs)}</td>
              <td className="num">{n.beforeBytes ? formatBytes(n.beforeBytes) : '—'}</td>
              <td className="num">{n.afterBytes ? formatBytes(n.afterBytes) : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </div>
    </div>
  );
}
