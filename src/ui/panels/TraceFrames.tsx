// A TORCH_TRACE log's compiles: each with its function, graph breaks (reason, user frame) and
// recompiles (the guard that failed); picking one puts its graphs on the dump stage scrubber below.
// Lines of the log that could not be read are listed by number. A real log holds hundreds of
// compiles: rows are drawn a hundred at a time, and picking one redraws only the rows that changed.

import { memo, useMemo, useState } from 'react';
import {
  TRACE_STAGE_LABELS,
  describeProblem,
  type GraphBreak,
  type Recompile,
} from '../../graph/artifacts/torchTrace.ts';
import type { TraceFrameOutline } from '../pipeline/traceJobs.ts';
import { useStore } from '../store/index.ts';

/** Rows drawn at first, and added by each "more". */
const ROWS_AT_A_TIME = 100;

const fileName = (p: string | null) => (p === null ? '?' : p.slice(p.lastIndexOf('/') + 1));

function byCompile<T extends { compileId: string }>(items: T[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of items) {
    const list = m.get(x.compileId);
    if (list) list.push(x);
    else m.set(x.compileId, [x]);
  }
  return m;
}

export function TraceFrames() {
  const trace = useStore((s) => s.trace);
  const showTraceFrame = useStore((s) => s.showTraceFrame);
  const [rows, setRows] = useState(ROWS_AT_A_TIME);
  const outline = trace?.outline;
  const breaks = useMemo(() => byCompile(outline?.breaks ?? []), [outline]);
  const recompiles = useMemo(() => byCompile(outline?.recompiles ?? []), [outline]);
  if (!trace || !outline) return null;
  const hidden = outline.frames.length - rows;
  return (
    <div className="trace-frames" data-testid="trace-frames">
      <div>
        TORCH_TRACE <span className="mono">{trace.name}</span>: {outline.frames.length} compiles,{' '}
        {outline.breaks.length} graph breaks, {outline.recompiles.length} recompiles
      </div>
      <ol className="dump-stage-list" aria-label="Compiled frames">
        {outline.frames.slice(0, rows).map((f) => (
          <FrameRow
            key={f.compileId}
            frame={f}
            shown={f.compileId === trace.shown}
            breaks={breaks.get(f.compileId)}
            recompiles={recompiles.get(f.compileId)}
            show={showTraceFrame}
          />
        ))}
      </ol>
      {hidden > 0 && (
        <button type="button" className="linklike" onClick={() => setRows(rows + ROWS_AT_A_TIME)}>
          {Math.min(hidden, ROWS_AT_A_TIME)} more of {hidden} compiles not listed
        </button>
      )}
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
            {outline.problems.slice(0, ROWS_AT_A_TIME).map((p) => (
              <li key={p.line}>{describeProblem(p)}</li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

const FrameRow = memo(function FrameRow({
  frame: f,
  shown,
  breaks = [],
  recompiles = [],
  show,
}: {
  frame: TraceFrameOutline;
  shown: boolean;
  breaks?: GraphBreak[];
  recompiles?: Recompile[];
  show: (compileId: string) => Promise<void>;
}) {
  return (
    <li>
      <button
        type="button"
        className="linklike"
        aria-current={shown ? 'step' : undefined}
        onClick={() => void show(f.compileId)}
        title={f.stages.map((s) => TRACE_STAGE_LABELS[s.stage]).join(', ')}
      >
        [{f.compileId}] {f.fn ?? '?'}
      </button>{' '}
      <span className="mono">
        {fileName(f.file)}:{f.firstLine ?? '?'}
      </span>
      {f.failure && <div className="trace-failure">failed: {f.failure}</div>}
      {(recompiles.length > 0 || breaks.length > 0) && (
        <ul>
          {recompiles.map((r) => (
            <li key={`r${r.line}`} className="trace-recompile">
              recompile: guard failed{r.previous ? ` on ${r.previous}` : ''}:{' '}
              <span className="mono">{r.guard}</span>
            </li>
          ))}
          {breaks.map((b) => (
            <li key={`b${b.line}`} className="trace-break" title={b.detail}>
              graph break: {b.reason}
              {b.where && <span className="mono"> at {fileName(b.where)}</span>}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
});
