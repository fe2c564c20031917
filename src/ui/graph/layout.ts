// Layered top-to-bottom layout, hierarchical by namespace group.
//
// The scene is cut into blocks: each decoder layer is one block, and the ungrouped runs
// between them (prologue, epilogue) are blocks too. A block is laid out on its own
// (`blockLayout.ts`) and cached by its content, so a rewrite relays only the block it touched
// and no block waits for the whole graph. Blocks are then stacked. Values flowing into the next
// block leave through ports at the bottom and enter through ports at the top; values that skip
// blocks (weights shared by every layer, very long edges) are drawn as small reference stubs
// beside their reader instead of wires across the whole graph.
//
// Everything is iterative: no recursion, so 10,000-node graphs cannot overflow the stack.

import type { Scene, SceneNode, SceneEdge } from './scene.ts';
import type { NodeGroup } from '../../graph/groups.ts';
import { layoutBlock, mostCommon, type BlockInput, type BlockLayout } from './blockLayout.ts';

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
const BLOCK_GAP = 56;
const GROUP_PAD = 18;
const GROUP_HEADER = 26;
const REF_H = 22;
const REF_CHAR = 6.1;

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
  const edges = edgesByBlock(scene, blocks);
  const previous = opts.previous && previousFrames(opts.previous);
  // Only the block above is needed to place and wire the next one.
  let above: PlacedBlock | undefined;
  let cursorY = 0;
  for (let bi = 0; bi < blocks.length; bi++) {
    const block = blocks[bi];
    const folded = !!block.group && collapsed.has(block.group.id);
    const input = blockInput(block, folded, bi, edges, maxSpan, previous);
    let layout = opts.cache?.get(input.key);
    if (!layout) {
      layout = layoutBlock(input, maxSpan);
      opts.cache?.set(input.key, layout);
    }
    const placed = stackBlock(block, folded, input, layout, cursorY, previous);
    cursorY = placed.y + placed.h + BLOCK_GAP;
    yield blockChunk(placed, folded, bi, blocks.length, above);
    above = placed;
  }
}

/** The previous layout's boxes and layer frames by name, with the mapping after-name → before-name. */
interface PreviousFrames {
  mapping: ReadonlyMap<string, string>;
  nodes: Map<string, LaidNode>;
  groups: Map<string, LaidGroup>;
}

function previousFrames(previous: NonNullable<LayoutOptions['previous']>): PreviousFrames {
  return {
    mapping: previous.mapping,
    nodes: new Map(previous.layout.nodes.map((n) => [n.name, n])),
    groups: new Map(previous.layout.groups.map((g) => [g.id, g])),
  };
}

/** Per block, the scene edges by kind: inside it, into it from the block above (ports), or from far away (stubs). */
interface BlockEdges {
  inner: SceneEdge[][];
  fromAbove: SceneEdge[][];
  far: SceneEdge[][];
}

function edgesByBlock(scene: Scene, blocks: Block[]): BlockEdges {
  const blockIndex = new Map<string, number>();
  blocks.forEach((b, i) => {
    for (const m of b.members) blockIndex.set(m.name, i);
  });
  const edges: BlockEdges = {
    inner: blocks.map(() => []),
    fromAbove: blocks.map(() => []),
    far: blocks.map(() => []),
  };
  for (const e of scene.edges) {
    const a = blockIndex.get(e.from),
      b = blockIndex.get(e.to);
    if (a === undefined || b === undefined) continue;
    if (a === b) edges.inner[a].push(e);
    else if (b === a + 1) edges.fromAbove[b].push(e);
    else edges.far[b].push(e);
  }
  return edges;
}

/**
 * Where a block's contents start inside its frame: an open layer's box has a margin and a header;
 * a folded layer is its one box, title inside, so it takes one row rather than an empty frame.
 */
function inset(b: Block, folded: boolean): { x: number; y: number } {
  return b.group && !folded ? { x: GROUP_PAD, y: GROUP_HEADER + 10 } : { x: 0, y: 0 };
}

/**
 * Block `bi` as the block layout takes it: its members (one box when folded), each with its old
 * band and column after a rewrite; one stub per far value; its ports; and a key by content.
 */
