// The store through the real pipeline worker module, behind a stand-in for Worker that clones every
// message as postMessage does and delivers it on a later task: a generated sample loads in the
// worker, the pipeline replays there (only the new stages cross back), and Cancel leaves the graph
// as it was. A TORCH_TRACE log is read there and the shown compile's graphs imported there.

import { readdirSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { importTraceFrame, parseTorchTrace } from '../../graph/artifacts/torchTrace.ts';

/** One worker scope for the module; each stand-in Worker takes it over while alive. */
const scope = {
  onmessage: null as ((ev: { data: unknown }) => void) | null,
  postMessage: (_m: unknown) => {},
};

class StandInWorker {
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onerror: unknown = null;
  private alive = true;
  private ready: Promise<unknown>;
  constructor() {
    this.ready = import('./pipeline.worker.ts');
  }
  postMessage(m: unknown) {
    const data = structuredClone(m);
    void this.ready.then(() =>
      setTimeout(() => {
        if (!this.alive) return;
        scope.postMessage = (reply) => {
          const copy = structuredClone(reply);
          setTimeout(() => {
            if (this.alive) this.onmessage?.({ data: copy });
          });
        };
        scope.onmessage?.({ data });
      }),
    );
  }
  terminate() {
    this.alive = false;
  }
}

vi.stubGlobal('self', scope);
vi.stubGlobal('Worker', StandInWorker);

const { useStore } = await import('../store/index.ts');
const { OFF_THREAD_ABOVE_NODES } = await import('../store/passesSlice.ts');
const s = () => useStore.getState();

describe('the store with the pipeline worker', () => {
  beforeAll(async () => {
    await s().loadSample('gpt-oss-20b-l24-tp4');
  });

  it('loads a generated sample in the worker and counts its sites there (L+1 before the hoist)', () => {
    expect(s().work).toBeNull();
    expect(s().sourceName).toBe('GPT-OSS-20B · 24 layers · TP4');
    expect(s().base!.nodes.length).toBeGreaterThan(OFF_THREAD_ABOVE_NODES);
    expect(s().stages).toHaveLength(1);
    expect(s().sites['allreduce-rmsnorm']).toHaveLength(25);
  });

  it('runs the pipeline in the worker, keeping the stage it had, and follows the change', async () => {
    const base = s().stages[0];
    const progress: string[] = [];
    const unsubscribe = useStore.subscribe((st) => {
      if (st.work) progress.push(st.work.label);
    });
    const done = s().applyPipeline();
    expect(s().work).not.toBeNull();
    await done;
    unsubscribe();
    expect(s().stages).toHaveLength(4);
    expect(s().stages[0]).toBe(base);
    expect(progress).toContain('step 2/3: slice-hoist');
    expect(s().stages[3].matches).toHaveLength(49);
    expect(s().focus?.names.length).toBeGreaterThan(0);
  });

  it('leaves the graph and steps as they were when the work is cancelled', async () => {
    const before = { stages: s().stages, steps: s().steps, cursor: s().cursor };
    const done = s().undo();
    s().cancelWork();
    await done;
    expect({ stages: s().stages, steps: s().steps, cursor: s().cursor }).toEqual(before);
    expect(s().stages).toBe(before.stages);
    expect(s().notice?.text).toBe('Rewriting cancelled: the graph shown is unchanged.');
    expect(s().work).toBeNull();
    // A fresh worker is started for the next step and sent the base again; the page keeps its stages.
    await s().undo();
    expect(s().cursor).toBe(2);
    expect(s().stages[2]).toBe(before.stages[2]);
  });
});

describe('a TORCH_TRACE log through the pipeline worker', () => {
  const dir = new URL('../../../fixtures/trace/torch_trace/', import.meta.url).pathname;
  const log = () => readFileSync(dir + readdirSync(dir).find((f) => f.endsWith('.log'))!, 'utf8');

  it('imports the shown compile in the worker: its graphs cross as IR, the same as read on the page', async () => {
    const text = log();
    const progress: string[] = [];
    const unsubscribe = useStore.subscribe((st) => {
      if (st.work) progress.push(st.work.label);
    });
    await s().loadTraceLog(new Blob([text]), 'torch_trace');
    unsubscribe();
    const t = s().trace!;
    expect('key' in t.held).toBe(true);
    expect(t.shown).toBe('0/0');
    expect(progress).toContain('importing compile 0/0');
    const here = importTraceFrame(parseTorchTrace(text).frames.find((f) => f.compileId === '0/0')!);
    const dump = s().dump!;
    expect(dump.stages.map((st) => st.name)).toEqual(here.folder.stages.map((st) => st.name));
    expect(dump.stages.map((st) => st.graph)).toEqual(here.folder.stages.map((st) => st.graph));
    expect(dump.skipped).toEqual(here.folder.skipped);
    expect(s().outputCode.before!.code.launches.length).toBeGreaterThan(0);
    expect(s().provenance?.file).toBe('[0/0] provenance');
    expect(s().work).toBeNull();
  });
});
