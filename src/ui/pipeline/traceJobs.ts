// Reading a TORCH_TRACE log from a Blob in chunks (the worker does it for the page; the page itself
// where workers are unavailable), and the outline the page is sent: every compile, break and
// recompile, but no graph text — a frame's graphs are fetched when it is shown, so a 300 MB log
// never crosses to the page's thread whole. No DOM, no store.

import {
  TorchTraceReader,
  importTraceFrame,
  type TorchTrace,
  type TraceFrame,
  type TraceFrameStages,
  type TraceStageKind,
  type TraceStageName,
} from '../../graph/artifacts/torchTrace.ts';
import type { OnWorkProgress } from './pipelineJobs.ts';

/** Bytes read at a time: a few MB parse in tens of milliseconds. */
export const TRACE_CHUNK_BYTES = 4 << 20;

export interface TraceStageOutline {
  stage: TraceStageName;
  kind: TraceStageKind;
  line: number;
  chars: number;
}
export type TraceFrameOutline = Omit<TraceFrame, 'graphs'> & { stages: TraceStageOutline[] };
export interface TraceOutline extends Omit<TorchTrace, 'frames'> {
  frames: TraceFrameOutline[];
  bytes: number;
}

const MB = 2 ** 20;

export async function readTraceBlob(
  blob: Blob,
  name: string,
  onProgress: OnWorkProgress,
  /** Between chunks: the page yields to its event loop here. */
  between: () => Promise<void> = () => Promise.resolve(),
): Promise<TorchTrace> {
  const reader = new TorchTraceReader();
  const decoder = new TextDecoder();
  for (let at = 0; at < blob.size; at += TRACE_CHUNK_BYTES) {
    onProgress(
      `reading ${name}: ${(at / MB).toFixed(0)} / ${(blob.size / MB).toFixed(0)} MB`,
      at / Math.max(1, blob.size),
    );
    const bytes = await blob.slice(at, at + TRACE_CHUNK_BYTES).arrayBuffer();
    reader.push(decoder.decode(bytes, { stream: true }));
    await between();
  }
  reader.push(decoder.decode());
  return reader.finish();
}

export function traceOutline(t: TorchTrace, bytes: number): TraceOutline {
  return {
    ...t,
    bytes,
    frames: t.frames.map(({ graphs, ...f }) => ({
      ...f,
      stages: graphs.map((g) => ({ stage: g.stage, kind: g.kind, line: g.line, chars: g.text.length })),
    })),
  };
}

/**
 * A compile's graphs imported as the stage scrubber's stages (where the log is held: the worker,
 * so the page's thread never parses them).
 */
export function traceFrameStages(t: TorchTrace, compileId: string): TraceFrameStages {
  const f = t.frames.find((x) => x.compileId === compileId);
  if (!f) throw new Error(`no compile ${compileId} in the log`);
  return importTraceFrame(f);
}
