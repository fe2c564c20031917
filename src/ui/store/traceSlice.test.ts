// A TORCH_TRACE log in the store (read on the page here: no worker in Node): the compiles, breaks
// and recompiles of the real fixture, the first compile's graphs on the dump stage scrubber, another
// compile picked, the output code kept for its reader, and a truncated log loading what it can.

import { readdirSync, readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { useStore } from './index.ts';
import { freshStore } from './testStore.ts';

vi.mock('../samples.ts', () => ({ SAMPLES: [], DEFAULT_SAMPLE_ID: 'none', findSample: () => undefined }));

const DIR = new URL('../../../fixtures/trace/torch_trace/', import.meta.url).pathname;
const LOG = readFileSync(DIR + readdirSync(DIR).find((f) => f.endsWith('.log'))!, 'utf8');
const s = () => useStore.getState();

describe('a TORCH_TRACE log in the app', () => {
  beforeEach(() => freshStore());

  it('lists compiles, breaks and recompiles and shows the first compile on the stage scrubber', async () => {
    await s().loadTraceLog(new Blob([LOG]), 'torch_trace');
    const t = s().trace!;
    expect(t.outline.frames.map((f) => f.compileId)).toEqual(['0/0', '0/1', '1/0', '1/1']);
    expect(t.outline.breaks.map((b) => b.reason)).toEqual([
      'Call to torch._dynamo.graph_break()',
      'Call to torch._dynamo.graph_break()',
    ]);
    expect(t.outline.recompiles.map((r) => r.guard)).toEqual([
      "tensor 'tokens' size mismatch at index 0. expected 8, actual 12",
      "tensor 'x' size mismatch at index 0. expected 8, actual 12",
    ]);
    expect(t.shown).toBe('0/0');
    expect(s().work).toBeNull();
    // Dynamo's torch-level graph and the pre-grad ones are stages too (their calls mapped to ops).
    expect(s().dump?.stages.map((st) => st.name)).toEqual([
      'dynamo',
      'pre_grad.before',
      'pre_grad.after',
      'aot_inference',
      'joint.before',
      'joint.after',
      'post_grad.before',
      'post_grad',
    ]);
    expect(s().dump?.skipped.map((f) => f.path)).toEqual(['[0/0]/output_code', '[0/0]/provenance']);
    expect(t.outputCode).toMatchObject({ kind: 'output_code', compileId: '0/0' });
    expect(t.outputCode!.text).toContain('def call(');
    // The compile's kernels are on the graphs it shows: its output code and provenance mapping.
    expect(s().outputCode.before?.file).toBe('[0/0] output code');
    expect(s().outputCode.before!.code.launches.length).toBeGreaterThan(0);
    expect(s().provenance?.file).toBe('[0/0] provenance');
  });

  it('picking a compile and its post-grad stage shows that graph', async () => {
    await s().loadTraceLog(new Blob([LOG]), 'torch_trace');
    await s().showTraceFrame('1/1');
    expect(s().trace!.shown).toBe('1/1');
    await s().showDumpStage(s().dump!.stages.findIndex((st) => st.name === 'post_grad'));
    expect(s().sourceName).toBe('torch_trace [1/1] · post_grad');
    expect(s().base!.nodes.some((n) => n.name === 'embedding')).toBe(false);
    expect(s().base!.nodes.some((n) => n.op === 'aten.mm.default')).toBe(true);
  });

  it('a log cut off mid-line: the line is named, the compiles before it are listed', async () => {
    const cut = LOG.slice(0, LOG.indexOf('"recompile_reasons"') + 5);
    await s().loadTraceLog(new Blob([cut]), 'cut.log');
    const t = s().trace!;
    expect(t.outline.frames.map((f) => f.compileId)).toEqual(['0/0', '1/0']);
    expect(t.outline.problems).toHaveLength(1);
    expect(t.outline.problems[0]!.message).toBe('the log ends mid-line (truncated)');
    expect(s().notice?.text).toMatch(/cut\.log: 1 line could not be read/);
  });
});
