// Layered top-to-bottom layout (Sugiyama style), hierarchical by namespace group.
//
// The scene is cut into blocks: each decoder layer is one block, and the ungrouped runs
// between them (prologue, epilogue) are blocks too. A block is laid out on its own —
// longest-path layering, dummy nodes on long edges, barycentric crossing reduction, then
// x by weighted isotonic regression (nodes pulled toward their neighbours, order and spacing
// kept exactly) — and cached by its content, so a rewrite relays only the block it touched and
// no block waits for the whole graph. Blocks are then stacked. Values flowing into the next
// block leave through ports at the bottom and enter through ports at the top; values that skip
// blocks (weights shared by every layer, very long edges) are drawn as small reference stubs
// beside their reader instead of wires across the whole graph.
//
// Everything is iterative: no recursion, so 10,000-node graphs cannot overflow the stack.

import type { Scene, SceneNode, SceneEdge } from './scene.ts';
import type { NodeGroup } from '../../graph/groups.ts';

export interface LaidNode {
  name: string;
  /** Top-left corner. */
  x: number;
  y: number;
  w: number;
  h: number;
  /** A stub standing for a value produced far away: `ref` names it. */
  ref?: string;
  group?: string;
  /** Band within its block, top = 0 (lets a rewritten graph keep its rows). */
  layer: number;
}

export interface LaidEdge {
  from: string;
  to: string;
  /** Polyline through the dummy nodes, x0,y0,x1,y1,…; the renderer smooths it. */
  points: number[];
  label: string;
}

export interface LaidGroup {
  id: string;
  label: string;
  x: number;
  y: number;
  w: number;
  h: number;
  collapsed: boolean;
  /** Members shown inside (or folded into) the box. */
  count: number;
}

export interface GraphLayout {
  nodes: LaidNode[];
  edges: LaidEdge[];
  groups: LaidGroup[];
  width: number;
  height: number;
}

export interface LayoutOptions {
  collapsed?: ReadonlySet<string>;
  /**
   * The layout of the graph this one was rewritten from, and the mapping after-name →
   * before-name: blocks keep their place, and a rewritten block is shifted so its unchanged
   * nodes stay where they were.
   */
  previous?: { layout: GraphLayout; mapping: ReadonlyMap<string, string> };
  /** Block layouts by content, reused across calls (the worker keeps one). */
  cache?: BlockCache;
  /** Edges spanning more layers than this inside one block become reference stubs. */
  maxSpan?: number;
}

export type BlockCache = Map<string, BlockLayout>;

export const COLLAPSED_W = 240;
export const COLLAPSED_H = 52;
const LAYER_GAP = 46;
const BAND_H = 40;
const NODE_GAP = 26;
const DUMMY_GAP = 10;
const BLOCK_GAP = 56;
const GROUP_PAD = 18;
const GROUP_HEADER = 26;
const REF_H = 22;
const REF_CHAR = 6.1;

/** One block's input: its own nodes, the edges among them, and what crosses its border. */
interface BlockInput {
  key: string;
  nodes: {
    name: string;
    w: number;
    h: number;
    ref?: string;
    /** The band it had in the layout this graph was rewritten from: sink back to it if free. */
    minLayer?: number;
    /** Its centre's x there, in the block's own frame: pulled back to it where order allows. */
    hintX?: number;
  }[];
  edges: { from: number; to: number; label: string }[];
  /** Values entering at the top: each feeds `targets` (local indices). */
  entries: { value: string; label: string; targets: number[] }[];
  /** Values leaving at the bottom (their source, local index). */
  exits: { value: string; source: number }[];
}

/** A block laid out in its own frame: x from 0, y from 0. */
export interface BlockLayout {
  x: Float64Array;
  y: Float64Array;
  layer: Int32Array;
  width: number;
  height: number;
  /** Polylines of the block's internal edges, in the order of BlockInput.edges. */
  edgePoints: number[][];
  /** Polylines from each entry port (top) down to each of its targets, per entry, per target. */
  entryPoints: number[][][];
  /** Polylines from each exit's source down to its port at the bottom. */
  exitPoints: number[][];
}

// ---------------------------------------------------------------------------------------------
// One block

