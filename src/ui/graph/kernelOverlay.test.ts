// Inductor's kernels on the post-grad graph of fixtures/trace (torch 2.13, CPU): the boxes fitted
// around the nodes each launch fused, and the time overlay's value for a node read from the trace.

import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../../graph/formats.ts';
import { parseOutputCode, parseProvenance } from '../../graph/artifacts/outputCode.ts';
import { parseProfilerTrace } from '../../graph/artifacts/profilerTrace.ts';
import { graphKernels, kernelBoxes } from './kernelOverlay.ts';
import { nodeFills, overlayScale } from './overlay.ts';
import type { LaidNode } from './layout.ts';

const FIXTURES = new URL('../../../fixtures/trace/', import.meta.url);
const debug = (f: string) => readFileSync(new URL(`debug/model__2_inference_2.2/${f}`, FIXTURES), 'utf8');
const TEXT = gunzipSync(readFileSync(new URL('profile.json.gz', FIXTURES))).toString('utf8');
const RAW = (JSON.parse(TEXT) as { traceEvents: { name?: string; dur?: number }[] }).traceEvents;

function load() {
  const r = importGraph(debug('fx_graph_transformed.py'));
  if (!('graph' in r)) throw new Error('fixture graph did not import');
  const k = graphKernels(
    r.graph,
    parseOutputCode(debug('output_code.py')),
    parseProvenance(debug('inductor_provenance_tracking_node_mappings.json')),
    parseProfilerTrace(TEXT),
  );
  return { graph: r.graph, k };
}

describe('kernels on the post-grad graph', () => {
  it("colours a fused node by its kernel's measured time, the same for every node the kernel fused", () => {
    const { graph, k } = load();
    const g = k.kernelOf.get('embedding')!;
    expect(g.launch.kernel).toBe('cpp_fused_add_embedding_mean_mul_pow_rsqrt_0');
    const dur = RAW.find((e) => e.name === 'graph_2_cpp_fused_add_embedding_mean_mul_pow_rsqrt_0')!.dur;
    for (const n of g.nodes) expect(k.times.get(n)).toBe(dur);
    const mm = RAW.filter((e) => e.name === 'aten::mm');
    expect(mm.map((e) => e.dur)).toContain(k.times.get('mm'));
    // The overlay's scale and fills take these values as they take a run's.
    const scale = overlayScale(k.times.values(), true)!;
    const fills = nodeFills(
      graph.nodes.map((n) => n.name),
      k.times,
      scale,
    );
    expect(fills.get('embedding')).toBe(scale.colorOf(dur!));
    expect(k.sources).toEqual(['provenance']);
    expect(k.own).toBe(true);
  });

  it('fits each box around the laid-out nodes of its launch, numbered by launch', () => {
    const { k } = load();
    const g = k.drawn[0];
    const nodes: LaidNode[] = g.nodes.map((name, i) => ({
      name,
      x: 10 + 100 * i,
      y: 50 + 40 * i,
      w: 80,
      h: 30,
      layer: i,
    }));
    const [box] = kernelBoxes(nodes, [g]);
    expect(box.label).toBe(`#0 ${g.launch.kernel}`);
    const last = nodes[nodes.length - 1];
    expect(box.x).toBeLessThan(10);
    expect(box.y).toBeLessThan(50);
    expect(box.x + box.w).toBeGreaterThan(last.x + last.w);
    expect(box.y + box.h).toBeGreaterThan(last.y + last.h);
    // A launch none of whose nodes is laid out draws nothing.
    expect(kernelBoxes([], [g])).toEqual([]);
  });

  it('draws no kernel on a graph with no output code of its own', () => {
    const { graph } = load();
    const k = graphKernels(graph, null, null, parseProfilerTrace(TEXT));
    expect(k.own).toBe(false);
    expect(k.drawn).toEqual([]);
  });
});
