// Namespace grouping: which decoder layer each node belongs to, so the views can fold a layer
// into one box and lay layers out independently.
//
// Evidence, strongest first:
//  1. a string argument naming a module path (`layer_name = 'model.layers.3.mlp.experts'`);
//  2. a node name carrying one (`l__self___model_layers_3_mlp`, `model_layers_3_...`);
//  3. the `# File:` comments: when neither of the above exists, a source location that repeats
//     once per layer (Megatron's `attention.py:630`) marks where each layer starts.
// A layer runs from its input norm (the last norm before its first anchor) to the next layer's
// start, so the MoE output's all-reduce and slice sit with their MoE. Nodes before the first
// layer (embedding) stay top-level, and so do nodes after the last layer found from `# File:`.

import { forEachLeaf, nodeInputs, refsOf, type ArgLeaf, type Graph, type Node } from './ir.ts';
import { opKind } from './ops.ts';
import { calledOp } from './call.ts';

export interface NodeGroup {
  /** Stable id: the module path up to the layer index (`model.layers.3`) or `layers.3`. */
  id: string;
  /** Shown on the group's box: `layer 3`. */
  label: string;
  /** Layer index. */
  index: number;
  /** Member node and input names, in graph order. */
  members: string[];
}

export interface Grouping {
  groups: NodeGroup[];
  /** Node or input name → group id; names absent here are top-level. */
  groupOf: Map<string, string>;
  /** Where the grouping came from, for the inspector. */
  source: 'layer_name' | 'names' | 'file' | 'none';
}

const MODULE_PATH = /^((?:[A-Za-z_][\w]*\.)*layers)\.(\d+)(?:\.|$)/;
const NAME_PATH = /(?:^|_)(layers?)_(\d+)(?:_|$)/;

/** The layer a node names in its string arguments (`layer_name`), if any. */
function layerFromArgs(n: Node): { id: string; index: number } | undefined {
  const strs: string[] = [];
  const collect = (leaf: ArgLeaf) => {
    if (typeof leaf === 'string') strs.push(leaf);
  };
  for (const a of n.args) forEachLeaf(a, collect);
  for (const k in n.kwargs) forEachLeaf(n.kwargs[k], collect);
  for (const s of strs) {
    const m = MODULE_PATH.exec(s);
    if (m) return { id: `${m[1]}.${m[2]}`, index: Number(m[2]) };
  }
  return undefined;
}

function layerFromName(name: string): { id: string; index: number } | undefined {
  const m = NAME_PATH.exec(name.toLowerCase());
  return m ? { id: `layers.${m[2]}`, index: Number(m[2]) } : undefined;
}

/** `path:line` of a `# File:` comment. */
function fileLocation(n: Node): string | undefined {
  const f = n.meta.file;
  if (!f) return undefined;
  const sp = f.indexOf(' ');
  return sp < 0 ? f : f.slice(0, sp);
}

/**
 * Layer anchors from repeated source locations: R = the most common repeat count (> 1) among
 * locations; the first location in graph order seen R times opens a layer each time it recurs.
 * The last layer ends at the last node whose location repeats a multiple of R times.
 */
function anchorsFromFiles(
  g: Graph,
): { anchors: Map<number, { id: string; index: number }>; lastLayerEnd: number } | undefined {
  const count = new Map<string, number>();
  for (const n of g.nodes) {
    const loc = fileLocation(n);
    if (loc) count.set(loc, (count.get(loc) ?? 0) + 1);
  }
  const histogram = new Map<number, number>();
  for (const c of count.values()) if (c > 1) histogram.set(c, (histogram.get(c) ?? 0) + 1);
  let period = 0,
    best = 0;
  for (const [c, h] of histogram)
    if (h > best || (h === best && c < period)) {
      period = c;
      best = h;
    }
  if (period < 2 || best < 2) return undefined;
  // The opener is a location seen once per layer: of those seen `period` times, the ones whose
  // repeats are spaced like layers (not twice in a row in the prologue), earliest first.
  const seen = new Map<string, number[]>();
  let lastLayerEnd = -1;
  g.nodes.forEach((n, i) => {
    const loc = fileLocation(n);
    if (!loc) return;
    const c = count.get(loc)!;
    if (c === period) {
      let l = seen.get(loc);
      if (!l) seen.set(loc, (l = []));
      l.push(i);
    }
    if (c % period === 0) lastLayerEnd = i;
  });
  const minGap = (l: number[]) => {
    let m = Infinity;
    for (let k = 1; k < l.length; k++) m = Math.min(m, l[k] - l[k - 1]);
    return m;
  };
  let widest = 0;
  for (const l of seen.values()) widest = Math.max(widest, minGap(l));
  let opener: string | undefined;
  let openerAt = Infinity;
  for (const [loc, l] of seen)
    if (minGap(l) >= 0.8 * widest && l[0] < openerAt) {
      opener = loc;
      openerAt = l[0];
    }
  const anchors = new Map<number, { id: string; index: number }>();
  let layer = 0;
  let previous: string | undefined;
  g.nodes.forEach((n, i) => {
    const loc = fileLocation(n);
    // Several nodes can share the opening line; only the first of a run opens a layer.
    if (loc === opener && previous !== opener) {
      anchors.set(i, { id: `layers.${layer}`, index: layer });
      layer++;
    }
    if (loc) previous = loc;
  });
  // The last layer ends where the locations of the first layer stop recurring (the loss and
  // the output head that follow are not a layer).
  const starts = [...anchors.keys()].sort((a, b) => a - b);
  if (starts.length >= 2) {
    const firstLayer = new Set<string>();
    for (let i = starts[0]; i < starts[1]; i++) {
      const loc = fileLocation(g.nodes[i]);
      if (loc && count.get(loc)! % period === 0) firstLayer.add(loc);
    }
    g.nodes.forEach((n, i) => {
      const loc = fileLocation(n);
      if (loc && firstLayer.has(loc)) lastLayerEnd = i;
    });
  }
  return { anchors, lastLayerEnd };
}

