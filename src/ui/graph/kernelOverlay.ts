// Inductor's kernels drawn on a graph: each launch as a box around the nodes it fused, numbered by
// its place in `call()`, and the profiler trace's time of each, per node, for the time overlay.
// The boxes are drawn like the layer groups (SvgScene's group box) but do not take part in the
// layout: they are fitted around nodes already placed. Pure: no DOM, no store.

import { calledOp } from '../../graph/call.ts';
import type { Graph } from '../../graph/ir.ts';
import {
  kernelGroups,
  MAPPING_SOURCE_LABEL,
  type KernelGroup,
  type MappingSource,
  type OutputCode,
  type ProvenanceMapping,
} from '../../graph/artifacts/outputCode.ts';
import { predictedGroups, type KernelChangePrediction } from '../../graph/artifacts/kernelDiff.ts';
import {
  matchOpNodes,
  matchTrace,
  nodeTraceTimes,
  type ProfilerTrace,
  type TraceMatch,
} from '../../graph/artifacts/profilerTrace.ts';
import type { LaidNode } from './layout.ts';

/** What the files say about one graph's kernels. */
export interface GraphKernels {
  /** Every launch of the graph's own output code, with the nodes of this graph it covers. */
  groups: KernelGroup[];
  /** The launches that cover any node of this graph: the boxes a view draws. */
  drawn: KernelGroup[];
  /** Whether the output code was generated from this graph. */
  own: boolean;
  /**
   * Without output code of its own, a rewritten graph's kernels predicted from the imported graph's
   * (kernelDiff.ts): `groups` are then the predicted launches.
   */
  predicted: KernelChangePrediction | null;
  /** Node → the launch that covers it. */
  kernelOf: Map<string, KernelGroup>;
  /** Where the groupings came from, each once. */
  sources: MappingSource[];
  match: TraceMatch | null;
  /** Node → µs measured in the trace: its kernel's, or its custom op's. */
  times: Map<string, number>;
}

export function graphKernels(
  graph: Graph,
  code: OutputCode | null,
  prov: ProvenanceMapping | null,
  trace: ProfilerTrace | null,
  predicted: KernelChangePrediction | null = null,
): GraphKernels {
  const groups = code
    ? kernelGroups(
        code,
        graph.nodes.map((n) => n.name),
        prov ?? undefined,
      )
    : predicted
      ? predictedGroups(predicted, graph)
      : [];
  const kernelOf = new Map<string, KernelGroup>();
  for (const g of groups) for (const n of g.nodes) kernelOf.set(n, g);
  // The trace ran the imported graph's code: it times that code's launches, not a predicted list.
  const match = trace && code ? matchTrace(trace, groups) : null;
  // Custom ops and collectives outside Inductor's kernels: fusionlab's fused ops among them.
  const opNodes = graph.nodes
    .filter((n) => !kernelOf.has(n.name) && n.op === 'call_function')
    .map((n) => ({ name: n.name, op: calledOp(n) }))
    .filter((n) => !n.op.startsWith('aten.') && n.op.includes('.'));
  const opTimes = trace ? matchOpNodes(trace, opNodes) : new Map<string, number>();
  const times = match ? nodeTraceTimes(groups, match, opTimes) : opTimes;
  const sources = [...new Set(groups.filter((g) => g.nodes.length).map((g) => g.source))];
  const drawn = groups.filter((g) => g.nodes.length > 0);
  return {
    groups,
    drawn,
    own: code !== null,
    predicted: code ? null : predicted,
    kernelOf,
    sources,
    match,
    times,
  };
}

/** A launch's box: the group box's geometry, fitted around its nodes. */
export interface KernelBox {
  id: string;
  label: string;
  /** Launch index in `call()`. */
  index: number;
  source: MappingSource;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Space between a kernel's nodes and its box; room above them for the label. */
const PAD = 6;
const LABEL_H = 14;

export function kernelLabel(g: KernelGroup): string {
  return `#${g.launch.index} ${g.launch.kernel}`;
}

export function kernelBoxes(nodes: readonly LaidNode[], groups: readonly KernelGroup[]): KernelBox[] {
  const at = new Map<string, LaidNode>();
  for (const n of nodes) if (!n.ref) at.set(n.name, n);
  const boxes: KernelBox[] = [];
  for (const g of groups) {
    let x0 = Infinity,
      y0 = Infinity,
      x1 = -Infinity,
      y1 = -Infinity;
    for (const name of g.nodes) {
      const n = at.get(name);
      if (!n) continue;
      x0 = Math.min(x0, n.x);
      y0 = Math.min(y0, n.y);
      x1 = Math.max(x1, n.x + n.w);
      y1 = Math.max(y1, n.y + n.h);
    }
    if (x0 > x1) continue;
    boxes.push({
      id: `kernel:${g.launch.index}`,
      label: kernelLabel(g),
      index: g.launch.index,
      source: g.source,
      x: x0 - PAD,
      y: y0 - PAD - LABEL_H,
      w: x1 - x0 + 2 * PAD,
      h: y1 - y0 + 2 * PAD + LABEL_H,
    });
  }
  return boxes;
}

/** A box's tooltip: the kernel, the nodes' source and the launch. */
export function kernelBoxTitle(b: KernelBox): string {
  return `${b.label} · nodes from ${MAPPING_SOURCE_LABEL[b.source]}`;
}
