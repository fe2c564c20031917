// One line that says what a before/after run proved, worded from the checks that actually ran:
// the exact check (fused norms rounded as the unfused pair, bitwise), the gated outputs (bitwise or
// within an ulp bound), and the ungated ones (reported only). Every row of the Results table reads
// the same per-output status from here, so the line and the rows cannot disagree.

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
  text: string;
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
    return { level: 'not proven', text: 'not proven: the graphs have no outputs to compare' };
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
    return { level: 'not equivalent', text: `not equivalent: ${parts.join('; ')}` };
  }

  const allBitwise = rows.every((o) => o.bitwiseEqual);
  let claim: string;
  let level: VerdictLevel;
  if (exact && !exact.skipped) {
    level = 'proven';
    claim = `bitwise equal with the fused norm${report.fusedSites > 1 ? 's' : ''} rounded as the unfused pair`;
    claim += ungated.length
      ? `; fused outputs differ by up to ${maxUlps} ulps (not gated: ${plural(report.fusedSites, 'fused site')} in series)`
      : `; fused output within ${maxUlps} ulp${maxUlps === 1 ? '' : 's'}`;
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
    };
  if (fedRows.length && level === 'proven') {
    return {
      level: 'not proven',
      text: `not proven: ${claim}, but ${fedRows.length} of ${plural(rows.length, 'output')} read seeded data standing in for ops without a kernel`,
    };
  }
  return { level, text: `${level}: ${claim}` };
}
