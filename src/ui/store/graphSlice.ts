import type { StateCreator } from 'zustand';
import type { Graph } from '../../graph/ir.ts';
import { importGraph } from '../../graph/formats.ts';
import { GraphImportError, type ImportWarning } from '../../graph/errors.ts';
import { findSample } from '../samples.ts';
import { groupNodes } from '../../graph/groups.ts';
import { drawnNodeCount } from '../graph/scene.ts';
import type { RewriteStep } from '../urlState.ts';
import type { AppState } from './index.ts';

export type GraphSource = { sample: string } | { text: string; name: string };

/** What went wrong importing, with the place in the text when the importer knows it. */
export interface ImportProblem {
  message: string;
  line?: number;
  col?: number;
  /** The text that failed, so the editor shows it even though the graph was not replaced. */
  text: string;
}

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
  /** Loads a sample by id; `restore` replays steps and selection from a URL. */
  loadSample(id: string, restore?: Restore): void;
  loadText(text: string, name: string, restore?: Restore): void;
  clearImportError(): void;
}

export interface Restore {
  steps: RewriteStep[];
  selected?: string | null;
}

/** Graphs with more boxes than this open with every layer folded. */
export const FOLD_ABOVE_NODES = 2000;

export const createGraphSlice: StateCreator<AppState, [], [], GraphSlice> = (set, get) => {
  /** `tp` is the sample's TP degree; undefined lets the passes read the world size from the graph. */
  const install = (source: GraphSource, name: string, text: string, graph: Graph, format: string, warnings: string[], tp: number | undefined, restore?: Restore) => {
    set({ source, sourceName: name, sourceText: text, base: graph, format, warnings, importError: null, draft: null, scrub: null });
    const s = get();
    // A run belongs to the graph it ran; another graph's rows must not show against this one.
    s.clearRun();
    // A big graph opens with its layers folded: readable at once, and far less to draw.
    s.setCollapsed(drawnNodeCount(graph) > FOLD_ABOVE_NODES ? groupNodes(graph).groups.map((g) => g.id) : []);
    s.setGates({ worldSize: tp }, { replay: false });
    s.resetSteps(restore?.steps ?? []);
    s.select(restore?.selected ?? null);
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

    loadSample: (id, restore) => {
      const sample = findSample(id);
      if (!sample) {
        get().setNotice(`No built-in sample "${id}"`, true);
        return;
      }
      let text: string;
      try {
        text = sample.load();
      } catch (e) {
        get().setNotice(`Sample "${sample.label}" could not be generated: ${(e as Error).message}`, true);
        return;
      }
      const imported = tryImport(text);
      if ('error' in imported) {
        set({ importError: imported.error, bottomTab: 'source' });
        return;
      }
      install({ sample: id }, sample.label, text, imported.graph, imported.format, imported.warnings, sample.tp, restore);
    },

    loadText: (text, name, restore) => {
      const imported = tryImport(text);
      if ('error' in imported) {
        set({ importError: imported.error, bottomTab: 'source' });
        return;
      }
      install({ text, name }, name, text, imported.graph, imported.format, imported.warnings, undefined, restore);
    },

    clearImportError: () => set({ importError: null }),
  };
};

type Imported = { graph: Graph; format: string; warnings: string[] } | { error: ImportProblem };

function tryImport(text: string): Imported {
  try {
    const r = importGraph(text);
    return { graph: r.graph, format: r.format, warnings: r.warnings.map((w: ImportWarning) => `line ${w.line}: ${w.message}`) };
  } catch (e) {
    if (e instanceof GraphImportError) return { error: { message: e.detail, line: e.line, col: e.col, text } };
    return { error: { message: `Import failed: ${(e as Error).message ?? String(e)}`, text } };
  }
}
