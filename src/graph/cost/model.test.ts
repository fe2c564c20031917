import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import { parseFx } from '../fx/parse.ts';
import type { Graph } from '../ir.ts';
import { runPipeline } from '../passes/pipeline.ts';
import { generateSample } from '../samples/index.ts';
import { PROFILES } from './profiles.ts';
import {
  allReduceBytesPerRank,
  bindDim,
  graphTotals,
  nodeCost,
  predictGraph,
  rewriteSavings,
} from './model.ts';

const before = parseFx(
  readFileSync(new URL('../../../fixtures/fx/seed/pr28841-before.fragment.txt', import.meta.url), 'utf8'),
).graph;
const stages = runPipeline(before, ['slice-hoist', 'allreduce-rmsnorm'], { gpu: 'blackwell' }).stages;
const hoisted = stages[0]!.graph,
  fused = stages[1]!.graph;
const node = (g: Graph, name: string) => g.nodes.find((n) => n.name === name)!;
const T = 4096;

describe('collective bytes', () => {
  it('per rank for ring, one-shot, two-shot', () => {
    const S = 1 << 20;
    expect(allReduceBytesPerRank(S, 4, 'ring')).toBe(1.5 * S);
    expect(allReduceBytesPerRank(S, 4, 'one-shot')).toBe(3 * S);
    expect(allReduceBytesPerRank(S, 8, 'two-shot')).toBe(1.75 * S);
    expect(allReduceBytesPerRank(S, 1, 'ring')).toBe(0);
  });

  it("the seed block's all-reduce shrinks by exactly 6.25 % once the slice is hoisted (2880 of 3072 columns)", () => {
    for (const algorithm of ['ring', 'one-shot', 'two-shot'] as const) {
      const env = { tokens: T, tp: 4, algorithm };
      const a = nodeCost(before, node(before, 'all_reduce_1'), env);
      const b = nodeCost(hoisted, node(hoisted, 'all_reduce_1'), env);
      expect(a.bytesRead).toBe(T * 3072 * 2);
      expect(b.bytesRead).toBe(T * 2880 * 2);
      expect(1 - b.collectiveBytesPerRank! / a.collectiveBytesPerRank!).toBe(0.0625);
    }
  });
});

describe('what the fusion saves', () => {
  it('one kernel launch and one round trip of the activation through HBM, same link traffic', () => {
    const S = T * 2880 * 2;
    for (const key of ['H100-NVLink', 'H200-NVLink', 'B200-NVLink']) {
      const p = PROFILES[key]!;
      const s = rewriteSavings(hoisted, fused, p, { tp: 4, tokens: T, algorithm: 'one-shot' });
      expect(s.launches).toBe(1);
      // The all-reduce's write of its result and the norm's read of it.
      expect(s.hbmBytes).toBe(2 * S);
      expect(s.linkBytesPerRank).toBe(0);
      expect(s.us).toBeCloseTo(p.launchUs + ((2 * S) / p.hbmBytesPerSec) * 1e6, 9);
    }
  });

  it('the hoist alone saves link bytes: 192 of 3072 columns, (N−1)·ΔS per rank one-shot', () => {
    const s = rewriteSavings(before, hoisted, PROFILES['H100-NVLink']!, {
      tp: 8,
      tokens: T,
      algorithm: 'one-shot',
    });
    expect(s.linkBytesPerRank).toBe(7 * T * 192 * 2);
    expect(s.launches).toBe(0);
  });
});

describe('graph prediction', () => {
  it("binds symbolic dims and names each node's bound", () => {
    expect(bindDim('s72', 100)).toBe(100);
    expect(bindDim('2*s0 + 1', 100)).toBe(201);
    expect(bindDim('(s0 - 4)//2', 100)).toBe(48);
    const g = parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 8 })).graph;
    const r = predictGraph(g, PROFILES['B200-NVLink']!, { tp: 8, tokens: 8192 });
    const by = new Map(r.perNode.map((n) => [n.name, n]));
    expect(by.get('view')!.us).toBe(0);
    expect(by.get('all_reduce')!.bound).toBe('network');
    // qkv projection: 8192 × 2880 × 1280 × 2 FLOPs on B200 — compute-bound.
    expect(by.get('addmm')!.bound).toBe('compute');
    expect(r.total_us).toBeCloseTo(
      r.perNode.reduce((s, n) => s + n.us, 0),
      9,
    );
    // Ring at 8 ranks: 14 steps; 2·7/8·S bytes per rank over 900 GB/s, then local HBM traffic.
    const S = 8192 * 2880 * 2;
    const p = PROFILES['B200-NVLink']!;
    expect(by.get('all_reduce')!.us).toBeCloseTo(
      p.launchUs +
        14 * p.linkStepLatencyUs +
        ((1.75 * S) / p.nvlinkBytesPerSec) * 1e6 +
        ((2 * S) / p.hbmBytesPerSec) * 1e6,
      9,
    );
  });

  it('every profile number has a source', () => {
    for (const p of Object.values(PROFILES)) {
      expect(Object.keys(p.sources).sort()).toEqual(['bf16', 'hbm', 'latency', 'launch', 'nvlink']);
      for (const s of Object.values(p.sources)) expect(s.length).toBeGreaterThan(20);
    }
  });
});

describe('auto_functionalized v1 and v2 cost the same', () => {
  // Every capture compiled both ways (fixtures/capture: `x-v2.py` beside `x.py`, and their
  // str(graph) twins). v2 writes a sliced argument back into its base inside the node, where
  // v1's graph spells it as a slice_scatter: the same kernels either way.
  const DIR = new URL('../../../fixtures/capture/', import.meta.url).pathname;
  const load = (f: string) => importGraph(readFileSync(DIR + f, 'utf8'), { fileName: f }).graph;
  const pairs = readdirSync(DIR)
    .filter((f) => /-v2\./.test(f))
    .map((v2) => [v2.replace('-v2.', '.'), v2] as const);

  it('finds the Llama pair and its str(graph) twin', () => {
    expect(pairs).toEqual(
      expect.arrayContaining([
        ['llama-tp2.py', 'llama-tp2-v2.py'],
        ['llama-tp2.graph.txt', 'llama-tp2-v2.graph.txt'],
      ]),
    );
  });

  for (const [v1, v2] of pairs) {
    it(`${v1} and ${v2}: launches, HBM bytes, FLOPs, link bytes and time`, () => {
      const a = load(v1),
        b = load(v2);
      for (const [key, tp, tokens] of [
        ['H100-NVLink', 2, 8192],
        ['B200-NVLink', 8, 7],
      ] as const) {
        const opts = { tp, tokens };
        const ta = graphTotals(a, PROFILES[key]!, opts),
          tb = graphTotals(b, PROFILES[key]!, opts);
        expect(ta.launches).toBeGreaterThan(0);
        expect(tb).toEqual(ta);
      }
    });
  }
});
