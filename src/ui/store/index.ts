// One store, four slices: the loaded graph, the rewrite history, the last run, and the view.
// Components read it through selectors (`useStore((s) => s.counts)`), never the whole state.

import { create } from 'zustand';
import { createGraphSlice, type GraphSlice } from './graphSlice.ts';
import { createPassesSlice, type PassesSlice } from './passesSlice.ts';
import { createRunSlice, type RunSlice } from './runSlice.ts';
import { createViewSlice, type ViewSlice } from './viewSlice.ts';

export type AppState = GraphSlice & PassesSlice & RunSlice & ViewSlice;

export const useStore = create<AppState>()((...a) => ({
  ...createGraphSlice(...a),
  ...createPassesSlice(...a),
  ...createRunSlice(...a),
  ...createViewSlice(...a),
}));

export { shownStage } from './passesSlice.ts';
