// Which node is under a point: a uniform grid over the layout, so clicks and hovers on a
// 10,000-node canvas cost a handful of rectangle tests.

import type { GraphLayout, LaidGroup, LaidNode } from './layout.ts';

const CELL = 256;

/** The clickable header of an open layer group (its ▾ toggle), drawn and hit-tested alike. */
export const GROUP_HEADER = { w: 180, h: 26 } as const;

export class HitGrid {
  private cells = new Map<number, LaidNode[]>();
  private groups: LaidGroup[];

  constructor(layout: GraphLayout) {
    for (const n of layout.nodes) {
      for (let cx = Math.floor(n.x / CELL); cx <= Math.floor((n.x + n.w) / CELL); cx++) {
        for (let cy = Math.floor(n.y / CELL); cy <= Math.floor((n.y + n.h) / CELL); cy++) {
          const k = cx * 65536 + cy;
          let l = this.cells.get(k);
          if (!l) this.cells.set(k, (l = []));
          l.push(n);
        }
      }
    }
    this.groups = layout.groups;
  }

  /** The node (or folded group, as `group:<id>`) at a point in layout coordinates. */
  at(x: number, y: number): LaidNode | { name: string; group: string } | undefined {
    for (const n of this.cells.get(Math.floor(x / CELL) * 65536 + Math.floor(y / CELL)) ?? []) {
      if (x >= n.x && x <= n.x + n.w && y >= n.y && y <= n.y + n.h) return n;
    }
    for (const g of this.groups) {
      // A folded group is one box; an open one folds from its header, as the SVG's ▾ does.
      const h = g.collapsed ? g.h : GROUP_HEADER.h,
        w = g.collapsed ? g.w : GROUP_HEADER.w;
      if (x >= g.x && x <= g.x + w && y >= g.y && y <= g.y + h) return { name: `group:${g.id}`, group: g.id };
    }
    return undefined;
  }

  /**
   * What a click at a point in client coordinates chooses: the value a stub stands for, a node,
   * or a folded group (`group:<id>`); `rect` is the element the view is drawn in, `t` its transform.
   */
  nameAtClient(
    rect: { left: number; top: number },
    t: { x: number; y: number; k: number },
    clientX: number,
    clientY: number,
  ): string | null {
    const hit = this.at((clientX - rect.left - t.x) / t.k, (clientY - rect.top - t.y) / t.k);
    return hit ? ('ref' in hit && hit.ref ? hit.ref : hit.name) : null;
  }
}
