// Loading output code, its provenance mapping and a profiler trace beside a graph: each file read
// by its content; a truncated or corrupted one is refused with the byte / line, and what was
// loaded before stays; a loaded trace makes measured time available without a run.

import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { useStore } from './index.ts';
import { freshStore } from './testStore.ts';
import { overlayUnavailable, timeSource } from './overlaySlice.ts';

vi.mock('../samples.ts', () => ({ SAMPLES: [], DEFAULT_SAMPLE_ID: 'none', findSample: () => undefined }));

const FIXTURES = new URL('../../../fixtures/trace/', import.meta.url);
const file = (path: string) => new Blob([readFileSync(new URL(path, FIXTURES))]);
const DIR = 'debug/model__2_inference_2.2/';
const s = () => useStore.getState();

describe('the kernels slice', () => {
  beforeEach(() => {
    freshStore();
    s().loadText(
      readFileSync(new URL(`${DIR}fx_graph_transformed.py`, FIXTURES), 'utf8'),
      'fx_graph_transformed.py',
    );
  });

  it('reads output code, mapping and a gzipped trace by their content', async () => {
    await s().loadKernelFile(file(`${DIR}output_code.py`), 'output_code.py');
    await s().loadKernelFile(file(`${DIR}inductor_provenance_tracking_node_mappings.json`), 'mapping.json');
    expect(overlayUnavailable(s()).time).toMatch(/^Run the comparison first/);
    await s().loadKernelFile(file('profile.json.gz'), 'profile.json.gz');
    expect(s().kernelsError).toBeNull();
    expect(s().outputCode.before?.code.launches).toHaveLength(12);
    expect(s().provenance?.file).toBe('mapping.json');
    expect(s().profilerTrace?.trace.count).toBeGreaterThan(0);
    expect(s().traceLoading).toBeNull();
    // The trace is a measured time of its own.
    expect(overlayUnavailable(s()).time).toBeNull();
    expect(timeSource(s())).toBe('trace');
  });

  it('refuses a truncated trace and unknown files, naming why, and keeps what was loaded', async () => {
    await s().loadKernelFile(file('profile.json.gz'), 'profile.json.gz');
    const loaded = s().profilerTrace;
    const gz = readFileSync(new URL('profile.json.gz', FIXTURES));
    await s().loadKernelFile(new Blob([gz.subarray(0, gz.length >> 1)]), 'cut.json.gz');
    expect(s().kernelsError).toMatch(/^cut\.json\.gz: byte \d+, line \d+: the gzip stream breaks off/);
    expect(s().profilerTrace).toBe(loaded);
    await s().loadKernelFile(
      new Blob(['{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "a", "ts": 1']),
      'open.json',
    );
    expect(s().kernelsError).toMatch(/^open\.json: byte 17, line 1: the file ends inside event 1/);
    await s().loadKernelFile(new Blob(['print(1)\n']), 'other.py');
    expect(s().kernelsError).toMatch(/^other\.py: neither Inductor output code/);
    expect(s().profilerTrace).toBe(loaded);
  });
});
