// Inductor's output code, its provenance mapping and a profiler trace the user loaded beside the
// graph (graph/artifacts/). Output code belongs to the graph Inductor generated it from: the
// imported graph, or a rewritten one when the user has that graph's own output code. A file that
// cannot be read leaves what was loaded as it was and says why.

import type { StateCreator } from 'zustand';
import {
  isOutputCode,
  isProvenanceMapping,
  OutputCodeError,
  parseOutputCode,
  parseProvenance,
  type OutputCode,
  type ProvenanceMapping,
} from '../../graph/artifacts/outputCode.ts';
import { readTraceStream, TraceError, type ProfilerTrace } from '../../graph/artifacts/profilerTrace.ts';
import { RunWorkerSlot } from '../run/runWorker.ts';
import type { AppState } from './index.ts';

/** Which graph an output code was generated from. */
export type CodeSide = 'before' | 'after';

export interface LoadedOutputCode {
  file: string;
  code: OutputCode;
}

export interface KernelsSlice {
  outputCode: Record<CodeSide, LoadedOutputCode | null>;
  provenance: { file: string; mapping: ProvenanceMapping } | null;
  profilerTrace: { file: string; trace: ProfilerTrace } | null;
  /** A trace being read: bytes read of its size. */
  traceLoading: { file: string; read: number; total: number } | null;
  /** The last file that could not be read, and why (what was loaded stays). */
  kernelsError: string | null;
  /**
   * Reads a file by its content: output code (for `side`'s graph), a provenance mapping, or a
   * profiler trace (gzipped or not, in a worker when there is one).
   */
  loadKernelFile(file: Blob, name: string, side?: CodeSide): Promise<void>;
  /**
   * A TORCH_TRACE compile's output code and provenance mapping, for the graph it shows: they
   * replace what was loaded for that graph (a compile without them clears it).
   */
  takeCompileKernels(name: string, outputCode: string | null, provenance: string | null): void;
  clearKernels(): void;
}

const traceWorker = new RunWorkerSlot();

/** A trace in the run worker, streamed; in Node (tests) on this thread. */
function readTrace(file: Blob, onRead: (read: number) => void): Promise<ProfilerTrace> {
  if (typeof Worker === 'undefined') return readTraceStream(file.stream(), onRead);
  return traceWorker.request({ type: 'trace', file }, (m) => {
    if (m.type === 'trace-progress') onRead(m.read);
    else if (m.type === 'trace') return m.trace;
    return undefined;
  });
}

/** Whether the first bytes say gzip (a trace) or the text looks like a Chrome trace. */
async function looksLikeTrace(file: Blob): Promise<boolean> {
  const head = new Uint8Array(await file.slice(0, 4096).arrayBuffer());
  if (head[0] === 0x1f && head[1] === 0x8b) return true;
  return /"traceEvents"|^\s*\{\s*"schemaVersion"/.test(new TextDecoder().decode(head));
}

export const createKernelsSlice: StateCreator<AppState, [], [], KernelsSlice> = (set, get) => ({
  outputCode: { before: null, after: null },
  provenance: null,
  profilerTrace: null,
  traceLoading: null,
  kernelsError: null,
  clearKernels: () => {
    traceWorker.stop();
    set({
      outputCode: { before: null, after: null },
      provenance: null,
      profilerTrace: null,
      traceLoading: null,
      kernelsError: null,
    });
  },
  takeCompileKernels: (name, outputCode, provenance) => {
    try {
      set({
        outputCode: {
          ...get().outputCode,
          before:
            outputCode === null ? null : { file: `${name} output code`, code: parseOutputCode(outputCode) },
        },
        provenance:
          provenance === null ? null : { file: `${name} provenance`, mapping: parseProvenance(provenance) },
        kernelsError: null,
      });
    } catch (e) {
      set({ kernelsError: `${name}: ${(e as Error).message}` });
    }
  },

  loadKernelFile: async (file, name, side = 'before') => {
    try {
      if (await looksLikeTrace(file)) {
        set({ traceLoading: { file: name, read: 0, total: file.size }, kernelsError: null });
        const trace = await readTrace(file, (read) => {
          if (get().traceLoading?.file === name)
            set({ traceLoading: { file: name, read, total: file.size } });
        });
        set({ profilerTrace: { file: name, trace }, traceLoading: null });
        return;
      }
      const text = await file.text();
      if (isProvenanceMapping(text)) {
        set({ provenance: { file: name, mapping: parseProvenance(text) }, kernelsError: null });
      } else if (isOutputCode(text)) {
        const code = parseOutputCode(text);
        set({ outputCode: { ...get().outputCode, [side]: { file: name, code } }, kernelsError: null });
      } else {
        throw new OutputCodeError(
          'neither Inductor output code (async_compile, def call), a provenance mapping (cppCodeToPost) nor a profiler trace (traceEvents)',
        );
      }
    } catch (e) {
      // The worker's errors arrive as plain Errors carrying the reader's message.
      const why =
        e instanceof TraceError || e instanceof OutputCodeError || e instanceof Error ? e.message : String(e);
      set({ kernelsError: `${name}: ${why}`, traceLoading: null });
    }
  },
});
