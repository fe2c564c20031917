// What a before/after run proved, in two parts worded from the checks that actually ran. First
// what is proven: the rewrite computes the same function under the same rounding (the exact check:
// fused norms rounded as the unfused pair, bitwise), or the gated outputs (bitwise or within an
// ulp bound). Then what the fused kernel changes, which no check gates: per site (the first fused
// site measured alone) and through the graph (that change grown over the sites in series). Run,
// Results and Compare fixes all word it from here, and every row of the Results table reads the
// same per-output status, so the line and the rows cannot disagree.

import { refsOf, type Graph } from '../../graph/ir.ts';
import type { CompareReport, OutputComparison } from '../../runtime/index.ts';

/** How one output row stands: gated and held, gated and broken, or only reported. */
export type OutputStatus = 'pass' | 'fail' | 'not gated';

export function outputStatus(o: OutputComparison): OutputStatus {
  if (o.tolerance.startsWith('not gated') || o.tolerance === '') return 'not gated';
  return o.pass ? 'pass' : 'fail';
}

export type VerdictLevel = 'proven' | 'within tolerance' | 'not proven' | 'not equivalent';

export interface Verdict {
  level: VerdictLevel;
  /** What is proven, led by the level. */
  text: string;
  /** What the fused kernel changes, per site and through the graph; null when nothing fused. */
  fusedChange: string | null;
}

/** What a fused rewrite's run measured of the fused kernel's own change (see fusedChangeText). */
export interface FusedDrift {
  sites: number;
  /** The first fused site alone (runtime/fusedSiteDrift.ts); null where it could not be measured. */
  firstSite: { node: string; ulps: number } | null;
  /** Over the graph's outputs. */
  maxUlps: number;
  maxRel: number;
  /** Whether the outputs' ulps were gated (one site: its own results at ≤ 2 ulps). */
  gated: boolean;
}

/** What the exact check proves, for the Run's line and each Compare fixes variant alike. */
export function sameFunctionClaim(outputs: number, fusedSites: number): string {
  return `the rewrite computes the same function under the same rounding (${outputs === 1 ? 'the output' : `all ${outputs} outputs`} bitwise equal with the fused norm${fusedSites > 1 ? 's' : ''} rounded as the unfused pair)`;
}

const ulpText = (n: number) => `${n} ulp${n === 1 ? '' : 's'}`;
const relText = (r: number) => (r === 0 ? '0' : r.toPrecision(2));

/**
 * The second part of the verdict: the fused kernel rounds the norm once where the unfused pair
 * rounds twice, so its results move by a few ulps at each site; over N sites in series each one
 * starts from values the last one moved, and the GEMMs between them amplify it.
 */
export function fusedChangeText(d: FusedDrift): string {
  const perSite = d.firstSite
    ? `per site ${ulpText(d.firstSite.ulps)} (the first fused site, ${d.firstSite.node}, measured alone)`
    : 'per site ≤ 2 ulps (its contract; not measured here)';
  const why =
    d.sites > 1
      ? `${plural(d.sites, 'fused site')} in series: each starts from values the one before moved, and the GEMMs between them amplify it; reported, not gated`
      : d.gated
        ? 'one fused site: gated at ≤ 2 ulps'
        : 'one fused site, read through later ops that amplify it; reported, not gated';
  return `what the fused kernel changes: it rounds the norm once where the unfused pair rounds twice; ${perSite}; through the graph up to ${ulpText(d.maxUlps)}, max rel ${relText(d.maxRel)} (${why})`;
}

/** The output's node in the graph: rows are named `rank r: name[i]` or `rank r: before → after`. */
export function outputNode(rowName: string): string {
  return rowName
    .replace(/^rank \d+: /, '')
    .split(' → ')[0]
    .replace(/\[\d+\]$/, '');
}

/**
 * Nodes whose value depends on a fed node (seeded random data standing in for an op without a
 * kernel): equal values there prove nothing about the ops upstream of the fed node.
 */