/** Weighted isotonic regression (pool adjacent violators): non-decreasing fit to `e`. */
function isotonic(e: Float64Array, wt: Float64Array, out: Float64Array, n: number): void {
  const val = new Float64Array(n),
    w = new Float64Array(n),
    len = new Int32Array(n);
  let top = 0;
  for (let i = 0; i < n; i++) {
    val[top] = e[i];
    w[top] = wt[i];
    len[top] = 1;
    while (top > 0 && val[top - 1] > val[top]) {
      const nw = w[top - 1] + w[top];
      val[top - 1] = (val[top - 1] * w[top - 1] + val[top] * w[top]) / nw;
      w[top - 1] = nw;
      len[top - 1] += len[top];
      top--;
    }
    top++;
  }
  let k = 0;
  for (let b = 0; b < top; b++) for (let j = 0; j < len[b]; j++) out[k++] = val[b];
}

export function layoutBlock(input: BlockInput, maxSpan = Infinity): BlockLayout {
  const nReal = input.nodes.length;
  const nEntry = input.entries.length;
  const nExit = input.exits.length;
  // Vertex ids: real nodes, then entry ports, then exit ports, then dummies.
  const entryBase = nReal,
    exitBase = nReal + nEntry;
  let nV = exitBase + nExit;
  const succ: number[][] = [],
    pred: number[][] = [];
  for (let i = 0; i < nV; i++) {
    succ.push([]);
    pred.push([]);
  }
  // Chains of vertices each original edge passes through (filled after dummies are made).
  type Route = number[];
  const rawEdges: [number, number][] = [];
  for (const e of input.edges) rawEdges.push([e.from, e.to]);
  for (let i = 0; i < nEntry; i++)
    for (const t of input.entries[i].targets) rawEdges.push([entryBase + i, t]);
  for (let i = 0; i < nExit; i++) rawEdges.push([input.exits[i].source, exitBase + i]);

  // Layering: longest path over real nodes in topological order (Kahn).
  const indeg = new Int32Array(nReal);
  const realSucc: number[][] = Array.from({ length: nReal }, () => []);
  for (const e of input.edges) {
    realSucc[e.from].push(e.to);
    indeg[e.to]++;
  }
  const topo: number[] = [];
  const queue: number[] = [];
  for (let i = 0; i < nReal; i++) if (indeg[i] === 0) queue.push(i);
  for (let qi = 0; qi < queue.length; qi++) {
    const v = queue[qi];
    topo.push(v);
    for (const s of realSucc[v]) if (--indeg[s] === 0) queue.push(s);
  }
  if (topo.length < nReal) {
    // A cycle cannot come from FX text, but a malformed import must not hang the view:
    // append the rest in graph order and let their back edges point upward.
    const seen = new Uint8Array(nReal);
    for (const v of topo) seen[v] = 1;
    for (let i = 0; i < nReal; i++) if (!seen[i]) topo.push(i);
  }
  const pos = new Int32Array(nReal);
  topo.forEach((v, i) => {
    pos[v] = i;
  });
  const first = nEntry > 0 ? 1 : 0;
  const layer: number[] = new Array<number>(nV).fill(0);
  for (let i = 0; i < nReal; i++) layer[i] = first;
  for (const v of topo)
    for (const s of realSucc[v]) if (pos[s] > pos[v] && layer[s] < layer[v] + 1) layer[s] = layer[v] + 1;
  // Sources (weights, inputs) sit right above their first reader.
  const realPred: number[][] = Array.from({ length: nReal }, () => []);
  for (const e of input.edges) realPred[e.to].push(e.from);
  for (let ti = topo.length - 1; ti >= 0; ti--) {
    const v = topo[ti];
    const was = input.nodes[v].minLayer;
    if (was !== undefined) {
      // A rewritten block gets its old rows back where there is slack: bottom-up, each node
      // sinks toward the band it had, never past its readers, so nothing is pushed.
      let m = realSucc[v].length ? Infinity : was;
      for (const s of realSucc[v]) m = Math.min(m, layer[s] - 1);
      const target = Math.min(was, m);
      if (target > layer[v]) layer[v] = target;
      continue;
    }
    if (realPred[v].length || !realSucc[v].length) continue;
    let m = Infinity;
    for (const s of realSucc[v]) m = Math.min(m, layer[s]);
    if (m - 1 > layer[v]) layer[v] = m - 1;
  }
  let maxLayer = first;
  for (let i = 0; i < nReal; i++) maxLayer = Math.max(maxLayer, layer[i]);
  for (let i = 0; i < nEntry; i++) layer[entryBase + i] = 0;
  for (let i = 0; i < nExit; i++) layer[exitBase + i] = maxLayer + 1;
  const nLayers = maxLayer + (nExit ? 2 : 1);

  // Dummies along edges that span several layers.
  const routes: Route[] = [];
  const width: number[] = [],
    height: number[] = [],
    isDummy: boolean[] = [];
  for (let i = 0; i < nV; i++) {
    if (i < nReal) {
      width.push(input.nodes[i].w);
      height.push(input.nodes[i].h);
      isDummy.push(false);
    } else {
      width.push(2);
      height.push(0);
      isDummy.push(true);
    }
  }
  for (const [a, b] of rawEdges) {
    const route: Route = [a];
    if (layer[b] > layer[a] + 1 && layer[b] - layer[a] <= maxSpan + 1) {
      let prev = a;
      for (let l = layer[a] + 1; l < layer[b]; l++) {
        const d = nV++;
        succ.push([]);
        pred.push([]);
        width.push(2);
        height.push(0);
        isDummy.push(true);
        layer.push(l);
        succ[prev].push(d);
        pred[d].push(prev);
        route.push(d);
        prev = d;
      }
      succ[prev].push(b);
      pred[b].push(prev);
    } else {
      succ[a].push(b);
      pred[b].push(a);
    }
    route.push(b);
    routes.push(route);
  }
  const layerOf = (v: number) => layer[v];

  // Initial order: graph order for real nodes; ports and dummies after their neighbour.
  const key = new Float64Array(nV);
  for (let v = 0; v < nReal; v++) key[v] = pos[v];
  for (let i = 0; i < nEntry; i++) {
    const t = input.entries[i].targets;
    key[entryBase + i] = t.length ? Math.min(...t.map((x) => pos[x])) - 0.5 : 0;
  }
  for (let i = 0; i < nExit; i++) key[exitBase + i] = pos[input.exits[i].source] + 0.5;
  for (const r of routes) for (let j = 1; j < r.length - 1; j++) key[r[j]] = key[r[0]] + 0.25;
  const layers: number[][] = Array.from({ length: nLayers }, () => []);
  for (let v = 0; v < nV; v++) layers[layerOf(v)].push(v);
  for (const l of layers) l.sort((a, b) => key[a] - key[b]);
  const index = new Float64Array(nV);
  const reindex = (l: number[]) => {
    for (let i = 0; i < l.length; i++) index[l[i]] = i;
  };
  layers.forEach(reindex);

  // Barycentric crossing reduction: a few down and up sweeps.
  const sweep = (down: boolean) => {
    const range = down ? [...Array(nLayers).keys()].slice(1) : [...Array(nLayers).keys()].reverse().slice(1);
    for (const li of range) {
      const l = layers[li];
      for (const v of l) {
        const nb = down ? pred[v] : succ[v];
        if (!nb.length) {
          key[v] = index[v];
          continue;
        }
        let s = 0;
        for (const u of nb) s += index[u];
        // Scale to the neighbour layer's length so a node without neighbours keeps its slot.
        const nl = layers[li + (down ? -1 : 1)].length;
        key[v] = (s / nb.length) * (l.length / Math.max(1, nl));
      }
      l.sort((a, b) => key[a] - key[b] || index[a] - index[b]);
      reindex(l);
    }
  };
  for (let it = 0; it < 4; it++) {
    sweep(true);
    sweep(false);
  }

  // x: start packed, then pull each node toward its neighbours, alternating directions.
  const x = new Float64Array(nV);
  const sep = (a: number, b: number) =>
    (width[a] + width[b]) / 2 + (isDummy[a] || isDummy[b] ? DUMMY_GAP : NODE_GAP);
  for (const l of layers) {
    let cx = 0;
    for (let i = 0; i < l.length; i++) {
      if (i) cx += sep(l[i - 1], l[i]);
      x[l[i]] = cx;
    }
    const mid = cx / 2;
    for (const v of l) x[v] -= mid;
  }
  let maxLen = 0;
  for (const l of layers) maxLen = Math.max(maxLen, l.length);
  const e = new Float64Array(maxLen),
    wt = new Float64Array(maxLen),
    fit = new Float64Array(maxLen),
    off = new Float64Array(maxLen);
  const place = (dir: 'down' | 'up' | 'both') => {
    const order = dir === 'up' ? [...layers].reverse() : layers;
    for (const l of order) {
      let o = 0;
      for (let i = 0; i < l.length; i++) {
        const v = l[i];
        if (i) o += sep(l[i - 1], v);
        off[i] = o;
        const nb = dir === 'down' ? pred[v] : dir === 'up' ? succ[v] : pred[v].concat(succ[v]);
        let d = x[v];
        if (nb.length) {
          let s = 0;
          for (const u of nb) s += x[u];
          d = s / nb.length;
        }
        e[i] = d - o;
        // Dummies weigh more: long edges stay straight; nodes with wires get pulled harder.
        wt[i] = isDummy[v] ? 4 : nb.length ? 1 : 0.05;
      }
      isotonic(e, wt, fit, l.length);
      for (let i = 0; i < l.length; i++) x[l[i]] = fit[i] + off[i];
    }
  };
  for (let it = 0; it < 6; it++) {
    place('down');
    place('up');
  }
  place('both');
  // A rewritten block: one last pass pulls every node that was there before toward its old
  // x (in this frame: shifted by the offset most of them share), others stay where they are.
  const hints: number[] = [];
  for (let v = 0; v < nReal; v++) if (input.nodes[v].hintX !== undefined) hints.push(v);
  if (hints.length) {
    const shift = mostCommon(hints.map((v) => x[v] - input.nodes[v].hintX!));
    for (const l of layers) {
      let o = 0;
      for (let i = 0; i < l.length; i++) {
        const v = l[i];
        if (i) o += sep(l[i - 1], v);
        off[i] = o;
        const h = v < nReal ? input.nodes[v].hintX : undefined;
        e[i] = (h !== undefined ? h + shift : x[v]) - o;
        wt[i] = h !== undefined ? 4 : 1;
      }
      isotonic(e, wt, fit, l.length);
      for (let i = 0; i < l.length; i++) x[l[i]] = fit[i] + off[i];
    }
  }

  // y: layer bands tall enough for their tallest node.
  const bandTop = new Float64Array(nLayers),
    bandH = new Float64Array(nLayers);
  let cy = 0;
  for (let li = 0; li < nLayers; li++) {
    // Every band has the height of a full node, so a node's row alone fixes its y: a rewrite
    // that removes the only tall node of a row does not pull everything below it up.
    let h = 0;
    for (const v of layers[li]) h = Math.max(h, height[v]);
    const portBand = (li === 0 && nEntry > 0) || (li === nLayers - 1 && nExit > 0);
    if (!portBand) h = Math.max(h, BAND_H);
    bandTop[li] = cy;
    bandH[li] = h;
    cy += h + LAYER_GAP;
  }
  // Ports sit on the block's border; bands of only ports take no height.
  let minX = Infinity,
    maxX = -Infinity;
  for (let v = 0; v < nV; v++) {
    if (isDummy[v] && v >= exitBase + nExit) continue;
    minX = Math.min(minX, x[v] - width[v] / 2);
    maxX = Math.max(maxX, x[v] + width[v] / 2);
  }
  if (!isFinite(minX)) {
    minX = 0;
    maxX = 0;
  }
  const top = nEntry ? bandTop[1] - LAYER_GAP / 2 : 0;
  const bottom = cy - LAYER_GAP + (nExit ? -bandH[nLayers - 1] - LAYER_GAP / 2 : 0);
  const outX = new Float64Array(nReal),
    outY = new Float64Array(nReal),
    outLayer = new Int32Array(nReal);
  for (let v = 0; v < nReal; v++) {
    const li = layer[v];
    outX[v] = x[v] - width[v] / 2 - minX;
    outY[v] = bandTop[li] + (bandH[li] - height[v]) / 2 - top;
    outLayer[v] = li;
  }
  const vx = (v: number) => x[v] - minX;
  const vTop = (v: number) => {
    if (v >= entryBase && v < exitBase) return 0;
    if (v >= exitBase && v < exitBase + nExit) return bottom - top;
    const li = layerOf(v);
    return isDummy[v] ? bandTop[li] + bandH[li] / 2 - top : outY[v];
  };
  const vBottom = (v: number) => (v < nReal ? outY[v] + height[v] : vTop(v));
  const polyline = (r: Route) => {
    const pts: number[] = [vx(r[0]), vBottom(r[0])];
    for (let j = 1; j < r.length - 1; j++) pts.push(vx(r[j]), vTop(r[j]));
    const last = r[r.length - 1];
    pts.push(vx(last), vTop(last));
    return pts;
  };
  const edgePoints: number[][] = [];
  let ri = 0;
  for (let i = 0; i < input.edges.length; i++) edgePoints.push(polyline(routes[ri++]));
  const entryPoints: number[][][] = [];
  for (let i = 0; i < nEntry; i++) {
    const per: number[][] = [];
    for (let j = 0; j < input.entries[i].targets.length; j++) per.push(polyline(routes[ri++]));
    entryPoints.push(per);
  }
  const exitPoints: number[][] = [];
  for (let i = 0; i < nExit; i++) exitPoints.push(polyline(routes[ri++]));
  return {
    x: outX,
    y: outY,
    layer: outLayer,
    width: maxX - minX,
    height: Math.max(0, bottom - top),
    edgePoints,
    entryPoints,
    exitPoints,
  };
}
// ---------------------------------------------------------------------------------------------
// The whole graph

