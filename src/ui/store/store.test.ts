// The store's rewrite history against the real Qwen2 TP2 dump and the real passes: counts,
// single-site and whole-pass steps, undo/redo, scrubbing, gates recounting, and bad input.

import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { useStore } from './index.ts';
import { freshStore, rewrittenFragment } from './testStore.ts';
import { snapshot } from './urlSync.ts';
import { reportIsStale } from './runSlice.ts';
import { decodeUrlState, encodeUrlState, placeUrlState, readUrlState, withViewCentre } from '../urlState.ts';
import { PR_BEFORE, QWEN_TP2 } from '../testFixtures.ts';

// The built-in sample table pulls in the sample generator; these tests load text directly.
vi.mock('../samples.ts', () => ({ SAMPLES: [], DEFAULT_SAMPLE_ID: 'none', findSample: () => undefined }));

const s = () => useStore.getState();
const fusable = () => s().sites['allreduce-rmsnorm'].length;
const fusedNodes = () =>
  s().stages[s().cursor].graph.nodes.filter((n) => {
    const a = n.args[0];
    return (
      a !== null &&
      typeof a === 'object' &&
      !Array.isArray(a) &&
      a.kind === 'op' &&
      a.target.includes('fused_allreduce_norm')
    );
  }).length;

describe('rewrite history in the store', () => {
  beforeEach(() => {
    freshStore();
    s().loadText(QWEN_TP2, 'qwen2-paral2_layer1-r0.py');
  });

  it('refuses a dropped or pasted blob over the import limit by its size, before reading it, and keeps the graph', async () => {
    const shown = s().base;
    const big = new Blob(['x = 1\n'.repeat(Math.ceil((17 * 2 ** 20) / 6))]);
    await s().loadBlob(big, 'big.py');
    expect(s().importError?.message).toMatch(/^input is 17\.0 MB \(\d+ bytes\), over the limit of 16\.0 MB/);
    // The editor shows the head of it: the error is about its size, not a line in it.
    expect(s().importError!.text.length).toBeLessThanOrEqual(100_000);
    expect(s().base).toBe(shown);
    // A text over the limit by its length is refused the same way, without the worker.
    await s().loadText('y'.repeat(16 * 2 ** 20 + 1), 'long.py');
    expect(s().importError?.message).toMatch(/over the limit of 16\.0 MB/);
    expect(s().importError!.text.length).toBeLessThanOrEqual(100_000);
    await s().loadBlob(new Blob([QWEN_TP2]), 'qwen.py');
    expect(s().importError).toBeNull();
    expect(s().sourceName).toBe('qwen.py');
  });

  it('counts the three all-reduce + norm sites of the real TP2 dump', () => {
    expect(s().importError).toBeNull();
    expect(s().stages).toHaveLength(1);
    expect(fusable()).toBe(3);
    expect(s().diagnostics.filter((d) => d.blocker !== undefined)).toEqual([]);
  });

  it('applies one site, then the rest, and undoes and redoes them', () => {
    const [first, ...rest] = s().sites['allreduce-rmsnorm'];
    s().applyPass('allreduce-rmsnorm', first);
    expect(s().cursor).toBe(1);
    expect(fusedNodes()).toBe(1);
    expect(s().sites['allreduce-rmsnorm']).toEqual(rest);

    s().applyPass('allreduce-rmsnorm');
    expect(fusedNodes()).toBe(3);
    expect(fusable()).toBe(0);

    s().undo();
    expect(s().cursor).toBe(1);
    expect(fusedNodes()).toBe(1);
    s().undo();
    expect(fusable()).toBe(3);
    s().redo();
    s().redo();
    expect(fusedNodes()).toBe(3);
    expect(s().steps).toEqual([{ pass: 'allreduce-rmsnorm', site: first }, { pass: 'allreduce-rmsnorm' }]);
  });

  it('scrubs back to an earlier stage and branches from it when a pass is applied there', () => {
    s().applyPipeline();
    expect(s().stages).toHaveLength(4);
    s().setScrub(0);
    expect(s().scrub).toBe(0);
    expect(fusable()).toBe(3);
    s().applyPass('allreduce-rmsnorm', s().sites['allreduce-rmsnorm'][0]);
    expect(s().steps).toHaveLength(1);
    expect(s().scrub).toBeNull();
    expect(fusedNodes()).toBe(1);
  });

  it('recounts when a gate changes: world size 3 blocks every site, naming the gate', () => {
    s().setGates({ worldSize: 3 });
    expect(fusable()).toBe(0);
    const blocked = s().diagnostics.filter((d) => d.blocker === 'world size');
    expect(blocked).toHaveLength(3);
    expect(blocked[0].reason).toMatch(/3/);
    s().setGates({ worldSize: 2 });
    expect(fusable()).toBe(3);
  });

  it('under the compile-range token gate, too many tokens blocks the fusion until max tokens fits', () => {
    // The Qwen2 dumps fix 32768 tokens, past every limit; the PR fragment's token dim is symbolic.
    s().setGates({ tokenGate: 'compile-range' });
    expect(fusable()).toBe(0);
    expect(s().diagnostics.map((d) => d.blocker)).toEqual([
      'too many tokens',
      'too many tokens',
      'too many tokens',
    ]);
    s().loadText(PR_BEFORE, 'pr28841-before.fragment.txt');
    s().setGates({ worldSize: 4, maxTokens: 8192 });
    s().applyPass('slice-hoist');
    expect(fusable()).toBe(0);
    // Hopper at TP4: 2 MB / (2880 × 2 B) = 364 tokens.
    expect(s().diagnostics[0].reason).toContain('max_token_num 364');
    s().setGates({ maxTokens: 364 });
    expect(fusable()).toBe(1);
    s().setGates({ maxTokens: 365 });
    expect(fusable()).toBe(0);
  });

  it('the TP group gate: sites over another group count only once that group is the TP group', () => {
    s().loadText(QWEN_TP2.replaceAll("'tp:0'", "'dp:0'"), 'qwen2-dp.py');
    expect(fusable()).toBe(0);
    expect(s().diagnostics.map((d) => d.blocker)).toEqual(['group', 'group', 'group']);
    s().setGates({ tpGroup: 'dp:0' });
    expect(fusable()).toBe(3);
    expect(snapshot(s())!.gates?.tpGroup).toBe('dp:0');
  });

  it('a dump folder: its stages in compile order, the first shown; stepping shows the next and the steps replay on it', async () => {
    const dir = new URL('../../../fixtures/capture/vllm-dump-gpt-oss-before-tp2/', import.meta.url);
    const files = ['after_fix_functionalization-0.py', 'before_noop_elimination-0.py', 'notes.md'].map(
      (path) => ({ path, text: path.endsWith('.md') ? '# notes' : readFileSync(new URL(path, dir), 'utf8') }),
    );
    s().loadStageFolder(files, 'vllm-dump');
    expect(s().importError).toBeNull();
    expect(s().dump?.stages.map((st) => st.name)).toEqual([
      'before_noop_elimination-0',
      'after_fix_functionalization-0',
    ]);
    expect(s().dump?.skipped.map((f) => f.path)).toEqual(['notes.md']);
    expect(s().sourceName).toBe('vllm-dump · before_noop_elimination-0');
    const first = fusable();
    expect(first).toBeGreaterThan(0);
    s().applyPass('allreduce-rmsnorm');
    expect(fusedNodes()).toBe(first);
    // The file names (`{stage}-0.py`) say TP > 1: the capture opens at world size 2, not the default 4.
    expect(s().gates.worldSize).toBe(2);
    await s().showDumpStage(1);
    expect(s().dump?.shown).toBe(1);
    // Switching the stage keeps the rewrite history: the step replays on the new stage.
    expect(s().steps).toEqual([{ pass: 'allreduce-rmsnorm' }]);
    expect(s().rewriteError).toBeNull();
    // After fix_functionalization the norms are in-place calls: no vLLM pattern sees them.
    expect(fusable()).toBe(0);
    expect(fusedNodes()).toBe(0);
    s().loadText(QWEN_TP2, 'qwen2.py');
    expect(s().dump).toBeNull();
    s().loadStageFolder([{ path: 'a.md', text: 'x' }], 'empty');
    expect(s().importError?.message).toContain('empty: no graph among its 1 files');
  });

  it('replays the steps under new gates, so applied rewrites follow the gate', () => {
    s().applyPass('allreduce-rmsnorm');
    expect(fusedNodes()).toBe(3);
    s().setGates({ worldSize: 3 });
    expect(fusedNodes()).toBe(0);
    s().setGates({ worldSize: 8 });
    expect(fusedNodes()).toBe(3);
  });

  it('names the slice that blocks the PR fragment and hoists it', () => {
    s().loadText(PR_BEFORE, 'pr28841-before.fragment.txt');
    expect(s().importError).toBeNull();
    const d = s().diagnostics.find((x) => x.blocker === 'slice_1');
    expect(d?.fix).toBe('run slice-hoist');
    expect(fusable()).toBe(0);
    s().applyPass('slice-hoist');
    expect(fusable()).toBe(1);
  });

  it('installs another graph with its stages, folds and view in one update, never a base over old stages', () => {
    s().setCollapsed(['model.layers.0']);
    const centre = { node: 'slice_1', dx: 0, dy: 0, k: 1 };
    const seen: { matches: boolean; folds: number; centre: unknown }[] = [];
    const unsubscribe = useStore.subscribe((st) =>
      seen.push({
        matches: st.stages[0]?.graph === st.base,
        folds: st.collapsed.size,
        centre: st.viewCentre,
      }),
    );
    s().loadText(PR_BEFORE, 'pr28841-before.fragment.txt', { steps: [], view: centre });
    unsubscribe();
    expect(seen.every((x) => x.matches)).toBe(true);
    // The update that brings the graph brings its folds (none: a small graph opens unfolded) and view.
    expect(seen[0]).toEqual({ matches: true, folds: 0, centre });
    expect(s().sourceName).toBe('pr28841-before.fragment.txt');
  });

  it('keeps the loaded graph and reports line and column for broken text', () => {
    const before = s().base;
    const broken = [
      'slice_1: "bf16[s72, 2880]" = torch.ops.aten.slice.Tensor(getitem, 1, 0, 2880)',
      'all_reduce_1: "bf16[s72, 2880" = torch.ops.vllm.all_reduce.default(slice_1, \'tp:0\')',
    ].join('\n');
    s().setBottomTab('run');
    s().loadText(broken, 'broken.py');
    expect(s().base).toBe(before);
    // The error shows in the editor: the source tab comes up.
    expect(s().bottomTab).toBe('source');
    expect(s().importError).toEqual({
      message: 'expected \']\' to close the shape in type "bf16[s72, 2880"',
      line: 2,
      col: 30,
      text: broken,
    });
    s().setDraft(broken);
    s().loadText(QWEN_TP2, 'again.py');
    expect(s().importError).toBeNull();
    // A successful import replaces whatever was being edited.
    expect(s().draft).toBeNull();
  });

  it('puts the steps in effect (not the undone ones), gates and selection in the URL state, and restores them', async () => {
    const site = s().sites['allreduce-rmsnorm'][1];
    s().applyPass('allreduce-rmsnorm', site);
    s().applyPass('allreduce-rmsnorm');
    s().undo();
    s().setGates({ worldSize: 8 });
    s().select(site, 'after');
    const state = snapshot(s())!;
    expect(state.source).toEqual({ text: QWEN_TP2, name: 'qwen2-paral2_layer1-r0.py' });
    expect(state.steps).toEqual([{ pass: 'allreduce-rmsnorm', site }]);
    expect(state.gates?.worldSize).toBe(8);
    expect(state.selected).toBe(site);
    // The cost model's and the overlay's controls too: a link reopens the same numbers.
    s().setProfile('B200-NVLink');
    s().setCostTp(2);
    s().setOverlayMetric('time');
    expect(snapshot(s())!.cost).toMatchObject({ profile: 'B200-NVLink', tp: 2 });
    expect(snapshot(s())!.overlay).toMatchObject({ metric: 'time' });

    const back = await decodeUrlState(await encodeUrlState(state));
    freshStore();
    if (!('text' in back.source)) throw new Error('expected text source');
    s().loadText(back.source.text, back.source.name, { steps: back.steps, selected: back.selected });
    expect(s().cursor).toBe(1);
    expect(fusedNodes()).toBe(1);
    expect(s().selected).toBe(site);
  });

  it('carries where the views rest in the URL state, restores it with the graph, and forgets it for another graph', async () => {
    const centre = { node: 'all_reduce_2', dx: 3.5, dy: -20, k: 1.5 };
    s().setViewCentre(centre);
    // The state leaves the centre out (it changes on every pan); the link carries it beside.
    expect(snapshot(s())!.view?.centre).toBeUndefined();
    const placed = await placeUrlState('http://h/?test=1', snapshot(s())!);
    const back = (await readUrlState(new URL(withViewCentre(placed.href, s().viewCentre))))!;
    expect(back.view?.centre).toEqual(centre);

    freshStore();
    if (!('text' in back.source)) throw new Error('expected text source');
    s().loadText(back.source.text, back.source.name, { steps: back.steps, view: back.view?.centre });
    expect(s().viewCentre).toEqual(centre);
    // Another graph opens at its own first view: a node of the same name there is another place.
    s().loadText(QWEN_TP2, 'again.py');
    expect(s().viewCentre).toBeNull();
  });
});