export function nodesReadingFed(g: Graph, fed: readonly string[]): Set<string> {
  if (fed.length === 0) return new Set();
  const tainted = new Set(fed);
  // Nodes are in topological order: one pass carries the taint forward.
  for (const n of g.nodes) {
    if ([...n.args, ...Object.values(n.kwargs)].some((a) => refsOf(a).some((r) => tainted.has(r))))
      tainted.add(n.name);
  }
  return tainted;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * `uncomputed`: nodes that read fed (random) data on either side; `proven` needs every
 * compared path computed, so any such output turns a proof into "not proven".
 */
export function verdictOf(report: CompareReport, uncomputed: ReadonlySet<string> = new Set()): Verdict {
  const rows = report.outputs;
  const status = rows.map(outputStatus);
  const failed = rows.filter((_, i) => status[i] === 'fail');
  const ungated = rows.filter((_, i) => status[i] === 'not gated');
  const maxUlps = Math.max(0, ...rows.map((o) => o.ulps));
  const exact = report.exact;
  const fedRows = rows.filter((o) => uncomputed.has(outputNode(o.name)));

  if (rows.length === 0)
    return {
      level: 'not proven',
      text: 'not proven: the graphs have no outputs to compare',
      fusedChange: null,
    };
  if (failed.length || (exact && !exact.skipped && !exact.pass)) {
    const parts: string[] = [];
    if (exact && !exact.skipped && !exact.pass)
      parts.push(
        `the exact check failed on ${plural(exact.outputs?.filter((o) => !o.pass).length ?? 0, 'output')}`,
      );
    if (failed.length)
      parts.push(
        `${failed.length} of ${plural(rows.length, 'output')} outside tolerance (${failed.map((o) => o.name).join(', ')})`,
      );
    return { level: 'not equivalent', text: `not equivalent: ${parts.join('; ')}`, fusedChange: null };
  }

  const allBitwise = rows.every((o) => o.bitwiseEqual);
  const fusedChange =
    report.fusedSites > 0
      ? fusedChangeText({
          sites: report.fusedSites,
          firstSite: report.firstSite ?? null,
          maxUlps,
          maxRel: Math.max(0, ...rows.map((o) => o.maxRel)),
          gated: ungated.length === 0,
        })
      : null;
  let claim: string;
  let level: VerdictLevel;
  if (exact && !exact.skipped) {
    level = 'proven';
    claim = sameFunctionClaim(rows.length, report.fusedSites);
  } else if (exact?.skipped) {
    level = ungated.length ? 'not proven' : 'within tolerance';
    claim = ungated.length
      ? `the exact check could not run here; outputs differ by up to ${maxUlps} ulps, not gated`
      : `every output within tolerance (up to ${maxUlps} ulps); the exact check could not run here`;
  } else if (allBitwise) {
    level = 'proven';
    claim = `all ${plural(rows.length, 'output')} bitwise equal`;
  } else {
    level = 'within tolerance';
    claim = `every output within tolerance (up to ${maxUlps} ulps)`;
  }
  // A collective whose group the run could not resolve ran over every rank: equal or not, it says
  // nothing about the ranks that group spans.
  const unknown = report.unknownGroups ?? [];
  if (unknown.length && level !== 'not proven')
    return {
      level: 'not proven',
      text: `not proven: ${claim}, but the run cannot tell which ranks ${unknown.map((u) => `${u.node}'s group '${u.group}'`).join(', ')} span${unknown.length === 1 ? 's' : ''}`,
      fusedChange,
    };
  if (fedRows.length && level === 'proven') {
    return {
      level: 'not proven',
      text: `not proven: ${claim}, but ${fedRows.length} of ${plural(rows.length, 'output')} read seeded data standing in for ops without a kernel`,
      fusedChange,
    };
  }
  return { level, text: `${level}: ${claim}`, fusedChange };
}
