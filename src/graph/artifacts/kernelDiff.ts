// How a fusionlab rewrite changes Inductor's kernel list, predicted from the before graph's output
// code alone (the usual case: the user has the output code of the graph they compiled, not of the
// rewritten one). Each launch's nodes are followed through the rewrite steps' matches: a launch
// all of whose nodes a fused op took disappears, one that lost some shrinks, and each fused op the
// rewrite made appears as its own launch (a custom op: Inductor calls it, it generates no kernel
// for it), in the place of the first launch it took nodes from.
//
// What Inductor does with what is left is not predicted: the rest of a shrunk kernel may fuse with
// a neighbour (merge), which only the after graph's own output code shows (kernelListChange).
// Pure: no DOM.

import { calledOp, forEachInput } from '../call.ts';
import type { Graph, Node } from '../ir.ts';
import { indexGraph } from '../match.ts';
import { findActivations, findNorms, findQuants } from '../passes/matchers/index.ts';
import type { KernelComments, KernelGroup, KernelKind } from './outputCode.ts';

/** One rewrite step as the pipeline records it: the pass, its matches and the graph it made. */
export interface RewriteStepMatches {
  pass: string;
  matches: readonly { consumed: readonly string[]; produced: readonly string[] }[];
  /** The graph after the step: where the produced nodes' ops are read. */
  graph: Graph;
}

/** A launch of the predicted kernel list. */
export interface PredictedLaunch {
  kernel: string;
  kind: KernelKind;
  /**
   * The nodes it covers, named as in the latest graph: the before graph's nodes a kernel kept, or
   * the nodes a rewrite made for a fused op (its call, its results' getitems, its output buffer).
   */
  nodes: string[];
  /** For a fused op: the nodes of the graph before its pass it took. */
  took?: string[];
  /** Its launch index in the before code; absent for a launch a rewrite made. */
  before?: number;
  /** The pass that made it. */
  pass?: string;
}

/** A before launch that lost nodes to a pass's fused ops. */
export interface LaunchLoss {
  kernel: string;
  /** Launch index in the before code. */
  index: number;
  /** What the lost nodes were, by op family (`rms_norm + quant`), else their ops. */
  what: string;
  /** The fused op launches that took them (`torch.ops._C.rms_norm_static_fp8_quant.default`). */
  into: string[];
}

export interface PassKernelChange {
  pass: string;
  /** Launches every node of which a fused op took: they are no longer launched. */
  gone: LaunchLoss[];
  /** Launches that lost some nodes and keep the rest. */
  shrunk: LaunchLoss[];
  /** Fused op launches the pass made, one per site. */
  added: { kernel: string; site: string }[];
  launches: { before: number; after: number };
}

export interface KernelChangePrediction {
  passes: PassKernelChange[];
  /** The kernel list after every step. */
  launches: PredictedLaunch[];
}

/** Ops Inductor makes no code of its own for: views, allocations, tuple items. */
const NO_CODE =
  /^(getitem|operator\.|aten\.(empty|empty_like|empty_strided|view|_unsafe_view|reshape|slice|select|permute|t|transpose|unsqueeze|squeeze|expand|alias|as_strided|split|split_with_sizes|chunk|unbind)\.)/;

/** Whether Inductor generates code for the op (into one of its own kernels). */
function inductorCompute(op: string): boolean {
  return (op.startsWith('aten.') || op.startsWith('prims.')) && !NO_CODE.test(op);
}

/** The launch a node made by a rewrite is, in the output code's spelling; undefined for Inductor's own ops. */
function fusedLaunchOf(n: Node | undefined): string | undefined {
  if (!n || n.op === 'placeholder' || n.op === 'output') return undefined;
  const op = calledOp(n);
  if (NO_CODE.test(op) || op.startsWith('aten.') || op.startsWith('prims.') || !op.includes('.'))
    return undefined;
  return `torch.ops.${op}`;
}