interface Block {
  id: string;
  group?: NodeGroup;
  members: SceneNode[];
}

function cutBlocks(scene: Scene): Block[] {
  const groupById = new Map(scene.groups.map((g) => [g.id, g]));
  const blocks: Block[] = [];
  const byKey = new Map<string, Block>();
  // Ungrouped inputs go to the block of their readers when those are all in one block;
  // placed afterwards, so first collect the nodes.
  const readers = new Map<string, string[]>();
  for (const e of scene.edges) {
    let l = readers.get(e.from);
    if (!l) readers.set(e.from, (l = []));
    l.push(e.to);
  }
  const blockOfNode = new Map<string, Block>();
  let topRun = 0;
  let lastWasGroup = false;
  const pendingInputs: SceneNode[] = [];
  // Blocks are ordered by their first op, not their first input: every layer's weights are
  // graph inputs listed before any op.
  for (const n of scene.nodes) {
    if (n.kind === 'input') {
      pendingInputs.push(n);
      continue;
    }
    let key: string;
    if (n.group) {
      key = `group:${n.group}`;
      lastWasGroup = true;
    } else {
      if (lastWasGroup) topRun++;
      lastWasGroup = false;
      key = `top:${topRun}`;
    }
    let b = byKey.get(key);
    if (!b) {
      b = { id: key, group: n.group ? groupById.get(n.group) : undefined, members: [] };
      byKey.set(key, b);
      blocks.push(b);
    }
    b.members.push(n);
    blockOfNode.set(n.name, b);
  }
  for (const inp of pendingInputs) {
    const own = inp.group ? byKey.get(`group:${inp.group}`) : undefined;
    if (own) {
      own.members.push(inp);
      blockOfNode.set(inp.name, own);
      continue;
    }
    const bs = new Set((readers.get(inp.name) ?? []).map((r) => blockOfNode.get(r)));
    let b: Block | undefined;
    if (bs.size === 1) b = [...bs][0];
    if (!b) {
      b = byKey.get('top:0');
      if (!b) {
        b = { id: 'top:0', members: [] };
        byKey.set('top:0', b);
        blocks.unshift(b);
      }
    }
    b.members.push(inp);
    blockOfNode.set(inp.name, b);
  }
  for (const b of blocks) b.members.sort((p, q) => p.order - q.order);
  return blocks;
}

