import type { StateCreator } from 'zustand';
import { loggedCompileRange, type CompileRange } from '../../graph/passes/vllmConfig.ts';
import type { Graph } from '../../graph/ir.ts';
import { DEFAULT_MAX_BYTES, GraphImportError, checkByteSize, checkInputSize } from '../../graph/errors.ts';
import {
  importStageFolder,
  type SkippedFile,
  type StageFile,
  type StageFolder,
} from '../../graph/stageFolder.ts';
import { findSample } from '../samples.ts';
import type { ViewCentre } from '../graph/viewCentre.ts';
import { viewOfNewGraph } from './viewSlice.ts';
import type { RewriteStep } from '../urlState.ts';
import {
  foldedOnOpen,
  loadSource,
  type GraphSource,
  type ImportProblem,
  type Loaded,
} from '../pipeline/pipelineJobs.ts';
import { WorkCancelled, loadOffThread, offThread } from '../pipeline/pipelineClient.ts';
import type { AppState } from './index.ts';

export type { GraphSource, ImportProblem } from '../pipeline/pipelineJobs.ts';

/** Pasted or dropped text longer than this is imported in the pipeline worker. */
export const OFF_THREAD_ABOVE_CHARS = 100_000;
/** Of a text refused for its size, the head the editor shows. */
const REFUSED_TEXT_SHOWN = 100_000;

export interface GraphSlice {
  source: GraphSource | null;
  /** Shown in the title bar and used for export file names. */
  sourceName: string;
  /** FX text of the loaded graph (printed for generated samples), shown in the editor. */
  sourceText: string;
  base: Graph | null;
  format: string | null;
  warnings: string[];
  importError: ImportProblem | null;
  /** Text typed or pasted into the editor and not imported yet; null when the editor shows the source. */
  draft: string | null;
  setDraft(draft: string | null): void;
  /**
   * Loads a sample by id; `restore` replays steps and selection from a URL. Generated samples are
   * made in the pipeline worker: the promise resolves once the graph is shown (or refused).
   */
  loadSample(id: string, restore?: Restore): Promise<void>;
  loadText(text: string, name: string, restore?: Restore): Promise<void>;
  /**
   * A dropped file or pasted clipboard item: one over the import limit is refused by its size
   * before it is read; another is read (off the page's thread) and imported as text.
   */
  loadBlob(blob: Blob, name: string): Promise<void>;
  /** A dump folder (vLLM's debug dump, TORCH_COMPILE_DEBUG): its stages, the first shown. */
  dump: DumpState | null;
  /** `unread`: files left unread (past the import limit), listed with the skipped ones. */
  loadStageFolder(files: StageFile[], name: string, unread?: SkippedFile[]): void;
  /** Stages already imported (a TORCH_TRACE compile's graphs), shown as a dump folder's are; `files` holds their texts. */
  showStageFolder(imported: StageFolder, files: StageFile[], name: string): void;
  /**
   * Shows dump stage i: the rewrite steps taken so far replay on it (a step that no longer
   * applies stops the replay and says why), under the gates chosen so far.
   */
  showDumpStage(i: number): Promise<void>;
  clearImportError(): void;
}

/** A loaded dump folder: its stages in compile order; the one shown is the graph the passes start from. */
export interface DumpState {
  name: string;
  stages: { name: string; path: string; graph: Graph; text: string; format: string; warnings: string[] }[];
  skipped: SkippedFile[];
  shown: number;
  /** The TP world size the capture's file names state (its ranks), the gate's value on opening it. */
  worldSize?: number;
  /** The compile range its vLLM log says the graphs were compiled for. */
  compileRange?: CompileRange;
}

/** The compile range a folder's vLLM log names, if one does. */
function loggedRangeOf(files: readonly StageFile[]): { compileRange?: CompileRange } {
  const compileRange = files.map((f) => loggedCompileRange(f.text)).find((r) => r !== undefined);
  return compileRange ? { compileRange } : {};
}

export interface Restore {
  steps: RewriteStep[];
  selected?: string | null;
  /** Where the views look once the graph is laid out (a link's pan/zoom). */
  view?: ViewCentre;
}

