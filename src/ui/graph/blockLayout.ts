// One block of the layered layout (Sugiyama style), in its own frame: longest-path layering,
// dummy nodes on long edges, barycentric crossing reduction, then x by weighted isotonic
// regression (nodes pulled toward their neighbours, order and spacing kept exactly), then y by
// layer bands. Values entering the block come through ports at its top, values leaving it
// through ports at its bottom. `layout.ts` cuts the graph into blocks and stacks them.
//
// Everything is iterative: no recursion, so a 10,000-node block cannot overflow the stack.

const LAYER_GAP = 46;
const BAND_H = 40;
const NODE_GAP = 26;
const DUMMY_GAP = 10;

/** One block's input: its own nodes, the edges among them, and what crosses its border. */
export interface BlockInput {
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

/** The vertices one original edge passes through, dummies included. */
type Route = number[];

/**
 * The block as a proper layered graph. Vertex ids: real nodes, then entry ports, then exit
 * ports, then dummies; every edge joins neighbouring layers.
 */
interface LayeredBlock {
  input: BlockInput;
  nReal: number;
  nEntry: number;
  nExit: number;
  entryBase: number;
  exitBase: number;
  /** Vertices, dummies included. */
  nV: number;
  succ: number[][];
  pred: number[][];
  layer: number[];
  nLayers: number;
  width: number[];
  height: number[];
  isDummy: boolean[];
  /** Each real node's place in topological order. */
  pos: Int32Array;
  /** Internal edges, then entry → target per entry, then source → exit: in that order. */
  routes: Route[];
}

export function layoutBlock(input: BlockInput, maxSpan = Infinity): BlockLayout {
  const g = withDummies(input, rankNodes(input), maxSpan);
  const layers = orderLayers(g);
  const x = placeX(g, layers);
  return frameBlock(g, layers, x);
}

/**
 * Layers by longest path over the real nodes in topological order (Kahn); sources sink to just
 * above their first reader, and a rewritten block's nodes back to their old band where free.
 * Entry ports take layer 0, exit ports the one below the last.
 */
function rankNodes(input: BlockInput): { pos: Int32Array; layer: number[]; nLayers: number } {
  const nReal = input.nodes.length;
  const nEntry = input.entries.length;
  const nExit = input.exits.length;
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
  const layer: number[] = new Array<number>(nReal + nEntry + nExit).fill(0);
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
  for (let i = 0; i < nEntry; i++) layer[nReal + i] = 0;
  for (let i = 0; i < nExit; i++) layer[nReal + nEntry + i] = maxLayer + 1;
  return { pos, layer, nLayers: maxLayer + (nExit ? 2 : 1) };
}

/**
 * The layered graph: a dummy vertex in every layer an edge crosses, unless the edge spans more
 * than `maxSpan` layers (then it is drawn straight from end to end).
 */
function withDummies(input: BlockInput, ranked: ReturnType<typeof rankNodes>, maxSpan: number): LayeredBlock {
  const nReal = input.nodes.length;
  const nEntry = input.entries.length;
  const nExit = input.exits.length;
  const entryBase = nReal,
    exitBase = nReal + nEntry;
  const { layer } = ranked;
  let nV = exitBase + nExit;
  const succ: number[][] = [],
    pred: number[][] = [];
  const width: number[] = [],
    height: number[] = [],
    isDummy: boolean[] = [];
  for (let i = 0; i < nV; i++) {
    succ.push([]);
    pred.push([]);
    const real = i < nReal;
    width.push(real ? input.nodes[i].w : 2);
    height.push(real ? input.nodes[i].h : 0);
    isDummy.push(!real);
  }
  const rawEdges: [number, number][] = [];
  for (const e of input.edges) rawEdges.push([e.from, e.to]);
  for (let i = 0; i < nEntry; i++)
    for (const t of input.entries[i].targets) rawEdges.push([entryBase + i, t]);
  for (let i = 0; i < nExit; i++) rawEdges.push([input.exits[i].source, exitBase + i]);
  const routes: Route[] = [];
  for (const [a, b] of rawEdges) {
    const route: Route = [a];
    let prev = a;
    if (layer[b] > layer[a] + 1 && layer[b] - layer[a] <= maxSpan + 1) {
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
    }
    succ[prev].push(b);
    pred[b].push(prev);
    route.push(b);
    routes.push(route);
  }
  return {
    input,
    nReal,
    nEntry,
    nExit,
    entryBase,
    exitBase,
    nV,
    succ,
    pred,
    layer,
    nLayers: ranked.nLayers,
    width,
    height,
    isDummy,
    pos: ranked.pos,
    routes,
  };
}

/**
 * The order within each layer: graph order for real nodes, ports and dummies beside their
 * neighbour, then a few down and up sweeps of barycentric crossing reduction.
 */
function orderLayers(g: LayeredBlock): number[][] {
  const { input, nReal, nEntry, nExit, entryBase, exitBase, nV, pos, nLayers, succ, pred } = g;
  const key = new Float64Array(nV);
  for (let v = 0; v < nReal; v++) key[v] = pos[v];
  for (let i = 0; i < nEntry; i++) {
    const t = input.entries[i].targets;
    key[entryBase + i] = t.length ? Math.min(...t.map((x) => pos[x])) - 0.5 : 0;
  }
  for (let i = 0; i < nExit; i++) key[exitBase + i] = pos[input.exits[i].source] + 0.5;
  for (const r of g.routes) for (let j = 1; j < r.length - 1; j++) key[r[j]] = key[r[0]] + 0.25;
  const layers: number[][] = Array.from({ length: nLayers }, () => []);
  for (let v = 0; v < nV; v++) layers[g.layer[v]].push(v);
  for (const l of layers) l.sort((a, b) => key[a] - key[b]);
  const index = new Float64Array(nV);
  const reindex = (l: number[]) => {
    for (let i = 0; i < l.length; i++) index[l[i]] = i;
  };
  layers.forEach(reindex);

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
  return layers;
}

/** Centres' x: start packed, then pull each node toward its neighbours, alternating directions. */
function placeX(g: LayeredBlock, layers: number[][]): Float64Array {
  const { width, isDummy, succ, pred } = g;
  const x = new Float64Array(g.nV);
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
  // Layer by layer in `order`: the x each node wants and how hard, fitted keeping order and spacing.
  const fitLayers = (order: number[][], want: (v: number) => { at: number; weight: number }) => {
    for (const l of order) {
      let o = 0;
      for (let i = 0; i < l.length; i++) {
        const v = l[i];
        if (i) o += sep(l[i - 1], v);
        off[i] = o;
        const w = want(v);
        e[i] = w.at - o;
        wt[i] = w.weight;
      }
      isotonic(e, wt, fit, l.length);
      for (let i = 0; i < l.length; i++) x[l[i]] = fit[i] + off[i];
    }
  };
  const place = (dir: 'down' | 'up' | 'both') =>
    fitLayers(dir === 'up' ? [...layers].reverse() : layers, (v) => {
      const nb = dir === 'down' ? pred[v] : dir === 'up' ? succ[v] : pred[v].concat(succ[v]);
      let d = x[v];
      if (nb.length) {
        let s = 0;
        for (const u of nb) s += x[u];
        d = s / nb.length;
      }
      // Dummies weigh more: long edges stay straight; nodes with wires get pulled harder.
      return { at: d, weight: isDummy[v] ? 4 : nb.length ? 1 : 0.05 };
    });
  for (let it = 0; it < 6; it++) {
    place('down');
    place('up');
  }
  place('both');
  // A rewritten block: one last pass pulls every node that was there before toward its old
  // x (in this frame: shifted by the offset most of them share), others stay where they are.
  const nodes = g.input.nodes;
  const hints: number[] = [];
  for (let v = 0; v < g.nReal; v++) if (nodes[v].hintX !== undefined) hints.push(v);
  if (hints.length) {
    const shift = mostCommon(hints.map((v) => x[v] - nodes[v].hintX!));
    fitLayers(layers, (v) => {
      const h = v < g.nReal ? nodes[v].hintX : undefined;
      return h !== undefined ? { at: h + shift, weight: 4 } : { at: x[v], weight: 1 };
    });
  }
  return x;
}

/**
 * The block in its own frame: layer bands tall enough for their tallest node, boxes by their
 * top-left corner, and every edge's polyline; ports sit on the block's border.
 */
function frameBlock(g: LayeredBlock, layers: number[][], x: Float64Array): BlockLayout {
  const { input, nReal, nEntry, nExit, entryBase, exitBase, nLayers, width, height, isDummy, layer } = g;
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
  for (let v = 0; v < g.nV; v++) {
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
    const li = layer[v];
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
  const routes = g.routes;
  let ri = 0;
  const edgePoints = input.edges.map(() => polyline(routes[ri++]));
  const entryPoints = input.entries.map((en) => en.targets.map(() => polyline(routes[ri++])));
  const exitPoints = input.exits.map(() => polyline(routes[ri++]));
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

/**
 * The offset shared by most values (to the pixel): where a rewrite widened one column, the
 * columns it did not touch agree exactly, while a median would split the difference.
 */
export function mostCommon(xs: number[]): number {
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
