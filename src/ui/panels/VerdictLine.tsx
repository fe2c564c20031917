// The verdict of the last run, on top of the Run and Results tabs, and whether it still describes
// the graph, steps and gates on screen.

import { useMemo } from 'react';
import { useStore } from '../store/index.ts';
import { reportIsStale } from '../store/runSlice.ts';
import { nodesReadingFed, verdictOf } from './verdict.ts';

export function VerdictLine() {
  const report = useStore((s) => s.report);
  const stale = useStore(reportIsStale);
  const before = useStore((s) => s.reportFor?.base);
  const after = useStore((s) => s.stages[s.cursor]?.graph);
  const verdict = useMemo(() => {
    if (!report) return null;
    const uncomputed = new Set([
      ...(before ? nodesReadingFed(before, report.before.fed) : []),
      ...(after && !stale ? nodesReadingFed(after, report.after.fed) : []),
    ]);
    return verdictOf(report, uncomputed);
  }, [report, before, after, stale]);
  if (!report || !verdict) return null;
  const tone = verdict.level === 'not equivalent' ? 'error' : verdict.level === 'proven' ? 'ok' : 'warn';
  return (
    <>
      <p
        className={`verdict ${stale ? 'stale' : tone}`}
        role="status"
        data-testid="run-verdict"
        data-level={verdict.level}
        data-stale={stale ? 'true' : 'false'}
      >
        {stale && <b>stale — the steps or gates changed since this run; run again · </b>}
        {verdict.text}
      </p>
      {verdict.fusedChange && (
        <p className="verdict muted" data-testid="fused-change">
          {verdict.fusedChange}
        </p>
      )}
    </>
  );
}
