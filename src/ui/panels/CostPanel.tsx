// Predicted time of the graph before and after the rewrite on a hardware profile, next to what
// the last run measured.

import { useMemo } from 'react';
import { useStore } from '../store/index.ts';

interface Totals { before: number; after: number }

function measuredTotals(report: NonNullable<ReturnType<typeof useStore.getState>['report']>): Totals {
  // Critical path per side: the slowest rank's last event end.
  const span = (events: { rank: number; start_us: number; dur_us: number }[]) => {
    const end = new Map<number, number>();
    for (const e of events) end.set(e.rank, Math.max(end.get(e.rank) ?? 0, e.start_us + e.dur_us));
    return Math.max(0, ...end.values());
  };
  return { before: span(report.before.events), after: span(report.after.events) };
}

function Bars({ title, totals, unit, testId }: { title: string; totals: Totals; unit: string; testId: string }) {
  const max = Math.max(totals.before, totals.after, 1e-9);
  const delta = totals.before > 0 ? (totals.after - totals.before) / totals.before : 0;
  return (
    <div className="cost-block" data-testid={testId}>
      <h3>{title}</h3>
      <div className="cost-bars">
        <span>before</span>
        <div className="cost-bar"><span style={{ width: `${(100 * totals.before) / max}%` }} /></div>
        <span className="num mono">{totals.before.toFixed(1)} {unit}</span>
        <span>after</span>
        <div className="cost-bar after"><span style={{ width: `${(100 * totals.after) / max}%` }} /></div>
        <span className="num mono">{totals.after.toFixed(1)} {unit}</span>
      </div>
      <p className={delta < 0 ? 'ok' : 'muted'}>{delta === 0 ? 'no change' : `${(delta * 100).toFixed(2)} %`}</p>
    </div>
  );
}

export function CostPanel() {
  const report = useStore((s) => s.report);
  const measured = useMemo(() => (report ? measuredTotals(report) : null), [report]);
  return (
    <div className="cost-panel">
      <div className="cost-side">
        {measured
          ? <Bars title={`Measured (${report!.before.backend}, ${report!.before.ranks} ranks, ${report!.before.device})`} totals={measured} unit="µs" testId="cost-measured" />
          : <p className="muted">No run yet: measured time appears after Run before &amp; after.</p>}
      </div>
    </div>
  );
}
