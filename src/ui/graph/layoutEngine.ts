// Runs a layout request: scene, then layout, with a block cache that outlives requests so a
// rewrite or a folded group relays only the blocks it changed. Shared by the worker and by the
// in-thread fallback (and the Node bench).

import type { LayoutRequest, LayoutResult } from './layoutProtocol.ts';
import {
  assembleLayout,
  layoutScene,
  layoutSceneBlocks,
  type BlockCache,
  type LayoutChunk,
} from './layout.ts';
import type { BlockLayout } from './blockLayout.ts';
import { buildScene, type Scene } from './scene.ts';

const CACHE_LIMIT = 4000;

/** A block of the requested graph's layout, as soon as it is laid out. */
export interface LayoutStep {
  scene: Scene;
  chunk: LayoutChunk;
}

export class LayoutEngine {
  private cache: BlockCache = new Map();

  run(req: Omit<LayoutRequest, 'id'>): LayoutResult {
    const steps = this.stream(req);
    for (;;) {
      const s = steps.next();
      if (s.done) return s.value;
    }
  }

  /**
   * The same work as `run`, yielding each block of the requested graph once it is laid out
   * (the graph it was rewritten from, when given, is laid out whole first: the new layout is
   * anchored to it). Returns the complete result, equal to `run`'s.
   */
  *stream(req: Omit<LayoutRequest, 'id'>): Generator<LayoutStep, LayoutResult, undefined> {
    const t0 = performance.now();
    const counting = this.countingCache();
    const collapsed = new Set(req.collapsed);
    let previous: LayoutResult['previous'];
    if (req.previous) {
      const scene = buildScene(req.previous.graph);
      previous = { scene, layout: layoutScene(scene, { collapsed, cache: counting.cache }) };
    }
    const scene = buildScene(req.graph);
    const chunks: LayoutChunk[] = [];
    for (const chunk of layoutSceneBlocks(scene, {
      collapsed,
      cache: counting.cache,
      previous: previous ? { layout: previous.layout, mapping: new Map(req.previous!.mapping) } : undefined,
    })) {
      chunks.push(chunk);
      yield { scene, chunk };
    }
    const layout = assembleLayout(chunks, !!previous);
    if (this.cache.size > CACHE_LIMIT) this.cache.clear();
    return {
      scene,
      layout,
      previous,
      ms: performance.now() - t0,
      cacheHits: counting.hits(),
      blocksLaidOut: counting.misses(),
      blocks: chunks.length,
    };
  }

  private countingCache(): { cache: BlockCache; hits(): number; misses(): number } {
    let hits = 0,
      misses = 0;
    const inner = this.cache;
    const cache = {
      get(k: string): BlockLayout | undefined {
        const v = inner.get(k);
        if (v) hits++;
        else misses++;
        return v;
      },
      set(k: string, v: BlockLayout) {
        inner.set(k, v);
        return cache;
      },
    } as unknown as BlockCache;
    return { cache, hits: () => hits, misses: () => misses };
  }
}