function hashKey(s: string): string {
  // FNV-1a over the block's description; collisions only cost a wrong cache hit, so pair the
  // hash with the length.
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return `${(h >>> 0).toString(36)}:${s.length}`;
}

/**
 * One block's share of a layout, as soon as that block is laid out and placed: its nodes,
 * edges and frame in the stacking frame (before the final shift to a positive frame, which
 * needs the widest block). A block's place depends only on the blocks above it, so a view can
 * paint it at once; `assembleLayout` turns the blocks so far into a GraphLayout.
 */
export interface LayoutChunk {
  /** Index of the block, top = 0. */
  block: number;
  /** How many blocks the whole layout has. */
  blocks: number;
  nodes: LaidNode[];
  /** Edges inside the block. */
  edges: LaidEdge[];
  /** Edges from the block above into this one, through the ports between them. */
  crossEdges: LaidEdge[];
  group?: LaidGroup;
}

export function layoutScene(scene: Scene, opts: LayoutOptions = {}): GraphLayout {
  const chunks: LayoutChunk[] = [];
  for (const c of layoutSceneBlocks(scene, opts)) chunks.push(c);
  return assembleLayout(chunks, !!opts.previous);
}

/**
 * The layout block by block, top down: each block is yielded as soon as it is laid out, before
 * the next is started. `assembleLayout` over everything yielded is `layoutScene`'s result.
 */
