// What the app is working on, in the status bar, once it has taken over a second: the run, the |Δ|
// values, a load or rewrite in the pipeline worker; each with how far it is, about how long is
// left, and a Stop that cancels it. Never "Ready" while work goes on.

import { useEffect, useMemo, useRef, useState } from 'react';
import { useStore, type AppState } from '../store/index.ts';

export type BusyId = 'run' | 'deltas' | 'work';

export interface BusyJob {
  id: BusyId;
  label: string;
  /** 0..1 of the whole job, or null while unknown. */
  fraction: number | null;
}

/** Work in progress, from the store: what each job is doing and how far the whole job is. */
export function busyJobs(
  s: Pick<AppState, 'runStatus' | 'progress' | 'nodeDeltas' | 'work' | 'report'>,
): BusyJob[] {
  const jobs: BusyJob[] = [];
  if (s.runStatus === 'running')
    jobs.push({
      id: 'run',
      label: `Running before & after: ${s.progress?.phase ?? 'starting'}`,
      fraction: s.progress?.overall ?? null,
    });
  if (s.nodeDeltas?.status === 'computing' && s.nodeDeltas.report === s.report)
    jobs.push({ id: 'deltas', label: '|Δ| on the CPU reference', fraction: s.nodeDeltas.fraction ?? 0 });
  if (s.work) jobs.push({ id: 'work', label: s.work.label, fraction: s.work.fraction });
  return jobs;
}

/** Shown only once work has taken this long: shorter work would only flicker. */
export const BUSY_AFTER_MS = 1000;

/** Before this much time the rate is too unsure to extrapolate. */
const ETA_AFTER_MS = 3000;

/** "about 12 s left" from the time so far and the fraction done; null until the rate is known. */
export function etaText(elapsedMs: number, fraction: number | null): string | null {
  if (fraction === null || fraction <= 0 || fraction >= 1 || elapsedMs < ETA_AFTER_MS) return null;
  const left = (elapsedMs * (1 - fraction)) / fraction / 1000;
  if (left < 1) return 'under a second left';
  if (left < 90) return `about ${Math.round(left)} s left`;
  if (left < 90 * 60) return `about ${Math.round(left / 60)} min left`;
  return `about ${Math.round(left / 3600)} h left`;
}

/** A percentage that moves visibly on long work: a decimal below 10 %. */
export function percentText(fraction: number): string {
  const p = fraction * 100;
  return p < 10 ? `${(Math.floor(p * 10) / 10).toFixed(1)} %` : `${Math.floor(p)} %`;
}

export function busyText(job: BusyJob, elapsedMs: number): string {
  const pct = job.fraction === null ? '' : ` · ${percentText(job.fraction)}`;
  const eta = etaText(elapsedMs, job.fraction);
  return `${job.label}${pct}${eta ? ` · ${eta}` : ''}`;
}

/** The status bar's work line, or the notice (else "Ready") when nothing has run for a second. */
export function BusyStatus() {
  // A string selects stably (a fresh array each time would re-render without end).
  const key = useStore((s) => JSON.stringify(busyJobs(s)));
  const jobs = useMemo(() => JSON.parse(key) as BusyJob[], [key]);
  const notice = useStore((s) => s.notice);
  const cancelRun = useStore((s) => s.cancelRun);
  const dropNodeDeltas = useStore((s) => s.dropNodeDeltas);
  const setOverlayMetric = useStore((s) => s.setOverlayMetric);
  const cancelWork = useStore((s) => s.cancelWork);
  // When each job was first seen: the clock of its ETA.
  const started = useRef(new Map<BusyId, number>());
  const [now, setNow] = useState(() => Date.now());
  const busy = jobs.length > 0;
  useEffect(() => {
    if (!busy) return;
    // Often enough that the line comes within a fifth of a second of its first second.
    const t = setInterval(() => setNow(Date.now()), 200);
    return () => clearInterval(t);
  }, [busy]);
  const t = Date.now();
  for (const id of [...started.current.keys()])
    if (!jobs.some((j) => j.id === id)) started.current.delete(id);
  for (const j of jobs) if (!started.current.has(j.id)) started.current.set(j.id, t);
  const shown = jobs.filter((j) => now - started.current.get(j.id)! >= BUSY_AFTER_MS);
  const cancel: Record<BusyId, () => void> = {
    run: cancelRun,
    deltas: () => {
      dropNodeDeltas();
      setOverlayMetric('kind');
    },
    work: cancelWork,
  };
  if (shown.length === 0)
    return <span className={notice?.error ? 'error' : ''}>{notice?.text ?? 'Ready'}</span>;
  return (
    <span className="busy-status" data-testid="busy-status">
      {shown.map((j) => (
        <span key={j.id} data-job={j.id}>
          {busyText(j, now - started.current.get(j.id)!)}{' '}
          {/* "Stop", so it is not taken for the Run tab's own Cancel, which stays. */}
          <button type="button" className="small" onClick={cancel[j.id]} aria-label={`Stop: ${j.label}`}>
            Stop
          </button>
        </span>
      ))}
    </span>
  );
}

/** The tab badge of a busy tab: its job's percentage, so a hidden tab still shows it is working. */
export function BusyBadge({ id }: { id: BusyId }) {
  // -1: busy, amount unknown; undefined: not busy.
  const fraction = useStore((s) => {
    const job = busyJobs(s).find((j) => j.id === id);
    return job ? (job.fraction ?? -1) : undefined;
  });
  if (fraction === undefined) return null;
  return (
    <span data-testid={`tab-badge-${id}`}>
      <span className="dot busy" aria-label="running" />
      {fraction >= 0 && <span className="muted"> {percentText(fraction)}</span>}
    </span>
  );
}
