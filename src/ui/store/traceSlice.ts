// A TORCH_TRACE log in the app: read in the pipeline worker (in chunks, with progress), its
// compiles, graph breaks and recompiles listed, and the chosen compile's graphs put on the dump
// stage scrubber. Its output code is kept as a typed stage for an output-code reader to take.

import type { StateCreator } from 'zustand';
import type { TorchTrace, TraceFrameStages } from '../../graph/artifacts/torchTrace.ts';
import {
  WorkCancelled,
  offThread,
  readTraceOffThread,
  traceFrameOffThread,
} from '../pipeline/pipelineClient.ts';
import { readTraceBlob, traceFrameStages, traceOutline, type TraceOutline } from '../pipeline/traceJobs.ts';
import type { AppState } from './index.ts';

/** Inductor's generated code of the compile shown: the hook an output-code reader takes it from. */
export interface OutputCodeStage {
  kind: 'output_code';
  compileId: string;
  text: string;
}

export interface TraceState {
  name: string;
  outline: TraceOutline;
  /** Where the graph texts are: the worker's copy (its key), or the log read on the page. */
  held: { key: number } | { trace: TorchTrace };
  /** The compile whose graphs are on the scrubber. */
  shown: string | null;
  outputCode: OutputCodeStage | null;
}

export interface TraceSlice {
  trace: TraceState | null;
  /** Reads a TORCH_TRACE log (off the page's thread where it can) and shows its first compile's graphs. */
  loadTraceLog(file: Blob, name: string): Promise<void>;
  showTraceFrame(compileId: string): Promise<void>;
}

/** Lets the page paint between chunks when it reads the log itself. */
const nextTask = () => new Promise<void>((r) => setTimeout(r, 0));

export const createTraceSlice: StateCreator<AppState, [], [], TraceSlice> = (set, get) => ({
  trace: null,

  loadTraceLog: async (file, name) => {
    const progress = (label: string, fraction: number | null) => get().setWork({ label, fraction });
    progress(`reading ${name}`, 0);
    let read: Pick<TraceState, 'outline' | 'held'>;
    try {
      if (offThread()) {
        const { outline, key } = await readTraceOffThread(file, name, progress);
        read = { outline, held: { key } };
      } else {
        const trace = await readTraceBlob(file, name, progress, nextTask);
        read = { outline: traceOutline(trace, file.size), held: { trace } };
      }
    } catch (e) {
      get().setWork(null);
      get().setNotice(
        e instanceof WorkCancelled
          ? 'Reading the log cancelled: what is shown is unchanged.'
          : `Reading ${name} failed: ${(e as Error).message}`,
        !(e instanceof WorkCancelled),
      );
      return;
    }
    get().setWork(null);
    set({ trace: { name, ...read, shown: null, outputCode: null } });
    const bad = read.outline.problems.length;
    if (bad > 0)
      get().setNotice(
        `${name}: ${bad} line${bad === 1 ? '' : 's'} could not be read (listed under the frames); the rest is loaded`,
        true,
      );
    const first = read.outline.frames.find((f) => f.stages.some((s) => s.kind === 'fx'));
    if (first) await get().showTraceFrame(first.compileId);
    else if (read.outline.frames.length === 0) get().setNotice(`${name}: no compiled frame in the log`, true);
  },

  showTraceFrame: async (compileId) => {
    const t = get().trace;
    if (!t?.outline.frames.some((f) => f.compileId === compileId)) return;
    let imported: TraceFrameStages;
    try {
      // In the worker that holds the log: its graphs are parsed there and cross as IR, in parts.
      imported =
        'key' in t.held
          ? await traceFrameOffThread(t.held.key, compileId, (label, fraction) =>
              get().setWork({ label, fraction }),
            )
          : traceFrameStages(t.held.trace, compileId);
    } catch (e) {
      get().setWork(null);
      get().setNotice(`Compile ${compileId}: ${(e as Error).message}`, true);
      return;
    }
    get().setWork(null);
    const { folder, files, outputCode, provenance } = imported;
    set({
      trace: {
        ...t,
        shown: compileId,
        outputCode: outputCode === null ? null : { kind: 'output_code', compileId, text: outputCode },
      },
    });
    get().showStageFolder(folder, files, `${t.name} [${compileId}]`);
    // The compile's kernels go on the graphs it shows (the Kernels tab, the kernel boxes).
    get().takeCompileKernels(`[${compileId}]`, outputCode, provenance);
  },
});
