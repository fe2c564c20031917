// What the fused all-reduce + norm kernel changes at one site, measured alone: the after-graph cut
// at the first fused site, run as it is and with the norm rounded as the unfused pair. Upstream of
// that site both runs compute the same values, so their distance is the kernel's own change of
// rounding at one site; the graph's outputs show that change grown over every site in series.

import { forEachInput, isRef, ref, type Graph, type Node } from '../graph/ir.ts';
import type { RunOptions, RunResult } from './backend.ts';
import { compareExact } from './compareOutputs.ts';

export interface SiteDrift {
  /** The fused node measured (the first in graph order). */
  node: string;
  ulps: number;
  maxRel: number;
}

/** The nodes `outputs` need, in graph order, returning them; inputs no kept node reads are left out. */
export function graphUpTo(g: Graph, outputs: readonly string[]): Graph {
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  const need = new Set<string>();
  const stack = [...outputs];
  while (stack.length) {
    const name = stack.pop()!;
    if (need.has(name)) continue;
    need.add(name);
    const n = byName.get(name);
    if (n) forEachInput(n, (r) => stack.push(r));
  }
  return {
    ...g,
    inputs: g.inputs.filter((i) => need.has(i.name)),
    nodes: g.nodes.filter((n) => need.has(n.name)),
    outputs: outputs.map((o) => ref(o)),
  };
}

/**
 * The first fused site's distance between the fused kernel and the unfused pair's rounding, in
 * ulps of its results (every rank); null when `after` has no fused site.
 */
export async function firstSiteDrift(
  after: Graph,
  isFused: (n: Node) => boolean,
  opts: RunOptions,
  run: (g: Graph, opts: RunOptions) => Promise<RunResult>,
): Promise<SiteDrift | null> {
  const site = after.nodes.find(isFused);
  if (!site) return null;
  const results = after.nodes
    .filter(
      (n) => n.op === 'getitem' && isRef(n.args[0]!) && (n.args[0] as { name: string }).name === site.name,
    )
    .map((n) => n.name);
  // Results nobody reads (a fragment's last site) are still returned: a graph without a `return`
  // returns every value nothing reads, the fused op's results among them.
  const cut =
    results.length > 0 ? graphUpTo(after, results) : { ...graphUpTo(after, [site.name]), outputs: null };
  const quiet = { ...opts, onProgress: undefined };
  const pair = await run(cut, { ...quiet, fusedNormRounding: 'as-unfused' });
  const fused = await run(cut, quiet);
  const rows = compareExact(pair, fused);
  return {
    node: site.name,
    ulps: Math.max(0, ...rows.map((r) => r.ulps)),
    maxRel: Math.max(0, ...rows.map((r) => r.maxRel)),
  };
}
