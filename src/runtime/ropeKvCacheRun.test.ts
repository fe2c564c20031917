// rope-kvcache runs before and after, on the CPU reference and on WebGPU: vLLM's
// QKRoPEKVCacheTestModel as torch.compile captured it (fixtures/capture/tp/rope-kvcache.*; ROCm),
// its rotary + unified_kv_cache_update pair replaced by fused_rope_and_unified_kv_cache_update.
// The layer's paged KV cache and slot mapping are seeded per layer name (lower/kvCache.ts) and the
// caches after the write are outputs, so the comparison covers what the fused kernel writes to the
// cache as well as q and k. The fused op runs as the pair's kernels: bitwise, nothing fed.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../graph/formats.ts';
import { runPipeline } from '../graph/passes/pipeline.ts';
import { compareGraphs, runGraph } from './index.ts';
import { hostValues, toHostTensor } from './hostTensor.ts';
import { freshSeed, tinyRuns } from './testRuns.ts';
import { KV_BLOCK_SIZE, kvCacheBlocks, kvCacheName, slotMappingName } from './lower/kvCache.ts';
import { PRESETS } from './presets.ts';

const run = tinyRuns({ ranks: 1 });
const DIR = new URL('../../fixtures/capture/tp/', import.meta.url).pathname;
const PASSES = ['rope-kvcache'];
const LAYER = 'model.layers.0.self_attn.attn';

/** A permutation of free slots with the last token padded (PAD_SLOT_ID = −1), as vLLM's slot_mapping holds. */
function slotMapping(tokens: number, seed: number): number[] {
  const slots = kvCacheBlocks(tokens) * KV_BLOCK_SIZE;
  const free = Array.from({ length: slots }, (_, i) => i);
  let s = seed >>> 0;
  for (let i = slots - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [free[i], free[j]] = [free[j]!, free[i]!];
  }
  return free.slice(0, tokens).map((slot, t) => (t === tokens - 1 && tokens > 1 ? -1 : slot));
}

describe('the rotary + KV cache write fusion, run', { timeout: 600_000 }, () => {
  it.each(['rope-kvcache.neox.bf16.py', 'rope-kvcache.gptj.bf16.py'])(
    '%s: after ≡ before bitwise on CPU and WebGPU, caches included, nothing fed',
    async (file) => {
      const before = importGraph(readFileSync(DIR + file, 'utf8'), { fileName: file }).graph;
      const r = runPipeline(before, PASSES, { platform: 'rocm', worldSize: 1 });
      expect(r.stages[0]!.matches).toHaveLength(1);
      const seed = freshSeed();
      const tokens = PRESETS.tiny.tokens;
      const inputs = new Map([
        [slotMappingName(LAYER), toHostTensor('i32', [tokens], slotMapping(tokens, seed))],
      ]);
      for (const backend of ['cpu', 'webgpu'] as const) {
        const rep = await compareGraphs(before, r.output, PASSES, run({ backend, seed, inputs }));
        expect(rep.outputs.map((o) => o.name)).toEqual(
          expect.arrayContaining([
            `rank 0: ${kvCacheName(LAYER, 'key')}`,
            `rank 0: ${kvCacheName(LAYER, 'value')}`,
          ]),
        );
        expect(
          rep.outputs.map((o) => [o.bitwiseEqual, o.fedFrom]),
          `seed ${seed} ${backend}: ${JSON.stringify(rep.outputs)}`,
        ).toEqual(rep.outputs.map(() => [true, []]));
        expect(rep.ok).toBe(true);
      }
    },
  );
});

describe('the paged KV cache write', { timeout: 300_000 }, () => {
  // reshape_and_cache_flash (csrc/cache_kernels.cu): token t's rows to slot slot_mapping[t], a
  // negative slot skipped; every other slot keeps what the cache held.
  it.each(['cpu', 'webgpu'] as const)(
    '%s: rows at their slots, the padded token skipped, the rest kept',
    async (backend) => {
      const file = 'rope-kvcache.neox.bf16.py';
      const g = importGraph(readFileSync(DIR + file, 'utf8'), { fileName: file }).graph;
      const tokens = PRESETS.tiny.tokens;
      const slots = slotMapping(tokens, 7);
      const res = await runGraph(
        g,
        run({ backend, inputs: new Map([[slotMappingName(LAYER), toHostTensor('i32', [tokens], slots)]]) }),
      );
      const out = res.outputs[0]!;
      for (const [part, rows] of [
        ['key', 'view_3'],
        ['value', 'view_4'],
      ] as const) {
        const cache = out.get(kvCacheName(LAYER, part))!;
        const x = hostValues(out.get(rows)!);
        const width = x.length / tokens;
        expect(cache.shape).toEqual([kvCacheBlocks(tokens), KV_BLOCK_SIZE, ...out.get(rows)!.shape.slice(1)]);
        const c = hostValues(cache);
        slots.forEach((slot, t) => {
          if (slot >= 0)
            expect(Array.from(c.subarray(slot * width, (slot + 1) * width))).toEqual(
              Array.from(x.subarray(t * width, (t + 1) * width)),
            );
        });
        // The padded token's row is written nowhere: no cache row equals it.
        const padded = Array.from(x.subarray((tokens - 1) * width, tokens * width)).join();
        const rowsOf = (a: Float64Array) =>
          Array.from({ length: a.length / width }, (_, r) =>
            Array.from(a.subarray(r * width, (r + 1) * width)).join(),
          );
        expect(rowsOf(c)).not.toContain(padded);
        // Slots no token writes keep the seeded cache: the same as a run whose batch writes nothing.
        const empty = await runGraph(
          g,
          run({
            backend,
            inputs: new Map([
              [
                slotMappingName(LAYER),
                toHostTensor(
                  'i32',
                  [tokens],
                  slots.map(() => -1),
                ),
              ],
            ]),
          }),
        );
        const seeded = rowsOf(hostValues(empty.outputs[0]!.get(kvCacheName(LAYER, part))!));
        const written = new Set(slots.filter((s) => s >= 0));
        rowsOf(c).forEach((row, r) => {
          if (!written.has(r)) expect(row).toBe(seeded[r]);
        });
        expect(seeded.filter((row, r) => written.has(r) && row !== rowsOf(c)[r]).length).toBeGreaterThan(0);
      }
    },
  );
});
