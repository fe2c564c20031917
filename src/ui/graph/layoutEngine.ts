// Runs a layout request: scene, then layout, with a block cache that outlives requests so a
// rewrite or a folded group relays only the blocks it changed. Shared by the worker and by the
// in-thread fallback (and the Node bench).

import type { LayoutRequest, LayoutResult } from './layoutProtocol.ts';
import { layoutScene, type BlockCache, type BlockLayout } from './layout.ts';
import { buildScene } from './scene.ts';

const CACHE_LIMIT = 4000;

export class LayoutEngine {
  private cache: BlockCache = new Map();

  run(req: Omit<LayoutRequest, 'id'>): LayoutResult {
    const t0 = performance.now();
    const counting = this.countingCache();
    const collapsed = new Set(req.collapsed);
    let previous: LayoutResult['previous'];
    if (req.previous) {
      const scene = buildScene(req.previous.graph);
      previous = { scene, layout: layoutScene(scene, { collapsed, cache: counting.cache }) };
    }
    const scene = buildScene(req.graph);
    const layout = layoutScene(scene, {
      collapsed, cache: counting.cache,
      previous: previous ? { layout: previous.layout, mapping: new Map(req.previous!.mapping) } : undefined,
    });
    if (this.cache.size > CACHE_LIMIT) this.cache.clear();
    return { scene, layout, previous, ms: performance.now() - t0, cacheHits: counting.hits(), blocksLaidOut: counting.misses() };
  }

  private countingCache(): { cache: BlockCache; hits(): number; misses(): number } {
    let hits = 0, misses = 0;
    const inner = this.cache;
    const cache = {
      get(k: string): BlockLayout | undefined {
        const v = inner.get(k);
        if (v) hits++; else misses++;
        return v;
      },
      set(k: string, v: BlockLayout) { inner.set(k, v); return cache; },
    } as unknown as BlockCache;
    return { cache, hits: () => hits, misses: () => misses };
  }
}
