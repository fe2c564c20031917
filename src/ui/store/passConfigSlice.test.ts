// The PassConfig panel's state: level → flags → passes, a pasted command line read as
// `fusionlab rewrite` reads the same words, the pipeline it drives, and the share link.

import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { resolveVllmConfig, splitVllmArgs } from '../../graph/passes/vllmConfig.ts';
import { checkUrlState } from '../urlState.ts';
import { useStore } from './index.ts';
import { choiceFromArgs, DEFAULT_PASS_CONFIG, resolvePassConfig } from './passConfigSlice.ts';
import { freshStore } from './testStore.ts';
import { snapshot } from './urlSync.ts';

vi.mock('../samples.ts', () => ({ SAMPLES: [], DEFAULT_SAMPLE_ID: 'none', findSample: () => undefined }));

// A real TP 2 capture: its all-reduces read bf16[s72, 96], 5 all-reduce + RMSNorm sites.
const LLAMA = readFileSync(new URL('../../../fixtures/capture/llama-tp2.py', import.meta.url), 'utf8');
const s = () => useStore.getState();

describe('the PassConfig panel’s state', () => {
  beforeEach(async () => {
    freshStore();
    await s().loadText(LLAMA, 'llama-tp2.py');
  });

  it('off, the pipeline is the pass picker’s; -O2 at TP 2 on Hopper runs vLLM’s passes and sets the gates', async () => {
    expect(s().pipelinePasses()).toEqual(['noop-elimination', 'slice-hoist', 'allreduce-rmsnorm']);
    await s().setPassConfig({ level: 2, tp: 2, platform: 'sm90' });
    expect(s().pipelinePasses()).toEqual(['noop-elimination', 'allreduce-rmsnorm', 'vllm-ir-lowering']);
    expect(s().gates).toMatchObject({ worldSize: 2, gpu: 'hopper', maxTokens: 8192 });
    await s().applyPipeline();
    expect(s().steps.map((st) => st.pass)).toEqual([
      'noop-elimination',
      'allreduce-rmsnorm',
      'vllm-ir-lowering',
    ]);
    expect(s().stages[2]!.matches).toHaveLength(5);
  });

  it('a level change and a flag override change the passes; -O1 drops the all-reduce fusion', async () => {
    await s().setPassConfig({ level: 1, tp: 2 });
    expect(s().pipelinePasses()).toEqual(['noop-elimination', 'vllm-ir-lowering']);
    await s().setPassConfig({ flags: { fuse_allreduce_rms: true } });
    expect(s().pipelinePasses()).toEqual(['noop-elimination', 'allreduce-rmsnorm', 'vllm-ir-lowering']);
  });

  it('the compile range chosen leaves out the all-reduce fusion above its max_token_num', async () => {
    // 0.01 MiB / (96 × 2 B) = 54 tokens: ranges (1, 54) and (55, 8192).
    await s().setPassConfig({ tp: 4, numbers: { fi_allreduce_fusion_max_size_mb: 0.01 } });
    const r = resolvePassConfig(s().passConfig!, s().stages[0]!.graph);
    expect(r.ranges.ranges).toEqual([
      { start: 1, end: 54 },
      { start: 55, end: 8192 },
    ]);
    expect(r.rangeFrom).toBe('first');
    expect(s().pipelinePasses()).toContain('allreduce-rmsnorm');
    await s().setPassConfig({ range: { start: 55, end: 8192 } });
    expect(s().pipelinePasses()).not.toContain('allreduce-rmsnorm');
  });

  it("a dump folder's vLLM log names the range its graphs were compiled for, and the config takes it", async () => {
    s().loadStageFolder(
      [
        { path: 'llama-tp2.py', text: LLAMA },
        {
          path: 'vllm.log',
          text: 'INFO [backends.py:390] Compiling a graph for compile range (55, 8192) takes 9.3 s\n',
        },
      ],
      'dump',
    );
    expect(s().dump?.compileRange).toEqual({ start: 55, end: 8192 });
    await s().setPassConfig({ tp: 4, numbers: { fi_allreduce_fusion_max_size_mb: 0.01 } });
    const r = resolvePassConfig(s().passConfig!, s().stages[0]!.graph, s().dump?.compileRange);
    expect(r).toMatchObject({ range: { start: 55, end: 8192 }, rangeFrom: 'dump' });
    expect(s().pipelinePasses()).not.toContain('allreduce-rmsnorm');
    // A range chosen in the panel wins over the log's.
    await s().setPassConfig({ range: { start: 1, end: 54 } });
    expect(s().pipelinePasses()).toContain('allreduce-rmsnorm');
  });

  it('a pasted command line gives what the CLI’s parse of the same words gives', async () => {
    const line = `vllm serve meta-llama/Llama-3.1-8B -O3 -tp 2 \\\n  -cc.pass_config.fuse_allreduce_rms=false --compilation-config '{"custom_ops": ["+rms_norm"], "pass_config": {"enable_sp": true}}'`;
    await s().pasteCommandLine(line);
    expect(s().commandLineError).toBeNull();
    const argv = [
      '-O3',
      '-tp',
      '2',
      '-cc.pass_config.fuse_allreduce_rms=false',
      '--compilation-config',
      '{"custom_ops": ["+rms_norm"], "pass_config": {"enable_sp": true}}',
    ];
    const cli = resolveVllmConfig(splitVllmArgs(argv).vllm!, { platform: 'sm90' });
    const app = resolvePassConfig(s().passConfig!, undefined).config;
    expect(app.passes).toEqual(cli.passes);
    expect(app.flags).toEqual(cli.flags);
    expect(app.passes).toEqual([
      'noop-elimination',
      'sequence-parallelism',
      'norm-quant',
      'vllm-ir-lowering',
    ]);
    expect(s().gates.worldSize).toBe(2);
  });

  it('a bad line says what and where, and leaves the config as it was', async () => {
    await s().setPassConfig({ level: 1 });
    await s().pasteCommandLine(`-O2 --compilation-config '{"pass_config": {`);
    expect(s().commandLineError).toMatch(/unclosed ' opened at column 26/);
    await s().pasteCommandLine('-O2 -cc.pass_config.fuse_everything=true');
    expect(s().commandLineError).toMatch(
      /-cc\.pass_config\.fuse_everything: PassConfig has no field 'fuse_everything'/,
    );
    await s().pasteCommandLine('vllm serve model');
    expect(s().commandLineError).toMatch(/no vLLM compilation flag/);
    expect(s().passConfig!.level).toBe(1);
  });

  it('rides in the share link, checked field by field', async () => {
    await s().pasteCommandLine('-O1 -tp 4 -cc.custom_ops=+rms_norm,-quant_fp8 --compile-range 1-256');
    await s().setPassConfig({ platform: 'sm100' });
    const snap = snapshot(s())!;
    expect(snap.passConfig).toEqual({
      ...DEFAULT_PASS_CONFIG,
      level: 1,
      tp: 4,
      platform: 'sm100',
      customOps: ['+rms_norm', '-quant_fp8'],
      range: { start: 1, end: 256 },
    });
    expect(checkUrlState(JSON.parse(JSON.stringify(snap))).passConfig).toEqual(snap.passConfig);
    const bad = { ...snap, passConfig: { ...snap.passConfig!, flags: { fuse_all: true } } };
    expect(() => checkUrlState(bad)).toThrow(/passConfig\.flags\.fuse_all is not a field/);
    const backwards = { ...snap, passConfig: { ...snap.passConfig!, range: { start: 9, end: 3 } } };
    expect(() => checkUrlState(backwards)).toThrow(/passConfig\.range\.end is 3, below start 9/);
    // Off: no field in the link (older links read as off).
    await s().setPassConfig(null);
    expect(snapshot(s())!.passConfig).toBeUndefined();
    expect(choiceFromArgs({ passConfig: {}, numbers: {} }, DEFAULT_PASS_CONFIG)).toEqual(DEFAULT_PASS_CONFIG);
  });
});
