// The page's side of the layout worker: one shared worker, requests answered by id. Progress
// messages are assembled into partial layouts for the caller to paint; the promise resolves
// with the complete one. Where workers are unavailable the same engine runs on the page.

import type { LayoutMessage, LayoutReply, LayoutRequest, LayoutResult } from './layoutProtocol.ts';
import { GraphShelf } from './graphShelf.ts';
import { assembleLayout, type GraphLayout, type LayoutChunk } from './layout.ts';
import type { Scene } from './scene.ts';
import type { Graph } from '../../graph/ir.ts';
import { LayoutEngine } from './layoutEngine.ts';

/** The blocks laid out so far, placed where the complete layout will have them (up to the frame's shift). */
export interface PartialLayout {
  scene: Scene;
  /** Their layout; assembled on demand, as a view paints only the latest of several per frame. */
  assemble(): GraphLayout;
  /** Blocks laid out so far / in all. */
  blocksDone: number;
  blocks: number;
}

/** Layouts kept per graph object (folds × previous graph), oldest dropped first. */
const RESULTS_PER_GRAPH = 4;

type Pending = {
  req: Omit<LayoutRequest, 'id'>;
  resolve: (r: LayoutResult) => void;
  reject: (e: Error) => void;
  onProgress?: (p: PartialLayout) => void;
  scene?: Scene;
  chunks: LayoutChunk[];
};

class LayoutClient {
  private worker: Worker | null = null;
  private fallback: LayoutEngine | null = null;
  private pending = new Map<number, Pending>();
  private nextId = 1;

  private start(): Worker | null {
    if (this.worker || this.fallback) return this.worker;
    try {
      this.worker = new Worker(new URL('./layout.worker.ts', import.meta.url), { type: 'module' });
      this.worker.onmessage = (ev: MessageEvent<LayoutReply>) => this.receive(ev.data);
      // A worker that cannot load (offline, a blocked script) must not leave the view blank:
      // lay out on the page instead, including what was already asked of the worker.
      this.worker.onerror = (ev) => {
        ev.preventDefault();
        this.worker?.terminate();
        this.worker = null;
        this.fallback = new LayoutEngine();
        const waiting = [...this.pending.values()];
        this.pending.clear();
        for (const p of waiting) {
          try {
            p.resolve(this.fallback.run(p.req));
          } catch (e) {
            p.reject(e instanceof Error ? e : new Error(String(e)));
          }
        }
      };
    } catch {
      this.fallback = new LayoutEngine();
    }
    return this.worker;
  }

  private receive(reply: LayoutReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    if (reply.kind !== 'error') {
      if (reply.scene) p.scene = reply.scene;
      for (const c of reply.chunks) p.chunks.push(c);
    }
    if (reply.kind === 'progress') {
      const last = p.chunks[p.chunks.length - 1];
      if (!p.onProgress || !p.scene || !last) return;
      const chunks = p.chunks.slice(),
        anchored = !!p.req.previous;
      p.onProgress({
        scene: p.scene,
        assemble: () => assembleLayout(chunks, anchored),
        blocksDone: chunks.length,
        blocks: last.blocks,
      });
      return;
    }
    this.pending.delete(reply.id);
    if (reply.kind === 'done') {
      const { id: _id, kind: _kind, scene: _scene, chunks: _chunks, ...totals } = reply;
      if (!p.scene) {
        p.reject(new Error(`layout request ${reply.id} finished without its scene`));
        return;
      }
      p.resolve({ scene: p.scene, layout: assembleLayout(p.chunks, !!p.req.previous), ...totals });
    } else p.reject(new Error(reply.error));
  }

  /**
   * Starts the worker ahead of the first request, so loading its script overlaps with whatever
   * the page does before it has a graph to lay out.
   */
  warm(): void {
    this.start();
  }

  /**
   * Lays out `req`; `onProgress` sees the blocks done so far each time more arrive. The same
   * graph object with the same folds (and the same previous graph) is laid out once: a view
   * mounted again (single → before | after after a rewrite) gets the result at once, without
   * cloning the graph to the worker again.
   */
  layout(req: Omit<LayoutRequest, 'id'>, onProgress?: (p: PartialLayout) => void): Promise<LayoutResult> {
    const key = `${req.collapsed.join('\n')}\u0000${req.previous ? this.graphId(req.previous.graph) : ''}`;
    let forGraph = this.done.get(req.graph);
    const hit = forGraph?.get(key);
    if (hit) return hit;
    const made = this.request(req, onProgress);
    if (!forGraph) this.done.set(req.graph, (forGraph = new Map()));
    if (forGraph.size >= RESULTS_PER_GRAPH) forGraph.delete(forGraph.keys().next().value!);
    forGraph.set(key, made);
    // A failed layout is not kept: asking again tries again.
    made.catch(() => {
      if (forGraph.get(key) === made) forGraph.delete(key);
    });
    return made;
  }

  private done = new WeakMap<Graph, Map<string, Promise<LayoutResult>>>();
  private ids = new WeakMap<Graph, number>();
  /** What the worker holds (see graphShelf.ts). */
  private shelf = new GraphShelf();
  private nextGraphId = 1;
  private graphId(g: Graph): number {
    let id = this.ids.get(g);
    if (id === undefined) this.ids.set(g, (id = this.nextGraphId++));
    return id;
  }

  private request(
    req: Omit<LayoutRequest, 'id'>,
    onProgress?: (p: PartialLayout) => void,
  ): Promise<LayoutResult> {
    const w = this.start();
    if (!w) {
      try {
        return Promise.resolve(this.fallback!.run(req));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { req, resolve, reject, onProgress, chunks: [] });
      // Same order as the worker takes them: previous, then graph.
      const previous = req.previous
        ? {
            graph: this.shelf.refer(this.graphId(req.previous.graph), req.previous.graph),
            mapping: req.previous.mapping,
          }
        : undefined;
      const graph = this.shelf.refer(this.graphId(req.graph), req.graph);
      w.postMessage({ id, graph, previous, collapsed: req.collapsed } satisfies LayoutMessage);
    });
  }
}

export const layoutClient = new LayoutClient();
// A page that imports the views will lay something out: start the worker now.
if (typeof window !== 'undefined' && typeof Worker !== 'undefined') layoutClient.warm();