export function* layoutSceneBlocks(
  scene: Scene,
  opts: LayoutOptions = {},
): Generator<LayoutChunk, void, undefined> {
  const collapsed = opts.collapsed ?? new Set<string>();
  const maxSpan = opts.maxSpan ?? 40;
  const blocks = cutBlocks(scene);
  const blockIndex = new Map<string, number>();
  blocks.forEach((b, i) => {
    for (const m of b.members) blockIndex.set(m.name, i);
  });
  const isCollapsed = (b: Block) => !!b.group && collapsed.has(b.group.id);

  // Edges by kind: inside a block, into the next block (ports), or a far reference (stub).
  const inner: SceneEdge[][] = blocks.map(() => []);
  const toNext: SceneEdge[][] = blocks.map(() => []);
  const farRefs: SceneEdge[][] = blocks.map(() => []);
  for (const e of scene.edges) {
    const a = blockIndex.get(e.from),
      b = blockIndex.get(e.to);
    if (a === undefined || b === undefined) continue;
    if (a === b) inner[a].push(e);
    else if (b === a + 1) toNext[a].push(e);
    else farRefs[b].push(e);
  }

  const prevGroups = new Map<string, LaidGroup>();
  const prevNodes = new Map<string, LaidNode>();
  if (opts.previous) {
    for (const g of opts.previous.layout.groups) prevGroups.set(g.id, g);
    for (const n of opts.previous.layout.nodes) prevNodes.set(n.name, n);
  }
  interface Placed {
    layout: BlockLayout;
    input: BlockInput;
    localIndex: Map<string, number>;
    refs: Map<string, string>;
    w: number;
    h: number;
  }
  // Only the block above is needed to place and wire the next one.
  let above: { p: Placed; b: Block; ox: number; oy: number } | undefined;
  let cursorY = 0;
  for (let bi = 0; bi < blocks.length; bi++) {
    const b = blocks[bi];
    const localIndex = new Map<string, number>();
    const nodes: BlockInput['nodes'] = [];
    const refs = new Map<string, string>(); // stub name → referenced value
    if (isCollapsed(b)) {
      nodes.push({ name: `group:${b.group!.id}`, w: COLLAPSED_W, h: COLLAPSED_H });
      for (const m of b.members) localIndex.set(m.name, 0);
    } else {
      for (const m of b.members) {
        localIndex.set(m.name, nodes.length);
        const node: BlockInput['nodes'][number] = { name: m.name, w: m.w, h: m.h };
        const before = opts.previous ? prevNodes.get(opts.previous.mapping.get(m.name) ?? m.name) : undefined;
        const frame =
          before && b.group && before.group === b.group.id ? prevGroups.get(b.group.id) : undefined;
        if (before && frame) {
          node.minLayer = before.layer;
          node.hintX = before.x + before.w / 2 - frame.x - GROUP_PAD;
        }
        nodes.push(node);
      }
    }
    const edges: BlockInput['edges'] = [];
    const seenEdge = new Set<string>();
    const addEdge = (from: number, to: number, label: string) => {
      if (from === to) return;
      const k = `${from}>${to}`;
      if (seenEdge.has(k)) return;
      seenEdge.add(k);
      edges.push({ from, to, label });
    };
    for (const e of inner[bi]) addEdge(localIndex.get(e.from)!, localIndex.get(e.to)!, e.label);
    // One stub per far value per block, above its first reader.
    const stubOf = new Map<string, number>();
    // A folded layer is one box; values it reads from far away stay out of the picture.
    for (const e of isCollapsed(b) ? [] : farRefs[bi]) {
      let s = stubOf.get(e.from);
      if (s === undefined) {
        s = nodes.length;
        const name = `ref:${e.from}@${b.id}`;
        nodes.push({
          name,
          w: Math.max(48, Math.ceil(e.from.length * REF_CHAR) + 26),
          h: REF_H,
          ref: e.from,
        });
        refs.set(name, e.from);
        stubOf.set(e.from, s);
      }
      addEdge(s, localIndex.get(e.to)!, e.label);
    }
    const entriesByValue = new Map<string, BlockInput['entries'][number]>();
    if (bi > 0) {
      for (const e of toNext[bi - 1]) {
        let en = entriesByValue.get(e.from);
        if (!en) entriesByValue.set(e.from, (en = { value: e.from, label: e.label, targets: [] }));
        const t = localIndex.get(e.to)!;
        if (!en.targets.includes(t)) en.targets.push(t);
      }
    }
    const exits: BlockInput['exits'] = [];
    const exitSeen = new Set<string>();
    for (const e of toNext[bi]) {
      if (exitSeen.has(e.from)) continue;
      exitSeen.add(e.from);
      exits.push({ value: e.from, source: localIndex.get(e.from)! });
    }
    const entries = [...entriesByValue.values()];
    const desc = JSON.stringify([
      nodes.map((n) => [n.name, n.w, n.h, n.minLayer, n.hintX]),
      edges.map((e) => [e.from, e.to]),
      entries.map((en) => en.targets),
      exits.map((x) => x.source),
      maxSpan,
    ]);
    const key = hashKey(desc);
    const input: BlockInput = { key, nodes, edges, entries, exits };
    let layout = opts.cache?.get(key);
    if (!layout) {
      layout = layoutBlock(input, maxSpan);
      opts.cache?.set(key, layout);
    }
    const framed = !!b.group;
    const padX = framed ? GROUP_PAD : 0;
    const padTop = framed ? GROUP_HEADER + 10 : 0;
    const padBottom = framed ? GROUP_PAD : 0;
    const p: Placed = {
      layout,
      input,
      localIndex,
      refs,
      w: layout.width + 2 * padX,
      h: layout.height + padTop + padBottom,
    };

    // Stack the block below the ones before it. (Lining each block up with the ports of the
    // one above drifts sideways over dozens of layers, so blocks share one vertical axis.)
    // With a previous layout, a block keeps its place.
    const innerX = framed ? GROUP_PAD : 0;
    const innerY = framed ? GROUP_HEADER + 10 : 0;
    let oy = cursorY;
    let x = -p.layout.width / 2 - innerX;
    if (opts.previous) {
      const anchor = previousAnchor(p, opts.previous.mapping, prevNodes, innerX, innerY);
      if (anchor) {
        x = anchor.x;
        oy = Math.max(cursorY, anchor.y);
      } else if (b.group && prevGroups.has(b.group.id)) {
        const pg = prevGroups.get(b.group.id)!;
        x = pg.x;
        oy = Math.max(cursorY, pg.y);
      }
    }
    cursorY = oy + p.h + BLOCK_GAP;

    const chunk: LayoutChunk = { block: bi, blocks: blocks.length, nodes: [], edges: [], crossEdges: [] };
    const ix = x + innerX,
      iy = oy + innerY;
    p.input.nodes.forEach((n, i) => {
      chunk.nodes.push({
        name: n.name,
        x: ix + p.layout.x[i],
        y: iy + p.layout.y[i],
        w: n.w,
        h: n.h,
        layer: p.layout.layer[i],
        ...(n.ref ? { ref: n.ref } : {}),
        ...(b.group ? { group: b.group.id } : {}),
      });
    });
    const shift = (pts: number[]) => pts.map((v, k) => (k & 1 ? v + iy : v + ix));
    p.input.edges.forEach((e, i) => {
      chunk.edges.push({
        from: p.input.nodes[e.from].name,
        to: p.input.nodes[e.to].name,
        points: shift(p.layout.edgePoints[i]),
        label: e.label,
      });
    });
    if (b.group) {
      chunk.group = {
        id: b.group.id,
        label: b.group.label,
        x,
        y: oy,
        w: p.w,
        h: p.h,
        collapsed: isCollapsed(b),
        count: b.members.length,
      };
    }
    // Edges from the block above: down to its exit port, across the gap, into the target.
    if (above) {
      const a = above.p;
      const ax = above.ox + (above.b.group ? GROUP_PAD : 0),
        ay = above.oy + (above.b.group ? GROUP_HEADER + 10 : 0);
      p.input.entries.forEach((en, i) => {
        const xi = a.input.exits.findIndex((ex) => ex.value === en.value);
        if (xi < 0) return;
        const down = a.layout.exitPoints[xi].map((v, k) => (k & 1 ? v + ay : v + ax));
        const source = a.input.nodes[a.input.exits[xi].source].name;
        en.targets.forEach((t, j) => {
          const into = p.layout.entryPoints[i][j].map((v, k) => (k & 1 ? v + iy : v + ix));
          chunk.crossEdges.push({
            from: source,
            to: p.input.nodes[t].name,
            points: down.concat(into),
            label: en.label,
          });
        });
      });
    }
    above = { p, b, ox: x, oy };
    yield chunk;
  }
}