export { FOLD_ABOVE_NODES } from '../pipeline/pipelineJobs.ts';

/** What the graph slice holds of a loaded graph (the rest is actions). */
export type LoadedGraphState = Pick<
  GraphSlice,
  'source' | 'sourceName' | 'sourceText' | 'base' | 'format' | 'warnings' | 'importError' | 'draft' | 'dump'
>;

/** The graph slice once `loaded` is shown: its source, text and graph, no error and no draft. */
export function loadedGraph(
  source: GraphSource,
  loaded: Extract<Loaded, { kind: 'graph' }>,
  dump: DumpState | null,
): LoadedGraphState {
  const { name, text, graph, format, warnings } = loaded;
  return {
    source,
    sourceName: name,
    sourceText: text,
    base: graph,
    format,
    warnings,
    importError: null,
    draft: null,
    dump,
  };
}

export const createGraphSlice: StateCreator<AppState, [], [], GraphSlice> = (set, get) => {
  /** Counts loads, so one superseded while in the worker does not install its graph. */
  let ticket = 0;

  /** Shows a loaded graph: the whole patch and its stages land together (see resetSteps). */
  const install = async (
    source: GraphSource,
    loaded: Extract<Loaded, { kind: 'graph' }>,
    restore?: Restore,
    dump: DumpState | null = null,
  ) => {
    // A big graph opens with its layers folded (found where it was imported): readable at once,
    // and far less to draw. Another graph opens at its own first view, unless the link says where to look.
    const patch = {
      ...loadedGraph(source, loaded, dump),
      ...viewOfNewGraph(loaded.folded, restore?.view ?? null),
    };
    // `tp` is the sample's TP degree; undefined lets the passes read the world size from the graph.
    const gates = { ...get().gates, worldSize: loaded.tp };
    const installed = () => {
      const s = get();
      // A run belongs to the graph it ran; another graph's rows must not show against this one.
      s.clearRun();
      s.select(restore?.selected ?? null);
    };
    await get().resetSteps(restore?.steps ?? [], { base: loaded.graph, gates, patch, installed });
  };

  /** The error goes in the editor, which the source tab shows. */
  const showImportError = (importError: ImportProblem) => {
    set({ importError });
    get().setBottomTab('source');
  };

  const load = async (source: GraphSource, away: boolean, restore?: Restore) => {
    const mine = ++ticket;
    let loaded: Loaded;
    if (away) {
      get().setWork({ label: 'loading', fraction: null });
      try {
        loaded = await loadOffThread(source, (label, fraction) => {
          if (mine === ticket) get().setWork({ label, fraction });
        });
      } catch (e) {
        if (mine !== ticket) return;
        get().setWork(null);
        get().setNotice(
          e instanceof WorkCancelled
            ? 'Loading cancelled: the graph shown is unchanged.'
            : `Loading failed: ${(e as Error).message}`,
          !(e instanceof WorkCancelled),
        );
        return;
      }
      if (mine !== ticket) return;
      get().setWork(null);
    } else {
      loaded = loadSource(source);
    }
    switch (loaded.kind) {
      case 'notice':
        get().setNotice(loaded.message, true);
        return;
      case 'import-error':
        showImportError(loaded.error);
        return;
      case 'graph':
        await install(source, loaded, restore);
        return;
    }
  };

  return {
    source: null,
    sourceName: '',
    sourceText: '',
    base: null,
    format: null,
    warnings: [],
    importError: null,
    draft: null,
    setDraft: (draft) => set({ draft }),

    loadSample: async (id, restore) => {
      const sample = findSample(id);
      if (!sample) {
        get().setNotice(`No built-in sample "${id}"`, true);
        return;
      }
      await load({ sample: id }, sample.generated && offThread(), restore);
    },

    loadText: (text, name, restore) => {
      // Over the import limit by its length alone: refused here at once, with the importer's own
      // message, rather than copied to the worker and back (50 MB costs the page seconds).
      const refused =
        text.length > DEFAULT_MAX_BYTES &&
        sizeRefusal(() => checkInputSize(text, DEFAULT_MAX_BYTES, name), text);
      if (refused) return Promise.resolve(showImportError(refused));
      return load({ text, name }, text.length > OFF_THREAD_ABOVE_CHARS && offThread(), restore);
    },

    loadBlob: async (blob, name) => {
      if (blob.size > DEFAULT_MAX_BYTES) {
        const head = await blob.slice(0, REFUSED_TEXT_SHOWN).text();
        const refused = sizeRefusal(() => checkByteSize(blob.size, DEFAULT_MAX_BYTES, name), head);
        if (refused) return showImportError(refused);
      }
      await get().loadText(await blob.text(), name);
    },

    dump: null,
    loadStageFolder: (files, name, unread = []) => {
      const imported = importStageFolder(files);
      get().showStageFolder({ ...imported, skipped: [...unread, ...imported.skipped] }, files, name);
    },
    showStageFolder: (imported, files, name) => {
      const r = imported;
      if (r.stages.length === 0) {
        const why = r.skipped
          .slice(0, 3)
          .map((f) => `${f.path}: ${f.reason}`)
          .join('; ');
        showImportError({
          message: `${name}: no graph among its ${r.stages.length + r.skipped.length} files${why ? ` (${why}${r.skipped.length > 3 ? '; …' : ''})` : ''}`,
          text: '',
        });
        return;
      }
      const text = new Map(files.map((f) => [f.path, f.text]));
      const dump: DumpState = {
        name,
        stages: r.stages.map((st) => ({
          name: st.name,
          path: st.path,
          graph: st.graph,
          text: text.get(st.path) ?? '',
          format: st.format,
          warnings: st.warnings.map((w) => `line ${w.line}: ${w.message}`),
        })),
        skipped: r.skipped,
        shown: 0,
        ...(imported.worldSize === undefined ? {} : { worldSize: imported.worldSize }),
        ...loggedRangeOf(files),
      };
      // A new capture starts with no rewrite steps, at the world size its file names state.
      const first = dumpStage(dump, 0, imported.worldSize);
      void install(first.source, first.loaded, undefined, first.dump);
    },
    showDumpStage: async (i) => {
      const s = get();
      if (!s.dump) return;
      const steps = s.steps.slice(0, s.cursor);
      const { source, loaded, dump } = dumpStage(s.dump, i, s.gates.worldSize);
      await install(source, loaded, { steps, selected: s.selected }, dump);
      const after = get();
      if (steps.length > 0 && !after.rewriteError)
        after.setNotice(
          `Kept the ${steps.length} rewrite step${steps.length === 1 ? '' : 's'}: replayed on ${dump.stages[dump.shown]!.name}.`,
        );
    },

    clearImportError: () => set({ importError: null }),
  };
};

/**
 * A size check's refusal as the editor shows it, with the text's head (the error is about its
 * size, not a line in it); null when the check passes.
 */
function sizeRefusal(check: () => void, text: string): ImportProblem | null {
  try {
    check();
    return null;
  } catch (e) {
    if (!(e instanceof GraphImportError)) throw e;
    return { message: e.detail, line: e.line, col: e.col, text: text.slice(0, REFUSED_TEXT_SHOWN) };
  }
}

/** Dump stage i as a loaded graph, at world size `tp` (undefined: the graph's own). */
function dumpStage(
  dump: DumpState,
  i: number,
  tp: number | undefined,
): { source: GraphSource; loaded: Extract<Loaded, { kind: 'graph' }>; dump: DumpState } {
  const k = Math.max(0, Math.min(i, dump.stages.length - 1));
  const st = dump.stages[k]!;
  const loaded = {
    kind: 'graph' as const,
    name: `${dump.name} · ${st.name}`,
    text: st.text,
    graph: st.graph,
    format: st.format,
    warnings: st.warnings,
    tp,
    folded: foldedOnOpen(st.graph),
  };
  return { source: { text: st.text, name: `${dump.name}/${st.path}` }, loaded, dump: { ...dump, shown: k } };
}
