// What the view draws for a Graph: one box per node and per tensor input, sized from its
// labels, the value edges between them (labelled with the value's type), and the namespace
// groups. Pure and DOM-free so the layout worker and Node tests build the same scene.

import { nodeInputs, shapeToString, type Graph, type Node, type ValueType } from '../../graph/ir.ts';
import { opKind, type OpKind } from '../../graph/ops.ts';
import { calledOp } from '../../graph/call.ts';
import { groupNodes, type NodeGroup } from '../../graph/groups.ts';

export type SceneKind = OpKind | 'input';

export interface SceneNode {
  name: string;
  /** The op as written (`higher_order.auto_functionalized`), `input` for graph inputs. */
  op: string;
  kind: SceneKind;
  /** Bold first line: the op's short name (`fused_add_rms_norm`, `[1]` for getitem). */
  title: string;
  /** Second line: the node's name. */
  subtitle: string;
  /** Result type, `bf16[s72, 2880]`, or '' when the node has no annotation. */
  type: string;
  w: number;
  h: number;
  group?: string;
  /** Position in the graph (inputs first), for stable ordering. */
  order: number;
}

export interface SceneEdge {
  from: string;
  to: string;
  /** The value's type, shown along the edge at sufficient zoom. */
  label: string;
}

export interface Scene {
  nodes: SceneNode[];
  edges: SceneEdge[];
  groups: NodeGroup[];
}

// Text metrics for the fonts the renderers use (system sans 12px semibold, mono 10px); the
// worker has no DOM to measure with, and a few pixels of slack are cheaper than a canvas.
const TITLE_CHAR = 7.6;
const SUB_CHAR = 6.1;
const PAD_X = 24;
export const NODE_H = 40;
export const SMALL_H = 26;
export const MIN_W = 72;

/** `aten.slice.Tensor` → `slice`, `_C.fused_add_rms_norm.default` → `fused_add_rms_norm`. */
export function shortOp(op: string): string {
  const parts = op.split('.');
  if (parts.length >= 3) return parts[parts.length - 2];
  if (parts.length === 2) return parts[1];
  return op;
}

export function typeLabel(t: ValueType | null): string {
  if (!t) return '';
  return t.kind === 'tensor' ? shapeToString(t) : `Sym(${t.expr})`;
}

function titleOf(n: Node): string {
  if (n.op === 'getitem') return `[${String(n.args[1])}]`;
  if (n.op === 'call_module') return n.module ?? 'call_module';
  return shortOp(calledOp(n));
}

/** Inputs drawn as boxes. Symbolic sizes are scalars every layer reads; as boxes they would only add wires. */
export function drawnInputs(g: Graph): Graph['inputs'] {
  return g.inputs.filter((inp) => inp.type?.kind !== 'sym');
}

/** How many boxes a graph's view has: its drawn inputs and its nodes. */
export function drawnNodeCount(g: Graph): number {
  return drawnInputs(g).length + g.nodes.length;
}

export function buildScene(g: Graph): Scene {
  const grouping = groupNodes(g);
  const nodes: SceneNode[] = [];
  const shown = new Set<string>();
  let order = 0;
  for (const inp of drawnInputs(g)) {
    const type = typeLabel(inp.type);
    nodes.push({
      name: inp.name,
      op: 'input',
      kind: 'input',
      title: inp.name,
      subtitle: type,
      type,
      // Pills lose a few pixels to their rounded ends.
      w: Math.max(
        MIN_W,
        Math.ceil(Math.max(inp.name.length * TITLE_CHAR, type.length * SUB_CHAR)) + PAD_X + 10,
      ),
      h: SMALL_H + 8,
      group: grouping.groupOf.get(inp.name),
      order: order++,
    });
    shown.add(inp.name);
  }
  for (const n of g.nodes) {
    const title = titleOf(n);
    const small = n.op === 'getitem';
    const type = typeLabel(n.type);
    const w = small
      ? Math.max(44, Math.ceil((title.length + 1 + n.name.length) * SUB_CHAR) + 18)
      : Math.max(MIN_W, Math.ceil(Math.max(title.length * TITLE_CHAR, n.name.length * SUB_CHAR)) + PAD_X);
    nodes.push({
      name: n.name,
      op: n.op,
      kind: opKind(calledOp(n)),
      title,
      subtitle: n.name,
      type,
      w,
      h: small ? SMALL_H : NODE_H,
      group: grouping.groupOf.get(n.name),
      order: order++,
    });
    shown.add(n.name);
  }
  const typeOf = new Map<string, string>();
  for (const sn of nodes) typeOf.set(sn.name, sn.type);
  const edges: SceneEdge[] = [];
  for (const n of g.nodes) {
    for (const r of new Set(nodeInputs(n))) {
      if (shown.has(r)) edges.push({ from: r, to: n.name, label: typeOf.get(r) ?? '' });
    }
  }
  return { nodes, edges, groups: grouping.groups };
}

/** How many changed (marked) nodes each group holds: a folded layer says so on its box. */
export function changesByGroup(
  marks: ReadonlyMap<string, unknown> | undefined,
  byName: ReadonlyMap<string, SceneNode>,
): Map<string, number> {
  const count = new Map<string, number>();
  for (const name of marks?.keys() ?? []) {
    const group = byName.get(name)?.group;
    if (group) count.set(group, (count.get(group) ?? 0) + 1);
  }
  return count;
}

/** A group box's title: open, its name; folded, its size and the changes folded into it. */
export function groupTitle(g: { label: string; count: number; collapsed: boolean }, changes: number): string {
  if (!g.collapsed) return `▾ ${g.label}`;
  const inside = changes > 0 ? ` · ${changes} change${changes === 1 ? '' : 's'} inside` : '';
  return `▸ ${g.label} · ${g.count} node${g.count === 1 ? '' : 's'}${inside}`;
}