/**
 * The layout of the blocks so far (all of them: the finished layout), shifted to a positive
 * frame with a margin. `anchored`: laid out against a previous layout, whose frame must not
 * move or unchanged nodes would shift with it. Copies; the chunks are left as they are.
 */
export function assembleLayout(chunks: readonly LayoutChunk[], anchored = false): GraphLayout {
  const M = 24;
  let minX = Infinity,
    minY = Infinity,
    maxX = -Infinity,
    maxY = -Infinity;
  for (const c of chunks) {
    for (const n of c.nodes) {
      minX = Math.min(minX, n.x);
      minY = Math.min(minY, n.y);
      maxX = Math.max(maxX, n.x + n.w);
      maxY = Math.max(maxY, n.y + n.h);
    }
  }
  for (const c of chunks) {
    const g = c.group;
    if (g) {
      minX = Math.min(minX, g.x);
      minY = Math.min(minY, g.y);
      maxX = Math.max(maxX, g.x + g.w);
      maxY = Math.max(maxY, g.y + g.h);
    }
  }
  if (!isFinite(minX)) {
    minX = minY = 0;
    maxX = maxY = 0;
  }
  const dx = anchored ? 0 : M - minX;
  const dy = anchored ? 0 : M - minY;
  const moved = !!(dx || dy);
  const nodes: LaidNode[] = [],
    edges: LaidEdge[] = [],
    groups: LaidGroup[] = [];
  const movedEdge = (e: LaidEdge): LaidEdge => ({
    ...e,
    points: moved ? e.points.map((v, k) => v + (k & 1 ? dy : dx)) : e.points.slice(),
  });
  for (const c of chunks) {
    for (const n of c.nodes) nodes.push(moved ? { ...n, x: n.x + dx, y: n.y + dy } : { ...n });
    for (const e of c.edges) edges.push(movedEdge(e));
    if (c.group) groups.push(moved ? { ...c.group, x: c.group.x + dx, y: c.group.y + dy } : { ...c.group });
  }
  // Edges between blocks come after every block's own edges (they draw over them).
  for (const c of chunks) for (const e of c.crossEdges) edges.push(movedEdge(e));
  let width = 0,
    height = 0;
  for (const n of nodes) {
    width = Math.max(width, n.x + n.w);
    height = Math.max(height, n.y + n.h);
  }
  for (const g of groups) {
    width = Math.max(width, g.x + g.w);
    height = Math.max(height, g.y + g.h);
  }
  return { nodes, edges, groups, width: width + M, height: height + M };
}