describe('results belong to the graph, steps and gates they ran', () => {
  beforeEach(() => {
    rewrittenFragment();
  });

  it('clears the report when another graph loads, and drops a run that ends after it', async () => {
    await s().run();
    expect(s().runStatus).toBe('done');
    expect(s().report?.outputs.length).toBeGreaterThan(0);
    expect(reportIsStale(s())).toBe(false);
    s().loadText(QWEN_TP2, 'qwen2-paral2_layer1-r0.py');
    expect(s().report).toBeNull();
    expect(s().runStatus).toBe('idle');

    // A run still going when another graph loads writes nothing (the same text again is another graph).
    s().loadText(PR_BEFORE, 'pr28841-before.fragment.txt');
    const pending = s().run();
    s().loadText(PR_BEFORE, 'copy.txt');
    await pending;
    expect(s().report).toBeNull();
    expect(s().runStatus).toBe('idle');
  });

  it('marks the report stale when the steps or the gates change, and current again when they come back', async () => {
    await s().run();
    s().undo();
    expect(reportIsStale(s())).toBe(true);
    s().redo();
    expect(reportIsStale(s())).toBe(false);
    s().setGates({ worldSize: 8 });
    expect(reportIsStale(s())).toBe(true);
    expect(s().report).not.toBeNull();
  });
});

