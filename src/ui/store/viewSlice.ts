import type { StateCreator } from 'zustand';
import type { ViewCentre } from '../graph/viewCentre.ts';
import type { AppState } from './index.ts';

export const THEMES = ['light', 'dark'] as const;
export type Theme = (typeof THEMES)[number];
/** Side by side (before | after), the diff overlay, or only the current graph. */
export const LAYOUTS = ['split', 'diff', 'single'] as const;
export type Layout = (typeof LAYOUTS)[number];
export const BOTTOM_TABS = [
  'source',
  'run',
  'results',
  'timeline',
  'cost',
  'kernels',
  'fixes',
  'toy',
] as const;
export type BottomTab = (typeof BOTTOM_TABS)[number];
export type Side = 'before' | 'after';

export interface ViewSlice {
  selected: string | null;
  /** Which graph the selection was made in: names can differ between before and after. */
  selectedSide: Side;
  theme: Theme;
  layout: Layout;
  bottomTab: BottomTab;
  /** A selection made outside the graph views (tour, why list, inspector links) to scroll into view. */
  reveal: { name: string; nonce: number } | null;
  /**
   * The nodes a rewrite step, undo, redo or scrub just changed, in the shown graph: the views
   * centre on the one nearest to what they show. A new nonce asks again for the same names.
   */
  focus: { names: string[]; nonce: number } | null;
  /**
   * Where the graph views look, as of their last rest (the URL carries it); a view opening on a
   * graph starts there. Set at rest, not per frame: pan/zoom moves the DOM, not React.
   */
  viewCentre: ViewCentre | null;
  setViewCentre(c: ViewCentre | null): void;
  /** Layer groups folded into one box, in every view (before, after, current; SVG and canvas). */
  collapsed: ReadonlySet<string>;
  toggleGroup(id: string): void;
  /** Folds exactly these groups (fold all: every group; unfold all: none). */
  setCollapsed(ids: Iterable<string>): void;
  /** Index of the open tour step, or null when the tour is closed. */
  tourStep: number | null;
  /** `?test=1`: fixed fonts, no animation, a ready flag on <body>. */
  testMode: boolean;
  /** Turns test mode on (`?test=1`), in the light theme the screenshots are taken in. */
  enterTestMode(): void;
  /** The URL has not caught up with the state yet (the ready flag waits for it). */
  urlPending: boolean;
  /** A message for the status bar (URL state errors, exports). */
  notice: { text: string; error: boolean } | null;
  /** Selects a node; `reveal` also centers the graph views on it. */
  select(name: string | null, side?: Side, reveal?: boolean): void;
  /** Asks the views to centre on one of these nodes (see `focus`); an empty list does nothing. */
  setFocus(names: string[]): void;
  setTheme(theme: Theme): void;
  setLayout(layout: Layout): void;
  setBottomTab(tab: BottomTab): void;
  setTourStep(step: number | null): void;
  setNotice(text: string | null, error?: boolean): void;
  setUrlPending(pending: boolean): void;
}

/**
 * What the views show of a graph just loaded: its folds (found where it was imported) and where
 * they look (a link's pan/zoom; null: the graph's own first view). Installed with the graph's
 * stages, in the same update (see NewBase).
 */
export function viewOfNewGraph(
  folded: Iterable<string>,
  centre: ViewCentre | null,
): Pick<ViewSlice, 'collapsed' | 'viewCentre'> {
  return { collapsed: new Set(folded), viewCentre: centre };
}

export const createViewSlice: StateCreator<AppState, [], [], ViewSlice> = (set) => ({
  selected: null,
  selectedSide: 'after',
  theme: 'light',
  layout: 'split',
  bottomTab: 'source',
  reveal: null,
  focus: null,
  viewCentre: null,
  setViewCentre: (viewCentre) => set({ viewCentre }),
  collapsed: new Set<string>(),
  toggleGroup: (id) =>
    set((s) => {
      const next = new Set(s.collapsed);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return { collapsed: next };
    }),
  setCollapsed: (ids) => set({ collapsed: new Set(ids) }),
  tourStep: null,
  testMode: false,
  enterTestMode: () => set({ testMode: true, theme: 'light' }),
  notice: null,
  urlPending: false,
  select: (name, side, reveal = false) =>
    set((s) => ({
      selected: name,
      selectedSide: side ?? s.selectedSide,
      reveal: reveal && name !== null ? { name, nonce: (s.reveal?.nonce ?? 0) + 1 } : s.reveal,
    })),
  setFocus: (names) => {
    if (names.length) set((s) => ({ focus: { names, nonce: (s.focus?.nonce ?? 0) + 1 } }));
  },
  setTheme: (theme) => set({ theme }),
  setLayout: (layout) => set({ layout }),
  setBottomTab: (bottomTab) => set({ bottomTab }),
  setTourStep: (tourStep) => set({ tourStep }),
  setNotice: (text, error = false) => set({ notice: text === null ? null : { text, error } }),
  setUrlPending: (urlPending) => set((s) => (s.urlPending === urlPending ? s : { urlPending })),
});
