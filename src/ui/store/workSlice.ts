import type { StateCreator } from 'zustand';
import { cancelPipeline } from '../pipeline/pipelineClient.ts';
import type { AppState } from './index.ts';

/** Loading or rewriting going on in the pipeline worker: what it is doing, and how far (0..1, null unknown). */
export interface Work {
  label: string;
  fraction: number | null;
}

export interface WorkSlice {
  work: Work | null;
  setWork(work: Work | null): void;
  /** Stops the load or rewrite in progress; the graph and stages shown stay as they were. */
  cancelWork(): void;
}

export const createWorkSlice: StateCreator<AppState, [], [], WorkSlice> = (set) => ({
  work: null,
  setWork: (work) => set({ work }),
  cancelWork: () => {
    cancelPipeline();
    set({ work: null });
  },
});