function blockInput(
  b: Block,
  folded: boolean,
  bi: number,
  edges: BlockEdges,
  maxSpan: number,
  previous: PreviousFrames | undefined,
): BlockInput {
  const { nodes, localIndex } = blockNodes(b, folded, previous);
  const blockEdges: BlockInput['edges'] = [];
  const seenEdge = new Set<string>();
  const addEdge = (from: number, to: number, label: string) => {
    if (from === to) return;
    const k = `${from}>${to}`;
    if (seenEdge.has(k)) return;
    seenEdge.add(k);
    blockEdges.push({ from, to, label });
  };
  for (const e of edges.inner[bi]) addEdge(localIndex.get(e.from)!, localIndex.get(e.to)!, e.label);
  // One stub per far value per block, above its first reader.
  const stubOf = new Map<string, number>();
  // A folded layer is one box; values it reads from far away stay out of the picture.
  for (const e of folded ? [] : edges.far[bi]) {
    let s = stubOf.get(e.from);
    if (s === undefined) {
      s = nodes.length;
      nodes.push({
        name: `ref:${e.from}@${b.id}`,
        w: Math.max(48, Math.ceil(e.from.length * REF_CHAR) + 26),
        h: REF_H,
        ref: e.from,
      });
      stubOf.set(e.from, s);
    }
    addEdge(s, localIndex.get(e.to)!, e.label);
  }
  const entriesByValue = new Map<string, BlockInput['entries'][number]>();
  for (const e of edges.fromAbove[bi]) {
    let en = entriesByValue.get(e.from);
    if (!en) entriesByValue.set(e.from, (en = { value: e.from, label: e.label, targets: [] }));
    const t = localIndex.get(e.to)!;
    if (!en.targets.includes(t)) en.targets.push(t);
  }
  const exits: BlockInput['exits'] = [];
  const exitSeen = new Set<string>();
  for (const e of edges.fromAbove[bi + 1] ?? []) {
    if (exitSeen.has(e.from)) continue;
    exitSeen.add(e.from);
    exits.push({ value: e.from, source: localIndex.get(e.from)! });
  }
  const entries = [...entriesByValue.values()];
  const desc = JSON.stringify([
    nodes.map((n) => [n.name, n.w, n.h, n.minLayer, n.hintX]),
    blockEdges.map((e) => [e.from, e.to]),
    entries.map((en) => en.targets),
    exits.map((x) => x.source),
    maxSpan,
  ]);
  return { key: hashKey(desc), nodes, edges: blockEdges, entries, exits };
}

/** A block's own boxes (one for a folded layer) and where each member went among them. */
function blockNodes(
  b: Block,
  folded: boolean,
  previous: PreviousFrames | undefined,
): { nodes: BlockInput['nodes']; localIndex: Map<string, number> } {
  const localIndex = new Map<string, number>();
  const nodes: BlockInput['nodes'] = [];
  if (folded) {
    nodes.push({ name: `group:${b.group!.id}`, w: COLLAPSED_W, h: COLLAPSED_H });
    for (const m of b.members) localIndex.set(m.name, 0);
    return { nodes, localIndex };
  }
  for (const m of b.members) {
    localIndex.set(m.name, nodes.length);
    const node: BlockInput['nodes'][number] = { name: m.name, w: m.w, h: m.h };
    const before = previous?.nodes.get(previous.mapping.get(m.name) ?? m.name);
    const frame =
      before && b.group && before.group === b.group.id ? previous!.groups.get(b.group.id) : undefined;
    if (before && frame) {
      node.minLayer = before.layer;
      node.hintX = before.x + before.w / 2 - frame.x - GROUP_PAD;
    }
    nodes.push(node);
  }
  return { nodes, localIndex };
}

