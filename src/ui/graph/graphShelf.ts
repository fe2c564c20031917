// The graphs the layout worker holds, mirrored on the page: a graph crosses to the worker once,
// later requests name it by key. Both sides run the same least-recently-used shelf over the same
// ordered messages, so the page knows what the worker still holds without asking.

import type { Graph } from '../../graph/ir.ts';

/** A graph in a layout message: its key, and the graph itself when the worker does not hold it yet. */
export interface GraphRef {
  key: number;
  graph?: Graph;
}

/** Graphs kept: the shown stage, the one before it, the imported graph, and a few scrubbed to. */
export const SHELF_GRAPHS = 6;

export class GraphShelf {
  private held = new Map<number, Graph | null>();

  /** Marks `key` as just used, keeping `graph` (the worker) or only the key (the page). */
  private put(key: number, graph: Graph | null): void {
    this.held.delete(key);
    this.held.set(key, graph);
    while (this.held.size > SHELF_GRAPHS) this.held.delete(this.held.keys().next().value!);
  }

  /** The page's side: the reference to send for `graph` under `key`. */
  refer(key: number, graph: Graph): GraphRef {
    const has = this.held.has(key);
    this.put(key, null);
    return has ? { key } : { key, graph };
  }

  /** The worker's side: the graph a reference names. */
  take(ref: GraphRef): Graph {
    const g = ref.graph ?? this.held.get(ref.key);
    if (!g) throw new Error(`graph #${ref.key} is no longer held by the layout worker`);
    this.put(ref.key, g);
    return g;
  }
}
