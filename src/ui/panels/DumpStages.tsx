// The stages of a loaded dump folder, in compile order; the scrubber walks them and the rewrite
// steps taken so far replay on the stage shown. Files that are not graphs are listed with the reason.
// A TORCH_TRACE log's compiles are listed above them: the stages are the chosen compile's graphs.

import { useStore } from '../store/index.ts';
import { TraceFrames } from './TraceFrames.tsx';

export function DumpStages() {
  return (
    <>
      <TraceFrames />
      <DumpStageScrubber />
    </>
  );
}

function DumpStageScrubber() {
  const dump = useStore((s) => s.dump);
  const showDumpStage = useStore((s) => s.showDumpStage);
  if (!dump) return null;
  const stage = dump.stages[dump.shown]!;
  return (
    <div className="scrubber dump-stages" data-testid="dump-stages">
      <label htmlFor="dump-stage-scrubber">
        Dump stage {dump.shown + 1} / {dump.stages.length}: <span className="mono">{stage.name}</span>
      </label>
      <input
        id="dump-stage-scrubber"
        type="range"
        min={0}
        max={dump.stages.length - 1}
        value={dump.shown}
        onChange={(e) => void showDumpStage(Number(e.target.value))}
        disabled={dump.stages.length < 2}
        aria-label="Dump stage"
      />
      <ol className="dump-stage-list" aria-label="Dump stages">
        {dump.stages.map((st, i) => (
          <li key={st.path}>
            <button
              type="button"
              className="linklike"
              aria-current={i === dump.shown ? 'step' : undefined}
              onClick={() => void showDumpStage(i)}
              title={st.path}
            >
              {st.name}
            </button>
          </li>
        ))}
      </ol>
      {dump.skipped.length > 0 && (
        <details>
          <summary>
            {dump.skipped.length} file{dump.skipped.length > 1 ? 's' : ''} skipped
          </summary>
          <ul>
            {dump.skipped.map((f) => (
              <li key={f.path}>
                <span className="mono">{f.path}</span>: {f.reason}
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}