describe('the views follow the change', () => {
  beforeEach(() => {
    freshStore();
    s().loadText(QWEN_TP2, 'qwen2-paral2_layer1-r0.py');
  });

  it('points at the fused node after one site, at the restored pair after undo, and along the scrubber', () => {
    const site = s().sites['allreduce-rmsnorm'][1];
    s().applyPass('allreduce-rmsnorm', site);
    // One node per rewritten site: the fused op the match produced.
    const fused = s().stages[1].matches[0].produced[0];
    expect(s().stages[1].graph.nodes.find((n) => n.name === fused)?.op).toBe(
      'higher_order.auto_functionalized',
    );
    expect(s().focus?.names).toEqual([fused]);
    const nonce = s().focus!.nonce;

    s().undo();
    expect(s().focus?.nonce).toBe(nonce + 1);
    expect(s().focus?.names).toEqual([site]);

    s().redo();
    s().applyPass('allreduce-rmsnorm');
    s().setScrub(1);
    // Back from stage 2 to 1: the two sites stage 2 fused are unfused again.
    const back = s().focus!.names;
    expect(back).toHaveLength(2);
    for (const n of back)
      expect(s().stages[1].graph.nodes.find((m) => m.name === n)?.op).toBe('vllm.all_reduce.default');
    expect(back).not.toContain(site);
  });
});

describe('importing a module without a return', () => {
  it('warns that forward() returns nothing, naming its line; a module that returns gets no such warning', () => {
    freshStore();
    const noReturn = QWEN_TP2.replace(/\n\s*return \([^)]*\)\s*$/m, '\n');
    expect(noReturn).not.toMatch(/^\s*return /m);
    s().loadText(noReturn, 'no-return.py');
    expect(s().importError).toBeNull();
    const line = QWEN_TP2.slice(0, QWEN_TP2.search(/^\s*def forward\(/m)).split('\n').length;
    expect(s().warnings).toContain(
      `line ${line}: forward() has no return statement: the graph has no declared outputs, so its last values are taken as outputs`,
    );
    s().loadText(QWEN_TP2, 'qwen2-paral2_layer1-r0.py');
    expect(s().warnings.join()).not.toContain('no return statement');
  });
});
