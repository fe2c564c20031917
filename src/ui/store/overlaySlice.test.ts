// The overlay choices follow the run they draw from: refused (with the reason) without a run or
// with a stale one, kind shown instead; |Δ| computed for the current report and dropped with it.

import { beforeEach, describe, expect, it, vi } from 'vitest';
import { useStore } from './index.ts';
import { rewrittenFragment } from './testStore.ts';
import { overlayUnavailable, shownOverlay } from './overlaySlice.ts';
import { QWEN_TP2 } from '../testFixtures.ts';

vi.mock('../samples.ts', () => ({ SAMPLES: [], DEFAULT_SAMPLE_ID: 'none', findSample: () => undefined }));

const s = () => useStore.getState();

describe('the overlay slice', () => {
  it('drops |Δ| still being computed when another graph loads, so nothing waits on it', async () => {
    await s().run();
    s().setOverlayMetric('delta');
    expect(s().nodeDeltas?.status).toBe('computing');
    s().loadText(QWEN_TP2, 'qwen2-paral2_layer1-r0.py');
    expect(s().nodeDeltas).toBeNull();
    // The computation that was under way ends without writing its values.
    await new Promise((r) => setTimeout(r, 200));
    expect(s().nodeDeltas).toBeNull();
  });

  beforeEach(() => {
    rewrittenFragment();
  });

  it('refuses time and |Δ| until a run, and again when the run is stale; bytes always', async () => {
    s().setOverlayMetric('time');
    expect(overlayUnavailable(s()).time).toMatch(/^Run the comparison first/);
    expect(overlayUnavailable(s()).bytes).toBeNull();
    expect(shownOverlay(s())).toBe('kind');
    await s().run();
    expect(overlayUnavailable(s()).time).toBeNull();
    expect(shownOverlay(s())).toBe('time');
    s().undo();
    expect(overlayUnavailable(s()).time).toMatch(/other steps or gates/);
    expect(shownOverlay(s())).toBe('kind');
    s().redo();
    expect(shownOverlay(s())).toBe('time');
  });

  it('computes |Δ| for the current report, by after- and before-node, and forgets it with another graph', async () => {
    await s().run();
    s().setOverlayMetric('delta');
    expect(s().nodeDeltas?.status).toBe('computing');
    await vi.waitFor(() => expect(s().nodeDeltas?.status).toBe('done'));
    const d = s().nodeDeltas!;
    expect(d.report).toBe(s().report);
    expect(d.after.get('getitem_3')).toBe(0);
    expect(d.before.get('getitem_3')).toBe(0);
    expect(d.after.get('slice_1')).toBeGreaterThan(0);
    s().loadText(QWEN_TP2, 'qwen2-paral2_layer1-r0.py');
    expect(s().nodeDeltas).toBeNull();
    expect(shownOverlay(s())).toBe('kind');
    expect(overlayUnavailable(s()).delta).toMatch(/^Run the comparison first/);
  });
});
