// The page's side of the layout worker: one shared worker, requests answered by id. Where
// workers are unavailable the same engine runs on the page.

import type { LayoutReply, LayoutRequest, LayoutResult } from './layoutProtocol.ts';
import { LayoutEngine } from './layoutEngine.ts';

type Pending = { req: Omit<LayoutRequest, 'id'>; resolve: (r: LayoutResult) => void; reject: (e: Error) => void };

class LayoutClient {
  private worker: Worker | null = null;
  private fallback: LayoutEngine | null = null;
  private pending = new Map<number, Pending>();
  private nextId = 1;

  private start(): Worker | null {
    if (this.worker || this.fallback) return this.worker;
    try {
      this.worker = new Worker(new URL('./layout.worker.ts', import.meta.url), { type: 'module' });
      this.worker.onmessage = (ev: MessageEvent<LayoutReply>) => {
        const p = this.pending.get(ev.data.id);
        if (!p) return;
        this.pending.delete(ev.data.id);
        if (ev.data.ok) {
          const { id: _id, ok: _ok, ...result } = ev.data;
          p.resolve(result);
        } else p.reject(new Error(ev.data.error));
      };
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
          try { p.resolve(this.fallback.run(p.req)); } catch (e) { p.reject(e instanceof Error ? e : new Error(String(e))); }
        }
      };
    } catch {
      this.fallback = new LayoutEngine();
    }
    return this.worker;
  }

  layout(req: Omit<LayoutRequest, 'id'>): Promise<LayoutResult> {
    const w = this.start();
    if (!w) {
      try { return Promise.resolve(this.fallback!.run(req)); } catch (e) { return Promise.reject(e); }
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { req, resolve, reject });
      w.postMessage({ id, ...req } satisfies LayoutRequest);
    });
  }
}

export const layoutClient = new LayoutClient();