/** Node → its op family (`rms_norm`, `quant`, `silu_and_mul`), from the matcher layer. */
function opFamilies(graph: Graph): Map<string, string> {
  const ix = indexGraph(graph);
  const family = new Map<string, string>();
  for (const o of findNorms(ix).occurrences) for (const n of o.nodes) family.set(n, o.op);
  for (const o of findQuants(ix).occurrences) for (const n of o.nodes) family.set(n, 'quant');
  for (const o of findActivations(ix).occurrences) for (const n of o.nodes) family.set(n, o.op);
  return family;
}

/** What nodes were, by op family (`rms_norm + quant`), else by their ops (`add, mul`). */
function describe(nodes: readonly string[], family: ReadonlyMap<string, string>, facts: NodeFacts): string {
  const fams = [...new Set(nodes.map((n) => family.get(n)).filter((f) => f !== undefined))];
  if (fams.length) return fams.join(' + ');
  return [...new Set(nodes.map((n) => facts.opName(n)))].join(', ');
}

/** The ops of every node of the graphs seen so far, and who reads whom (a node's refs). */
class NodeFacts {
  private readonly op = new Map<string, string>();
  private readonly reads = new Map<string, Set<string>>();
  add(graph: Graph): void {
    for (const n of graph.nodes) {
      if (this.op.has(n.name)) continue;
      this.op.set(n.name, calledOp(n));
      const refs = new Set<string>();
      forEachInput(n, (r) => refs.add(r));
      this.reads.set(n.name, refs);
    }
  }
  /** `aten.add.Tensor` → `add`. */
  opName(name: string): string {
    const op = this.op.get(name);
    return op ? op.replace(/^(aten|prims)\./, '').replace(/\.\w+$/, '') : name;
  }
  compute(name: string): boolean {
    const op = this.op.get(name);
    return op !== undefined && inductorCompute(op);
  }
  readsAny(names: Iterable<string>, of: ReadonlySet<string>): boolean {
    for (const n of names) for (const r of this.reads.get(n) ?? []) if (of.has(r)) return true;
    return false;
  }
}

/** Whether a launch still runs: a custom or extern op while its node is left, a generated kernel while it has code left. */
function stillLaunched(l: PredictedLaunch, lostAny: boolean, facts: NodeFacts): boolean {
  if (!lostAny) return true;
  if (l.kind === 'custom' || l.kind === 'extern') return l.nodes.length > 0;
  return l.nodes.some((n) => facts.compute(n));
}

/**
 * The kernel list after `steps`, from the before graph's launches (`kernelGroups` on `beforeGraph`),
 * with each pass's change. A custom-op launch the files name no node for is given the k-th node
 * calling that op (their launch order is graph order), so a rewrite that consumes it removes it.
 * A fused op goes where the first launch it took from was, or after it when that launch keeps
 * code the fused op reads (the embedding before a norm).
 */
