// Every built-in sample loads through the store without an import error, and the fusion counts
// are vLLM's: L+1 sites before the slice is hoisted in GPT-OSS, 2L+1 after; 2L+1 in Llama;
// 3 in the real Qwen2 TP2/TP4 dumps, none at TP1.

import { describe, expect, it } from 'vitest';
import { SAMPLES, findSample, DEFAULT_SAMPLE_ID } from './samples.ts';
import { useStore } from './store/index.ts';
import { drawnNodeCount } from './graph/scene.ts';

const s = () => useStore.getState();
const fusable = () => s().sites['allreduce-rmsnorm']?.length;

describe('built-in samples', () => {
  it('have unique ids and the default exists', () => {
    expect(new Set(SAMPLES.map((x) => x.id)).size).toBe(SAMPLES.length);
    expect(findSample(DEFAULT_SAMPLE_ID)).toBeDefined();
  });

  for (const sample of SAMPLES) {
    it(`${sample.id} loads without an import error`, () => {
      s().loadSample(sample.id);
      expect(s().importError).toBeNull();
      expect(s().notice).toBeNull();
      expect(s().source).toEqual({ sample: sample.id });
      expect(s().stages[0].graph.nodes.length).toBeGreaterThan(0);
      // A label that states a node count states the one the views and the status bar show.
      const stated = /\(([\d,]+) nodes\)/.exec(sample.label)?.[1];
      if (stated) expect(drawnNodeCount(s().stages[0].graph)).toBe(Number(stated.replaceAll(',', '')));
    });
  }

  it.each([
    ['gpt-oss-20b-l1-tp2', 2, 3],
    ['gpt-oss-20b-l1-tp4', 2, 3],
    ['gpt-oss-20b-l1-tp8', 2, 3],
    ['gpt-oss-20b-l24-tp2', 25, 49],
    ['gpt-oss-20b-l24-tp4', 25, 49],
    ['gpt-oss-20b-l24-tp8', 25, 49],
    ['gpt-oss-20b-l300-tp4', 301, 601],
  ])('%s: %i fusable sites, %i once the slice is hoisted', (id, before, after) => {
    s().loadSample(id);
    expect(fusable()).toBe(before);
    s().applyPass('slice-hoist');
    expect(fusable()).toBe(after);
  });

  it.each([
    ['llama-3.1-8b-l32-tp4', 65],
    // The FP8 Llama at TP 2: every all-reduced norm fuses with its static quant (pattern_code 2).
    ['llama-3.1-8b-fp8-static-l32-tp2', 65],
    ['llama-3.1-8b-fp8-static-l32-tp1', 0],
    ['qwen3-moe-l48-tp4', 97],
    ['qwen3-8b-l36-tp1', 0],
    ['qwen2-tp1', 0],
    ['qwen2-tp2', 3],
    ['qwen2-tp4', 3],
    ['pr-before', 0],
    ['pr-after', 0],
  ])('%s: %i fusable sites as loaded', (id, n) => {
    s().loadSample(id);
    expect(fusable()).toBe(n);
  });

  it('qwen3-8b-l36-tp1: one QK-norm + RoPE site per layer (vLLM QKNormRoPEFusionPass), 36', () => {
    s().loadSample('qwen3-8b-l36-tp1');
    expect(s().sites['qk-norm-rope']).toHaveLength(36);
  });

  it('set the world-size gate to the TP degree they were made at', () => {
    for (const [id, tp] of [
      ['qwen2-tp1', 1],
      ['qwen2-tp4', 4],
      ['gpt-oss-20b-l24-tp8', 8],
      ['gpt-oss-20b-l1-tp2', 2],
    ] as const) {
      s().loadSample(id);
      expect(s().gates.worldSize).toBe(tp);
    }
  });
});
