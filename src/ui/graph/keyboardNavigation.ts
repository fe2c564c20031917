// Arrow keys walk the graph: up to a producer, down to a consumer, left and right to the
// neighbour on the same row. Among several producers or consumers the nearest one wins.

import type { GraphLayout, LaidNode } from './layout.ts';

export type Direction = 'up' | 'down' | 'left' | 'right';

export class NavIndex {
  private byName = new Map<string, LaidNode>();
  private preds = new Map<string, string[]>();
  private succs = new Map<string, string[]>();

  constructor(layout: GraphLayout) {
    for (const n of layout.nodes) this.byName.set(n.ref ? n.name : n.name, n);
    // Reference stubs stand for the value they name.
    const real = (name: string) => this.byName.get(name)?.ref ?? name;
    const push = (m: Map<string, string[]>, k: string, v: string) => {
      let l = m.get(k);
      if (!l) m.set(k, (l = []));
      if (!l.includes(v)) l.push(v);
    };
    for (const e of layout.edges) {
      const from = real(e.from);
      push(this.preds, e.to, from);
      push(this.succs, from, e.to);
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  step(from: string, dir: Direction): string | undefined {
    const here = this.byName.get(from);
    if (!here) return undefined;
    const cx = here.x + here.w / 2,
      cy = here.y + here.h / 2;
    const nearest = (names: string[] | undefined) => {
      let best: string | undefined,
        bestD = Infinity;
      for (const n of names ?? []) {
        const o = this.byName.get(n);
        if (!o) continue;
        const d = Math.abs(o.x + o.w / 2 - cx) + Math.abs(o.y + o.h / 2 - cy) * 0.25;
        if (d < bestD) {
          bestD = d;
          best = n;
        }
      }
      return best;
    };
    if (dir === 'up') return nearest(this.preds.get(from));
    if (dir === 'down') return nearest(this.succs.get(from));
    let best: string | undefined,
      bestDx = Infinity;
    for (const [name, o] of this.byName) {
      if (o.ref || name === from) continue;
      if (Math.abs(o.y + o.h / 2 - cy) > 4) continue;
      const dx = (o.x + o.w / 2 - cx) * (dir === 'right' ? 1 : -1);
      if (dx > 0 && dx < bestDx) {
        bestDx = dx;
        best = name;
      }
    }
    return best;
  }
}