export function predictKernelChange(
  before: readonly KernelGroup[],
  beforeGraph: Graph,
  steps: readonly RewriteStepMatches[],
): KernelChangePrediction {
  const family = opFamilies(beforeGraph);
  const facts = new NodeFacts();
  facts.add(beforeGraph);
  let launches: PredictedLaunch[] = before.map((g) => ({
    kernel: g.launch.kernel,
    kind: g.launch.kind,
    nodes: [...g.nodes],
    before: g.launch.index,
  }));
  bindCustomLaunches(launches, beforeGraph);
  const passes: PassKernelChange[] = [];
  for (const step of steps) {
    facts.add(step.graph);
    const byName = new Map(step.graph.nodes.map((n) => [n.name, n]));
    const count = launches.length;
    const losses = new Map<PredictedLaunch, { lost: string[]; into: Set<string> }>();
    /** Launches made, by the index of the launch they go after (-1: before the first). */
    const made: { launch: PredictedLaunch; at: number; after: boolean; site: string }[] = [];
    for (const m of step.matches) {
      const consumed = new Set(m.consumed);
      const fused = m.produced
        .map((p) => ({ site: p, kernel: fusedLaunchOf(byName.get(p)) }))
        .filter((x): x is { site: string; kernel: string } => x.kernel !== undefined);
      let at = -1;
      let after = false;
      const took: string[] = [];
      launches.forEach((l, i) => {
        const lost = l.nodes.filter((n) => consumed.has(n));
        if (!lost.length) return;
        const kept = new Set(l.nodes.filter((n) => !consumed.has(n)));
        if (at < 0) {
          at = i;
          after = facts.readsAny(lost, kept);
        }
        took.push(...lost);
        const loss = losses.get(l) ?? { lost: [], into: new Set<string>() };
        loss.lost.push(...lost);
        for (const f of fused) loss.into.add(f.kernel);
        losses.set(l, loss);
        l.nodes = [...kept];
      });
      for (const f of fused)
        made.push({
          launch: { kernel: f.kernel, kind: 'custom', nodes: [...m.produced], took, pass: step.pass },
          at: at < 0 ? launches.length : at,
          after,
          site: f.site,
        });
    }
    const change: PassKernelChange = {
      pass: step.pass,
      gone: [],
      shrunk: [],
      added: made.map((x) => ({ kernel: x.launch.kernel, site: x.site })),
      launches: { before: count, after: 0 },
    };
    for (const [l, loss] of losses) {
      const entry: LaunchLoss = {
        kernel: l.kernel,
        index: l.before ?? -1,
        what: describe(loss.lost, family, facts),
        into: [...loss.into],
      };
      (stillLaunched(l, true, facts) ? change.shrunk : change.gone).push(entry);
    }
    const next: PredictedLaunch[] = [];
    launches.forEach((l, i) => {
      for (const x of made) if (x.at === i && !x.after) next.push(x.launch);
      if (stillLaunched(l, losses.has(l), facts)) next.push(l);
      for (const x of made) if (x.at === i && x.after) next.push(x.launch);
    });
    for (const x of made) if (x.at >= launches.length) next.push(x.launch);
    launches = next;
    change.launches.after = launches.length;
    passes.push(change);
  }
  return { passes, launches };
}

/** Custom-op launches with no nodes from the files: the k-th launch of an op is the k-th node calling it. */
function bindCustomLaunches(launches: PredictedLaunch[], graph: Graph): void {
  const callers = new Map<string, string[]>();
  for (const n of graph.nodes) {
    if (n.op === 'placeholder' || n.op === 'output') continue;
    const k = `torch.ops.${calledOp(n)}`;
    const list = callers.get(k);
    if (list) list.push(n.name);
    else callers.set(k, [n.name]);
  }
  const seen = new Map<string, number>();
  for (const l of launches) {
    if (l.kind !== 'custom') continue;
    const k = seen.get(l.kernel) ?? 0;
    seen.set(l.kernel, k + 1);
    const node = callers.get(l.kernel)?.[k];
    if (!l.nodes.length && node) l.nodes = [node];
  }
}

const NO_COMMENTS: KernelComments = {
  sourceNodes: [],
  dynamoNames: false,
  originalAten: [],
  atenMapping: new Map(),
};

/** The predicted launches as kernel groups on the rewritten graph (its nodes only), numbered by predicted launch order. */
export function predictedGroups(p: KernelChangePrediction, graph: Graph): KernelGroup[] {
  const names = new Set(graph.nodes.map((n) => n.name));
  const order = new Map(graph.nodes.map((n, i) => [n.name, i]));
  return p.launches.map((l, index) => ({
    launch: { index, kernel: l.kernel, kind: l.kind, line: 0, comments: NO_COMMENTS },
    nodes: l.nodes.filter((n) => names.has(n)).sort((a, b) => order.get(a)! - order.get(b)!),
    source: 'predicted',
  }));
}

/**
 * The rewrite steps from the first stage to `stages[upTo]`, one per pass: a stage's matches split
 * by the pass that made them (a stage of several passes, as a pipeline run records it).
 */
export function stageSteps(
  stages: readonly {
    graph: Graph;
    matches: readonly { pass: string; consumed: readonly string[]; produced: readonly string[] }[];
  }[],
  upTo: number,
): RewriteStepMatches[] {
  const steps: RewriteStepMatches[] = [];
  for (const s of stages.slice(1, upTo + 1)) {
    const byPass = new Map<string, RewriteStepMatches['matches'][number][]>();
    for (const m of s.matches) byPass.set(m.pass, [...(byPass.get(m.pass) ?? []), m]);
    for (const [pass, matches] of byPass) steps.push({ pass, matches, graph: s.graph });
  }
  return steps;
}
