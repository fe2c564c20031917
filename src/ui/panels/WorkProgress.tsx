// Loading or rewriting in the pipeline worker: what it is doing, how far, and a Cancel that stops
// it. The graph shown so far stays on screen underneath.

import { useStore } from '../store/index.ts';

export function WorkProgress() {
  const work = useStore((s) => s.work);
  const cancel = useStore((s) => s.cancelWork);
  if (!work) return null;
  return (
    <div
      className="work-progress progress"
      role="status"
      aria-label="Work in progress"
      data-testid="work-progress"
    >
      <span>{work.label}…</span>
      <progress max={1} value={work.fraction ?? undefined} aria-label={work.label} />
      <button type="button" className="small" onClick={cancel}>
        Cancel
      </button>
    </div>
  );
}
