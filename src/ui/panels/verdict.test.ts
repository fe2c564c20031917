// The verdict line against real CPU runs of the PR fragment and a 2-layer GPT-OSS graph: what it
// claims follows the checks that ran, and no row contradicts it.

import { describe, expect, it } from 'vitest';
import { parseFx } from '../../graph/fx/parse.ts';
import { generateSample } from '../../graph/samples/index.ts';
import { compareRewrite, runGraph, type CompareReport, type RunOptions } from '../../runtime/index.ts';
import { compareOutputs } from '../../runtime/compareOutputs.ts';
import { rewriteForCompare } from '../../runtime/rewriteForCompare.ts';
import { DEFAULT_RUN_SETTINGS } from '../store/runSlice.ts';
import { PR_BEFORE } from '../testFixtures.ts';
import { outputNode, outputStatus, nodesReadingFed, verdictOf } from './verdict.ts';

const fragment = () => parseFx(PR_BEFORE).graph;
// The app's run settings, on the CPU reference.
const opts: RunOptions = { ...DEFAULT_RUN_SETTINGS, backend: 'cpu' };

describe('the verdict line', { timeout: 300_000 }, () => {
  it('hoist alone: proven by bitwise equality of every output', async () => {
    const rep = await compareRewrite(fragment(), ['slice-hoist'], opts);
    expect(rep.exact).toBeUndefined();
    expect(verdictOf(rep)).toEqual({
      level: 'proven',
      text: `proven: all ${rep.outputs.length} outputs bitwise equal`,
      fusedChange: null,
    });
  });

  it('a collective over a group the run cannot resolve: not proven, and the line names it', async () => {
    const g = parseFx(PR_BEFORE.replace("'tp:0'", "'tp:1'")).graph;
    const rep = await compareRewrite(g, ['slice-hoist'], opts);
    expect(rep.ok).toBe(true);
    expect(verdictOf(rep)).toEqual({
      level: 'not proven',
      text: `not proven: all ${rep.outputs.length} outputs bitwise equal, but the run cannot tell which ranks ${rep.unknownGroups[0].node}'s group 'tp:1' spans`,
      fusedChange: null,
    });
  });

  it('one fused site: proven by the exact check; apart, what the fused kernel changes at its site', async () => {
    const rep = await compareRewrite(fragment(), ['slice-hoist', 'allreduce-rmsnorm'], opts);
    const ulps = Math.max(...rep.outputs.map((o) => o.ulps));
    expect(rep.outputs.map(outputStatus)).toEqual(rep.outputs.map(() => 'pass'));
    const v = verdictOf(rep);
    expect(v.text).toBe(
      `proven: the rewrite computes the same function under the same rounding (all ${rep.outputs.length} outputs bitwise equal with the fused norm rounded as the unfused pair)`,
    );
    // The site measured alone: the fused op against the pair's rounding on the same inputs.
    expect(rep.firstSite?.node).toBe('auto_functionalized');
    expect(rep.firstSite!.ulps).toBeLessThanOrEqual(2);
    expect(v.fusedChange).toBe(
      `what the fused kernel changes: it rounds the norm once where the unfused pair rounds twice; per site ${rep.firstSite!.ulps} ulp${rep.firstSite!.ulps === 1 ? '' : 's'} (the first fused site, auto_functionalized, measured alone); through the graph up to ${ulps} ulp${ulps === 1 ? '' : 's'}, max rel ${Math.max(...rep.outputs.map((o) => o.maxRel)).toPrecision(2)} (one fused site: gated at ≤ 2 ulps)`,
    );
  });

  it('several fused sites: rows read "not gated", the line says so, and a graph with MoE names routing', async () => {
    const g = parseFx(generateSample('gpt-oss-20b', { layers: 2, tp: 2 })).graph;
    const rep = await compareRewrite(g, ['slice-hoist', 'allreduce-rmsnorm'], opts);
    expect(rep.fusedSites).toBeGreaterThan(1);
    expect(new Set(rep.outputs.map(outputStatus))).toEqual(new Set(['not gated']));
    const v = verdictOf(rep);
    // "proven" says only what the exact check proved; the growth over the sites is its own part.
    expect(v.text).toBe(
      `proven: the rewrite computes the same function under the same rounding (all ${rep.outputs.length} outputs bitwise equal with the fused norms rounded as the unfused pair)`,
    );
    expect(v.text).not.toMatch(/ulp/);
    expect(v.fusedChange).toMatch(
      new RegExp(
        `; per site \\d+ ulps? \\(the first fused site, \\w+, measured alone\\); through the graph up to \\d+ ulps?, max rel \\S+ \\(${rep.fusedSites} fused sites in series: each starts from values the one before moved, and the GEMMs between them amplify it; reported, not gated\\)$`,
      ),
    );
    expect(rep.outputs[0].tolerance).toContain('MoE routing');

    // The same report with an output that failed its gate, or a failed exact check, is not equivalent.
    const broken: CompareReport = {
      ...rep,
      exact: {
        ...rep.exact!,
        pass: false,
        outputs: rep.exact!.outputs!.map((o, i) => ({ ...o, pass: i !== 0 })),
      },
    };
    expect(verdictOf(broken)).toEqual({
      level: 'not equivalent',
      text: 'not equivalent: the exact check failed on 1 output',
      fusedChange: null,
    });
  });

  it('explains an ungated output of a graph without MoE without naming routing', async () => {
    const g = fragment();
    const a = await runGraph(g, opts);
    const b = await runGraph(rewriteForCompare(g, ['slice-hoist', 'allreduce-rmsnorm'], 2), opts);
    const dense = compareOutputs(a, b, 3, false);
    expect(dense[0].tolerance).toMatch(/^not gated: 3 fused sites in series/);
    expect(dense.map((o) => o.tolerance).join()).not.toMatch(/MoE|routing/);
    expect(compareOutputs(a, b, 3, true)[0].tolerance).toContain('MoE routing');
  });

  it('is not "proven" when an output reads seeded data standing in for an op without a kernel', async () => {
    const g = fragment();
    const rep = await compareRewrite(g, ['slice-hoist'], opts);
    // Every op of the fragment has a kernel: pretend its first one had none.
    expect(rep.before.fed).toEqual([]);
    expect(verdictOf(rep, nodesReadingFed(g, rep.before.fed)).level).toBe('proven');
    const first = g.nodes[0].name;
    const reading = nodesReadingFed(g, [first]);
    expect(reading.size).toBeGreaterThan(0);
    expect(rep.outputs.some((o) => reading.has(outputNode(o.name)))).toBe(true);
    expect(verdictOf(rep, reading).level).toBe('not proven');
  });
});
