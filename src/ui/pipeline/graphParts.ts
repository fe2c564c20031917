// Splits a graph into message-sized parts and puts it back together (see pipelineProtocol.ts).

import type { Graph, Node } from '../../graph/ir.ts';
import type { GraphPart } from './pipelineProtocol.ts';

/** Nodes per message: a part clones in well under a frame. */
export const NODES_PER_PART = 500;

export function* graphParts(g: Graph, slot: GraphPart['slot']): Generator<GraphPart> {
  const { nodes, ...head } = g;
  if (nodes.length === 0) {
    yield { slot, head, nodes: [], last: true };
    return;
  }
  for (let i = 0; i < nodes.length; i += NODES_PER_PART) {
    yield {
      slot,
      ...(i === 0 ? { head } : {}),
      nodes: nodes.slice(i, i + NODES_PER_PART),
      last: i + NODES_PER_PART >= nodes.length,
    };
  }
}

/** Collects the parts of several graphs, by slot; `take` hands over a complete one. */
export class GraphAssembler {
  private open = new Map<GraphPart['slot'], { head?: Omit<Graph, 'nodes'>; nodes: Node[]; done: boolean }>();

  add(part: GraphPart): void {
    let g = this.open.get(part.slot);
    if (!g) this.open.set(part.slot, (g = { nodes: [], done: false }));
    if (part.head) g.head = part.head;
    for (const n of part.nodes) g.nodes.push(n);
    if (part.last) g.done = true;
  }

  take(slot: GraphPart['slot']): Graph {
    const g = this.open.get(slot);
    if (!g?.done || !g.head) throw new Error(`graph ${slot} did not arrive complete`);
    this.open.delete(slot);
    const { name, form, inputs, outputs, submodules } = g.head;
    return { name, form, inputs, nodes: g.nodes, outputs, submodules };
  }
}