/** A block laid out and put in place: its frame's top-left corner and size, in the stacking frame. */
interface PlacedBlock {
  block: Block;
  folded: boolean;
  input: BlockInput;
  layout: BlockLayout;
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * Stacks the block below the ones before it (`cursorY`). Lining each block up with the ports of
 * the one above drifts sideways over dozens of layers, so blocks share one vertical axis. With a
 * previous layout, a block keeps its place.
 */
function stackBlock(
  block: Block,
  folded: boolean,
  input: BlockInput,
  layout: BlockLayout,
  cursorY: number,
  previous: PreviousFrames | undefined,
): PlacedBlock {
  const inner = inset(block, folded);
  const w = layout.width + 2 * inner.x;
  const h = layout.height + inner.y + (block.group && !folded ? GROUP_PAD : 0);
  let y = cursorY;
  let x = -layout.width / 2 - inner.x;
  if (previous) {
    const anchor = previousAnchor(input, layout, previous, inner);
    const pg = block.group && previous.groups.get(block.group.id);
    if (anchor) {
      x = anchor.x;
      y = Math.max(cursorY, anchor.y);
    } else if (pg) {
      x = pg.x;
      y = Math.max(cursorY, pg.y);
    }
  }
  return { block, folded, input, layout, x, y, w, h };
}

/** The placed block's boxes, wires and frame, and the wires into it from the block above. */
function blockChunk(
  p: PlacedBlock,
  folded: boolean,
  index: number,
  count: number,
  above: PlacedBlock | undefined,
): LayoutChunk {
  const { block: b, input, layout } = p;
  const chunk: LayoutChunk = { block: index, blocks: count, nodes: [], edges: [], crossEdges: [] };
  const inner = inset(b, folded);
  const ix = p.x + inner.x,
    iy = p.y + inner.y;
  input.nodes.forEach((n, i) => {
    chunk.nodes.push({
      name: n.name,
      x: ix + layout.x[i],
      y: iy + layout.y[i],
      w: n.w,
      h: n.h,
      layer: layout.layer[i],
      ...(n.ref ? { ref: n.ref } : {}),
      ...(b.group ? { group: b.group.id } : {}),
    });
  });
  const shift = (pts: number[], dx: number, dy: number) => pts.map((v, k) => (k & 1 ? v + dy : v + dx));
  input.edges.forEach((e, i) => {
    chunk.edges.push({
      from: input.nodes[e.from].name,
      to: input.nodes[e.to].name,
      points: shift(layout.edgePoints[i], ix, iy),
      label: e.label,
    });
  });
  if (b.group) {
    // A folded layer's frame is its one box: the wires meet its edges.
    const frame = folded
      ? { x: ix + layout.x[0], y: iy + layout.y[0], w: input.nodes[0].w, h: input.nodes[0].h }
      : { x: p.x, y: p.y, w: p.w, h: p.h };
    chunk.group = {
      id: b.group.id,
      label: b.group.label,
      ...frame,
      collapsed: folded,
      count: b.members.length,
    };
  }
  // Edges from the block above: down to its exit port, across the gap, into the target.
  if (above) {
    const a = above.input;
    const aInner = inset(above.block, above.folded);
    const ax = above.x + aInner.x,
      ay = above.y + aInner.y;
    input.entries.forEach((en, i) => {
      const xi = a.exits.findIndex((ex) => ex.value === en.value);
      if (xi < 0) return;
      const down = shift(above.layout.exitPoints[xi], ax, ay);
      const source = a.nodes[a.exits[xi].source].name;
      en.targets.forEach((t, j) => {
        chunk.crossEdges.push({
          from: source,
          to: input.nodes[t].name,
          points: down.concat(shift(layout.entryPoints[i][j], ix, iy)),
          label: en.label,
        });
      });
    });
  }
  return chunk;
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
  input: BlockInput,
  layout: BlockLayout,
  previous: PreviousFrames,
  inner: { x: number; y: number },
): { x: number; y: number } | undefined {
  const dxs: number[] = [],
    dys: number[] = [];
  input.nodes.forEach((n, i) => {
    const before = previous.nodes.get(previous.mapping.get(n.name) ?? n.name);
    if (!before) return;
    dxs.push(before.x - (layout.x[i] + inner.x));
    dys.push(before.y - (layout.y[i] + inner.y));
  });
  if (!dxs.length) return undefined;
  return { x: mostCommon(dxs), y: mostCommon(dys) };
}
