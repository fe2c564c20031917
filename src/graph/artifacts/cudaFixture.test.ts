// The three readers on fixtures/trace-cuda: the same run as fixtures/trace made on an H100 with
// torch 2.11.0+cu130 (Triton kernels, cuBLAS extern kernels, a CUDA profiler trace; see its
// README). Every expectation is read from the files here by plain text search and JSON.parse,
// apart from the readers.

import { readdirSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../formats.ts';
import { kernelCounts, kernelGroups, parseOutputCode, parseProvenance } from './outputCode.ts';
import { matchTrace, parseProfilerTrace } from './profilerTrace.ts';
import { parseTorchTrace } from './torchTrace.ts';

const ROOT = new URL('../../../fixtures/trace-cuda/', import.meta.url);
const read = (f: string) => readFileSync(new URL(f, ROOT), 'utf8');
const GRAPHS = ['model__2_inference_2.2', 'model__3_inference_3.3'] as const;
const debug = (graph: string, f: string) => read(`debug/${graph}/${f}`);

/** A Chrome-trace event as the file holds it: the fields read here. */
type RawEvent = Partial<Record<'ph' | 'cat' | 'name', string> & Record<'ts' | 'dur' | 'tid', number>> & {
  args?: { correlation?: number };
};
const TRACE_TEXT = gunzipSync(readFileSync(new URL('profile.json.gz', ROOT))).toString('utf8');
const RAW = (JSON.parse(TRACE_TEXT) as { traceEvents: RawEvent[] }).traceEvents.filter((e) => e.ph === 'X');

/** Triton kernel names as the file defines them: `name = async_compile.triton('name', …`. */
const tritonDefs = (code: string) =>
  [...code.matchAll(/^(\w+) = async_compile\.triton\('(\w+)'/gm)].map((m) => m[1]);
/** call()'s launches by their provenance handles, `kernel:N` (every launch of a debug run has one). */
const handles = (code: string) =>
  [...code.matchAll(/# \[Provenance debug handles\] (\S+):(\d+)/g)].map((m) => ({ kernel: m[1], n: +m[2] }));

describe('output_code.py of a real CUDA compile (Triton)', () => {
  for (const graph of GRAPHS) {
    const text = debug(graph, 'output_code.py');
    const code = parseOutputCode(text);

    it(`${graph}: reads every Triton kernel and call()'s launches in order`, () => {
      expect(code.kernels.map((k) => k.name)).toEqual(tritonDefs(text));
      expect(code.kernels.every((k) => k.kind === 'triton')).toBe(true);
      const h = handles(text);
      expect(code.launches.map((l) => `${l.kernel}:${l.index + 1}`)).toEqual(
        h.map((x) => `${x.kernel}:${x.n}`),
      );
      const counts = kernelCounts(code);
      expect(counts.launches).toBe(13);
      expect(counts.byKind.triton).toBe(h.filter((x) => x.kernel.startsWith('triton_')).length);
      expect(counts.byKind.extern).toBe(h.filter((x) => x.kernel.startsWith('extern_kernels.')).length);
      expect(counts.byKind.cpp).toBe(0);
    });

    it(`${graph}: each Triton kernel fused the nodes its provenance handle names, all in the post-grad graph`, () => {
      const r = importGraph(debug(graph, 'fx_graph_transformed.py'));
      if (!('graph' in r)) throw new Error('fixture graph did not import');
      const names = new Set(r.graph.nodes.map((n) => n.name));
      const mapping = JSON.parse(debug(graph, 'inductor_provenance_tracking_node_mappings.json')) as {
        cppCodeToPost: Record<string, string[]>;
      };
      const groups = kernelGroups(code, [...names], parseProvenance(JSON.stringify(mapping)));
      // Inductor recomputes cheap pointwise producers (cos, sin, the residual add) inside each
      // consumer kernel, so two handles can name one node: it stays with the first launch.
      const claimed = new Set<string>();
      let shared = 0;
      for (const g of groups.filter((x) => x.launch.kind === 'triton')) {
        expect(g.source).toBe('provenance');
        const own = mapping.cppCodeToPost[`${g.launch.kernel}:${g.launch.index + 1}`].filter((n) =>
          names.has(n),
        );
        expect(new Set(g.nodes)).toEqual(new Set(own.filter((n) => !claimed.has(n))));
        expect(g.nodes.length).toBeGreaterThan(0);
        shared += own.filter((n) => claimed.has(n)).length;
        for (const n of g.nodes) claimed.add(n);
      }
      expect(shared).toBeGreaterThan(0);
    });
  }

  it("without the provenance file, a Triton kernel's nodes come from its 'Source node to ATen node mapping' comment", () => {
    const text = debug(GRAPHS[0], 'output_code.py');
    const groups = kernelGroups(parseOutputCode(text), null);
    // The first kernel: RMSNorm fused with the embedding lookup, as its comment block lists it.
    const block = text.slice(
      0,
      text.indexOf("= async_compile.triton('triton_per_fused_add_embedding_mean_mul"),
    );
    const mapping = block.slice(block.lastIndexOf('# Source node to ATen node mapping:'));
    const post = [...mapping.matchAll(/^#\s+\S+ => (.+)$/gm)].flatMap((m) => m[1].split(', '));
    const first = groups[0];
    expect(first.launch.kernel).toBe('triton_per_fused_add_embedding_mean_mul_pow_rsqrt_0');
    expect(first.source).toBe('aten-mapping');
    expect(new Set(first.nodes)).toEqual(new Set(post));
    expect(post).toEqual(expect.arrayContaining(['embedding', 'pow_1', 'mean', 'rsqrt', 'mul_34']));
    // SiLU-mul is one pointwise kernel.
    const silu = groups.find((g) => g.launch.kernel.startsWith('triton_poi_fused_mul_silu'))!;
    expect(silu.source).toBe('aten-mapping');
    expect(silu.nodes.length).toBeGreaterThan(1);
  });
});

describe('the CUDA profiler trace matched to the launches of each graph', () => {
  const trace = parseProfilerTrace(TRACE_TEXT);
  const kernels = RAW.filter((e) => e.cat === 'kernel');
  const launchAt = new Map(
    RAW.filter((e) => e.cat === 'cuda_runtime' || e.cat === 'cuda_driver').map((e) => [
      e.args!.correlation!,
      e,
    ]),
  );
  const regions = RAW.filter((e) => e.name?.startsWith('Torch-Compiled Region'));
  const inside = (r: RawEvent, t: number) => t >= r.ts! && t <= r.ts! + r.dur!;

  it('keeps the GPU kernels, each with the correlation of its launch', () => {
    expect(trace.gpu).toBe(true);
    expect(kernels.length).toBeGreaterThan(20);
    expect(kernels.every((k) => launchAt.has(k.args!.correlation!))).toBe(true);
  });

  for (const graph of GRAPHS) {
    it(`${graph}: every launch gets the time of its own kernels, in this graph's compiled region only`, () => {
      const code = parseOutputCode(debug(graph, 'output_code.py'));
      const groups = kernelGroups(code, null);
      const m = matchTrace(trace, groups);
      // The graph's region: the innermost compiled region around the launch of its first Triton kernel.
      const first = kernels.find((k) => k.name === code.launches[0].kernel)!;
      const at = launchAt.get(first.args!.correlation!)!.ts!;
      const region = regions.filter((r) => inside(r, at)).sort((a, b) => a.dur! - b.dur!)[0];
      const nested = regions.filter((r) => r !== region && inside(region, r.ts!));
      const mine = (t: number) => inside(region, t) && !nested.some((n) => inside(n, t));
      for (const g of groups) {
        const got = m.byLaunch.get(g.launch.index)!;
        expect(got.occurrences).toBe(1);
        if (g.launch.kind === 'triton') {
          const own = kernels.filter((k) => k.name === g.launch.kernel);
          expect(own).toHaveLength(1);
          expect(got.us).toBe(own[0].dur);
        }
      }
      // Extern ops: the k-th aten op of its name in the region, timed by the GPU kernels it launched
      // (cuBLAS: one or two kernels, through the launches' correlation ids).
      for (const op of ['mm', 'bmm', 'addmm']) {
        const events = RAW.filter((e) => e.name === `aten::${op}` && mine(e.ts!)).sort(
          (a, b) => a.ts! - b.ts!,
        );
        const gpu = events.map((e) =>
          kernels
            .filter((k) => {
              const l = launchAt.get(k.args!.correlation!)!;
              return l.tid === e.tid && inside(e, l.ts!);
            })
            .reduce((s, k) => s + k.dur!, 0),
        );
        const launches = groups.filter((g) => g.launch.kernel === `extern_kernels.${op}`);
        expect(launches).toHaveLength(events.length);
        expect(launches.map((g) => m.byLaunch.get(g.launch.index)!.us)).toEqual(
          gpu.map((us) => expect.closeTo(us, 6)),
        );
      }
      expect(m.notes).toEqual([]);
    });
  }
});

describe('TORCH_TRACE log of the CUDA run', () => {
  const dir = new URL('torch_trace/', ROOT);
  const log = readFileSync(
    new URL(
      readdirSync(dir).find((f) => f.endsWith('.log'))!,
      dir,
    ),
    'utf8',
  );
  const t = parseTorchTrace(log);

  it('reads the four compiles, the two graph breaks and the two recompiles, with Triton output code', () => {
    expect(t.problems).toEqual([]);
    const metrics = [...log.matchAll(/"compilation_metrics": \{"compile_id": "(\d+\/\d+)"/g)].map(
      (m) => m[1],
    );
    expect(t.frames.map((f) => f.compileId).sort()).toEqual([...metrics].sort());
    expect(metrics).toHaveLength(4);
    expect(t.breaks).toHaveLength(2);
    expect(t.recompiles.map((r) => r.compileId).sort()).toEqual(['0/1', '1/1']);
    for (const f of t.frames) {
      const code = f.graphs.find((g) => g.stage === 'inductor_output_code');
      expect(code, f.compileId).toBeDefined();
      expect(code!.text).toMatch(/async_compile\.triton\(/);
    }
  });
});