export function groupNodes(g: Graph): Grouping {
  const anchors = new Map<number, { id: string; index: number }>();
  let source: Grouping['source'] = 'none';
  g.nodes.forEach((n, i) => {
    const a = layerFromArgs(n);
    if (a) anchors.set(i, a);
  });
  if (anchors.size) source = 'layer_name';
  else {
    g.nodes.forEach((n, i) => {
      const a = layerFromName(n.name);
      if (a) anchors.set(i, a);
    });
    if (anchors.size) source = 'names';
  }
  let lastLayerEnd = g.nodes.length - 1;
  if (!anchors.size) {
    const files = anchorsFromFiles(g);
    if (files) {
      for (const [i, a] of files.anchors) anchors.set(i, a);
      lastLayerEnd = files.lastLayerEnd;
      source = 'file';
    }
  }

  const groupOf = new Map<string, string>();
  const byId = new Map<string, NodeGroup>();
  const join = (name: string, a: { id: string; index: number }) => {
    let grp = byId.get(a.id);
    if (!grp) byId.set(a.id, (grp = { id: a.id, label: `layer ${a.index}`, index: a.index, members: [] }));
    grp.members.push(name);
    groupOf.set(name, a.id);
  };

  if (anchors.size) {
    // A decoder layer opens with its input norm, which sits before the layer's first named op
    // (attention): move each layer's start back to the last norm since the previous layer's
    // last anchor. The MoE output's all-reduce and slice stay with their MoE.
    const starts = new Map<number, { id: string; index: number }>();
    let lastAnchor = -1;
    let lastId: string | undefined;
    for (let i = 0; i < g.nodes.length; i++) {
      const a = anchors.get(i);
      if (!a) continue;
      if (a.id !== lastId) {
        let start = i;
        if (source !== 'file') {
          for (let j = i - 1; j > lastAnchor; j--) {
            const k = opKind(calledOp(g.nodes[j]));
            if (k === 'norm' || k === 'fused') {
              start = j;
              break;
            }
          }
        }
        starts.set(start, a);
        lastId = a.id;
      }
      lastAnchor = i;
    }
    let current: { id: string; index: number } | undefined;
    for (let i = 0; i <= lastLayerEnd && i < g.nodes.length; i++) {
      current = starts.get(i) ?? current;
      if (current) join(g.nodes[i].name, current);
    }
  }

  // Inputs (weights) sit with their users when all of them share one group.
  if (byId.size) {
    const inputUsers = new Map<string, Set<string | undefined>>();
    for (const n of g.nodes) {
      const gid = groupOf.get(n.name);
      for (const r of nodeInputs(n)) {
        let s = inputUsers.get(r);
        if (!s) inputUsers.set(r, (s = new Set()));
        s.add(gid);
      }
    }
    if (g.outputs) for (const r of refsOf(g.outputs)) inputUsers.get(r)?.add(undefined);
    for (const inp of g.inputs) {
      const s = inputUsers.get(inp.name);
      if (s && s.size === 1) {
        const [gid] = s;
        if (gid) {
          const grp = byId.get(gid)!;
          join(inp.name, { id: gid, index: grp.index });
        }
      }
    }
    // Members in graph order: inputs first, as the graph lists them.
    const order = new Map<string, number>();
    g.inputs.forEach((inp, i) => order.set(inp.name, i - g.inputs.length));
    g.nodes.forEach((n, i) => order.set(n.name, i));
    for (const grp of byId.values()) grp.members.sort((a, b) => order.get(a)! - order.get(b)!);
  }

  const groups = [...byId.values()].sort((a, b) => a.index - b.index);
  return { groups, groupOf, source };
}
