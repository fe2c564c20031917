// One store, nine slices: the loaded graph, the rewrite history, vLLM's pass config, the last run,
// the view, the node-data overlay, the work going on in the pipeline worker, a TORCH_TRACE log's
// compiles, and Inductor's kernels and the profiler trace loaded beside the graph.
// Components read it through selectors (`useStore((s) => s.counts)`), never the whole state.

import { create } from 'zustand';
import { createGraphSlice, type GraphSlice } from './graphSlice.ts';
import { createPassesSlice, type PassesSlice } from './passesSlice.ts';
import { createPassConfigSlice, type PassConfigSlice } from './passConfigSlice.ts';
import { createRunSlice, type RunSlice } from './runSlice.ts';
import { createViewSlice, type ViewSlice } from './viewSlice.ts';
import { createOverlaySlice, type OverlaySlice } from './overlaySlice.ts';
import { createWorkSlice, type WorkSlice } from './workSlice.ts';
import { createTraceSlice, type TraceSlice } from './traceSlice.ts';
import { createKernelsSlice, type KernelsSlice } from './kernelsSlice.ts';

export type AppState = GraphSlice &
  PassesSlice &
  PassConfigSlice &
  RunSlice &
  ViewSlice &
  OverlaySlice &
  WorkSlice &
  TraceSlice &
  KernelsSlice;

export const useStore = create<AppState>()((...a) => ({
  ...createGraphSlice(...a),
  ...createPassesSlice(...a),
  ...createPassConfigSlice(...a),
  ...createRunSlice(...a),
  ...createViewSlice(...a),
  ...createOverlaySlice(...a),
  ...createWorkSlice(...a),
  ...createTraceSlice(...a),
  ...createKernelsSlice(...a),
}));

export { shownStage } from './passesSlice.ts';