/** Where a block goes so its nodes that survived a rewrite stay put. */
function previousAnchor(
  p: { layout: BlockLayout; input: BlockInput },
  mapping: ReadonlyMap<string, string>,
  prevNodes: Map<string, LaidNode>,
  innerX: number,
  innerY: number,
): { x: number; y: number } | undefined {
  const dxs: number[] = [],
    dys: number[] = [];
  p.input.nodes.forEach((n, i) => {
    const before = prevNodes.get(mapping.get(n.name) ?? n.name);
    if (!before) return;
    dxs.push(before.x - (p.layout.x[i] + innerX));
    dys.push(before.y - (p.layout.y[i] + innerY));
  });
  if (!dxs.length) return undefined;
  return { x: mostCommon(dxs), y: mostCommon(dys) };
}

/**
 * The offset shared by most nodes (to the pixel): where a rewrite widened one column, the
 * columns it did not touch agree exactly, while a median would split the difference.
 */
function mostCommon(xs: number[]): number {
  const count = new Map<number, { n: number; sum: number }>();
  let best: { n: number; sum: number } | undefined;
  for (const x of xs) {
    const k = Math.round(x);
    let c = count.get(k);
    if (!c) count.set(k, (c = { n: 0, sum: 0 }));
    c.n++;
    c.sum += x;
    if (!best || c.n > best.n) best = c;
  }
  return best!.sum / best!.n;
}
