import { useEffect } from 'react';
import { useStore } from '../store/index.ts';
import { TOUR } from './steps.ts';

export function Tour() {
  const step = useStore((s) => s.tourStep);
  const setTourStep = useStore((s) => s.setTourStep);
  // Steps whose text quotes the run re-read it as the run ends.
  const body = useStore((s) =>
    step === null
      ? ''
      : typeof TOUR[step].body === 'function'
        ? (TOUR[step].body as (st: typeof s) => string)(s)
        : (TOUR[step].body as string),
  );

  useEffect(() => {
    if (step !== null) void TOUR[step].enter();
  }, [step]);

  useEffect(() => {
    if (step === null) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') setTourStep(null);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [step, setTourStep]);

  if (step === null) return null;
  const s = TOUR[step];
  const last = step === TOUR.length - 1;
  return (
    <div
      className="tour-card"
      role="dialog"
      aria-modal="false"
      aria-labelledby="tour-title"
      aria-describedby="tour-body"
    >
      <div className="tour-progress">
        Step {step + 1} of {TOUR.length}
      </div>
      <h2 id="tour-title">{s.title}</h2>
      <p id="tour-body">{body}</p>
      <div className="tour-actions">
        <button type="button" onClick={() => setTourStep(null)}>
          Close tour
        </button>
        <span className="spacer" />
        <button type="button" onClick={() => setTourStep(step - 1)} disabled={step === 0}>
          Back
        </button>
        <button
          type="button"
          className="primary"
          autoFocus
          onClick={() => setTourStep(last ? null : step + 1)}
        >
          {last ? 'Finish' : 'Next'}
        </button>
      </div>
    </div>
  );
}
