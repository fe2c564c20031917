// The store as the app's tests set it up: as the app starts, or with the PR fragment loaded and
// rewritten by every pass, runs set to the CPU reference. (Each test file mocks the sample table.)

import { useStore } from './index.ts';
import { PR_BEFORE } from '../testFixtures.ts';

const initial = useStore.getState();

/** Puts the store back as the app starts. */
export function freshStore(): void {
  useStore.setState(initial, true);
}

/** A fresh store with the PR fragment rewritten by every pass, runs on the CPU reference (tiny, 2 ranks). */
export function rewrittenFragment(): void {
  freshStore();
  const s = useStore.getState();
  s.loadText(PR_BEFORE, 'pr28841-before.fragment.txt');
  s.applyPipeline();
  s.setRunSettings({ backend: 'cpu', ranks: 2, preset: 'tiny', dtype: 'bf16', workers: false });
}
