// A TORCH_TRACE log's compiles: each with its function, graph breaks (reason, user frame) and
// recompiles (the guard that failed); picking one puts its graphs on the dump stage scrubber below.
// Lines of the log that could not be read are listed by number.

import { TRACE_STAGE_LABELS, describeProblem } from '../../graph/artifacts/torchTrace.ts';
import { useStore } from '../store/index.ts';

const fileName = (p: string | null) => (p === null ? '?' : p.slice(p.lastIndexOf('/') + 1));

export function TraceFrames() {
  const trace = useStore((s) => s.trace);
  const showTraceFrame = useStore((s) => s.showTraceFrame);
  if (!trace) return null;
  const { outline } = trace;
  return (
    <div className="trace-frames" data-testid="trace-frames">
      <div>
        TORCH_TRACE <span className="mono">{trace.name}</span>: {outline.frames.length} compiles,{' '}
        {outline.breaks.length} graph breaks, {outline.recompiles.length} recompiles
      </div>
      <ol className="dump-stage-list" aria-label="Compiled frames">
        {outline.frames.map((f) => (
          <li key={f.compileId}>
            <button
              type="button"
              className="linklike"
              aria-current={f.compileId === trace.shown ? 'step' : undefined}
              onClick={() => void showTraceFrame(f.compileId)}
              title={f.stages.map((s) => TRACE_STAGE_LABELS[s.stage]).join(', ')}
            >
              [{f.compileId}] {f.fn ?? '?'}
            </button>{' '}
            <span className="mono">
              {fileName(f.file)}:{f.firstLine ?? '?'}
            </span>
            {f.failure && <div className="trace-failure">failed: {f.failure}</div>}
            <ul>
              {outline.recompiles
                .filter((r) => r.compileId === f.compileId)
                .map((r) => (
                  <li key={`r${r.line}`} className="trace-recompile">
                    recompile: guard failed{r.previous ? ` on ${r.previous}` : ''}:{' '}
                    <span className="mono">{r.guard}</span>
                  </li>
                ))}
              {outline.breaks
                .filter((b) => b.compileId === f.compileId)
                .map((b) => (
                  <li key={`b${b.line}`} className="trace-break" title={b.detail}>
                    graph break: {b.reason}
                    {b.where && <span className="mono"> at {fileName(b.where)}</span>}
                  </li>
                ))}
            </ul>
          </li>
        ))}
      </ol>
      {trace.outputCode && (
        <div className="trace-output-code" data-testid="trace-output-code">
          [{trace.outputCode.compileId}] output code: {trace.outputCode.text.split('\n').length} lines of
          Inductor&apos;s generated kernels
        </div>
      )}
      {outline.problems.length > 0 && (
        <details open>
          <summary>
            {outline.problems.length} line{outline.problems.length > 1 ? 's' : ''} of the log could not be
            read
          </summary>
          <ul>
            {outline.problems.map((p) => (
              <li key={p.line}>{describeProblem(p)}</li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}
