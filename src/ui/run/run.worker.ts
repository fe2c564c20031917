// Runs a before/after comparison and its timed runs off the page's thread (see runProtocol.ts).

import { compareGraphs, RunError } from '../../runtime/index.ts';
import { timeGraphs } from '../../runtime/timing.ts';
import { nodeDeltas } from '../../runtime/nodeDeltas.ts';
import { readTraceStream, traceBuffers } from '../../graph/artifacts/profilerTrace.ts';
import type { DeltasRequest, RunReply, RunRequest, TraceRequest } from './runProtocol.ts';

const post = (m: RunReply, transfer: Transferable[] = []) =>
  (self as unknown as { postMessage(m: RunReply, t: Transferable[]): void }).postMessage(m, transfer);

async function readTrace(file: Blob) {
  try {
    let last = -1;
    const trace = await readTraceStream(file.stream(), (read) => {
      // A message per percent, not per chunk.
      const pct = Math.floor((100 * read) / Math.max(1, file.size));
      if (pct === last) return;
      last = pct;
      post({ type: 'trace-progress', read, total: file.size });
    });
    post({ type: 'trace', trace }, traceBuffers(trace));
  } catch (err) {
    post({ type: 'error', message: String((err as Error)?.message ?? err) });
  }
}

self.onmessage = async (e: MessageEvent<RunRequest | DeltasRequest | TraceRequest>) => {
  if (e.data.type === 'trace') return readTrace(e.data.file);
  if (e.data.type === 'deltas') {
    const { before, after, afterToBefore, settings } = e.data;
    try {
      let last = -1;
      const deltas = await nodeDeltas(before, after, new Map(afterToBefore), settings, (fraction) => {
        // A message per percent, not per step: a 300-layer graph has tens of thousands.
        if (Math.floor(fraction * 100) === last) return;
        last = Math.floor(fraction * 100);
        post({ type: 'deltas-progress', fraction });
      });
      post({ type: 'deltas', deltas: [...deltas] });
    } catch (err) {
      post({
        type: 'error',
        message: err instanceof RunError ? err.message : String((err as Error)?.message ?? err),
      });
    }
    return;
  }
  const { before, after, passes, settings, timedRuns } = e.data;
  try {
    const report = await compareGraphs(before, after, passes, {
      ...settings,
      onProgress: (progress) => post({ type: 'progress', progress }),
    });
    // The comparison's runs are the warm-up; the timed runs follow on the same thread.
    const timing = await timeGraphs(before, after, settings, timedRuns, true, (done, total) =>
      post({ type: 'timed', done, total }),
    );
    post({ type: 'done', report, timing });
  } catch (err) {
    post({
      type: 'error',
      message:
        err instanceof RunError ? err.message : `Run failed: ${(err as Error)?.message ?? String(err)}`,
    });
  }
};
