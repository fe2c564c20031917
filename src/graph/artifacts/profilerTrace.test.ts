// The profiler-trace reader on fixtures/trace's real torch.profiler trace (torch 2.13, CPU, C++
// kernels recorded with TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE=1; see its README), whole, in
// chunks, gzipped through a stream, truncated and corrupted; and the match of its events to the
// launches of the output code that ran. Expected values are read from the JSON here, apart from
// the reader.

import { openAsBlob, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { kernelGroups, parseOutputCode, parseProvenance } from './outputCode.ts';
import {
  matchOpNodes,
  matchTrace,
  parseProfilerTrace,
  readTraceStream,
  TraceError,
  TraceReader,
  traceEvents,
  type ProfilerTrace,
} from './profilerTrace.ts';

const FIXTURES = new URL('../../../fixtures/trace/', import.meta.url);
const GZ = new URL('profile.json.gz', FIXTURES);
const TEXT = gunzipSync(readFileSync(GZ)).toString('utf8');
interface RawEvent {
  ph?: string;
  cat?: string;
  name?: string;
  ts?: number;
  dur?: number;
}
const RAW = (JSON.parse(TEXT) as { traceEvents: RawEvent[] }).traceEvents;

const debug = (f: string) => readFileSync(new URL(`debug/model__2_inference_2.2/${f}`, FIXTURES), 'utf8');

describe('a real torch.profiler trace', () => {
  const trace = parseProfilerTrace(TEXT);

  it('reads every event and keeps the CPU ops (no GPU kernels on a CPU run)', () => {
    expect(trace.total).toBe(RAW.length);
    expect(trace.count).toBe(RAW.filter((e) => e.ph === 'X' && e.cat === 'cpu_op').length);
    expect(trace.gpu).toBe(false);
  });

  it('reads the same in chunks of any size, and gzipped through a stream', async () => {
    const same = (t: ProfilerTrace) => {
      expect(t.count).toBe(trace.count);
      expect([...t.dur]).toEqual([...trace.dur]);
      expect([...t.name].map((i) => t.strings[i])).toEqual([...trace.name].map((i) => trace.strings[i]));
    };
    for (const size of [1, 7, 4096]) {
      const r = new TraceReader();
      for (let i = 0; i < TEXT.length; i += size) r.push(TEXT.slice(i, i + size));
      same(r.end());
    }
    let read = 0;
    same(await readTraceStream((await openAsBlob(GZ)).stream(), (n) => (read = n)));
    expect(read).toBe(readFileSync(GZ).length);
  });

  it('names the byte and line of the event a truncated copy ends in', () => {
    const cut = TEXT.slice(0, Math.floor(TEXT.length / 2));
    const start = cut.lastIndexOf('{');
    const line = cut.slice(0, start).split('\n').length;
    expect(() => parseProfilerTrace(cut)).toThrow(TraceError);
    expect(() => parseProfilerTrace(cut)).toThrow(`byte ${start}, line ${line}: the file ends inside event`);
    // Cut between events: the array is not closed.
    const half = TEXT.slice(TEXT.length >> 1);
    const between = TEXT.slice(0, (TEXT.length >> 1) + /\},\s*\{/.exec(half)!.index + 1);
    expect(() => parseProfilerTrace(between)).toThrow(/before the traceEvents array closes: truncated/);
  });

  it('names the byte and line of a corrupted event', () => {
    // Quotes and braces still balance: the scanner finds the event, JSON refuses it.
    const at = TEXT.indexOf('"dur": ', TEXT.indexOf('"graph_2_cpp_fused'));
    const bad = `${TEXT.slice(0, at)}"dur": x${TEXT.slice(at + 7)}`;
    const start = bad.lastIndexOf('{', at);
    const line = bad.slice(0, start).split('\n').length;
    expect(() => parseProfilerTrace(bad)).toThrow(
      new RegExp(`^byte ${start}, line ${line}: event \\d+ is not JSON`),
    );
  });

  it('says where a gzip stream breaks off', async () => {
    const gz = readFileSync(GZ);
    const cut = new Blob([gz.subarray(0, gz.length >> 1)]);
    await expect(readTraceStream(cut.stream(), () => {})).rejects.toThrow(/the gzip stream breaks off here/);
  });

  it('refuses a file that is no Chrome trace', () => {
    expect(() => parseProfilerTrace('{"schemaVersion": 1}')).toThrow(/no "traceEvents" array/);
  });
});

describe("the trace matched to the output code's launches", () => {
  const trace = parseProfilerTrace(TEXT);
  const code = parseOutputCode(debug('output_code.py'));
  const groups = kernelGroups(
    code,
    null,
    parseProvenance(debug('inductor_provenance_tracking_node_mappings.json')),
  );

  it("gives each C++ kernel the time of its own record (graph_2_…), not another graph's of the same name", () => {
    const m = matchTrace(trace, groups);
    for (const g of groups.filter((x) => x.launch.kind === 'cpp')) {
      const own = RAW.filter((e) => e.name === `graph_2_${g.launch.kernel}`);
      expect(own).toHaveLength(1);
      expect(m.byLaunch.get(g.launch.index)).toMatchObject({ us: own[0].dur, occurrences: 1 });
    }
    expect(m.notes).toEqual([]);
  });

  it("gives the extern kernels the aten ops of this graph's compiled region, in order", () => {
    const m = matchTrace(trace, groups);
    // The region of graph 2 is the innermost `Torch-Compiled Region` around its C++ kernels.
    const kernel0 = RAW.find((e) => e.name === `graph_2_${groups[0].launch.kernel}`)!;
    const regions = RAW.filter(
      (e) =>
        e.name?.startsWith('Torch-Compiled Region') && e.ts! <= kernel0.ts! && kernel0.ts! <= e.ts! + e.dur!,
    ).sort((a, b) => a.dur! - b.dur!);
    const region = regions[0];
    const nested = RAW.filter(
      (e) =>
        e !== region &&
        e.name?.startsWith('Torch-Compiled Region') &&
        e.ts! >= region.ts! &&
        e.ts! <= region.ts! + region.dur!,
    );
    const inRegion = (e: RawEvent) =>
      e.ts! >= region.ts! &&
      e.ts! <= region.ts! + region.dur! &&
      !nested.some((n) => e.ts! >= n.ts! && e.ts! <= n.ts! + n.dur!);
    const mms = RAW.filter((e) => e.name === 'aten::mm' && inRegion(e)).sort((a, b) => a.ts! - b.ts!);
    const mmLaunches = groups.filter((g) => g.launch.kernel === 'extern_kernels.mm');
    expect(mmLaunches.map((g) => m.byLaunch.get(g.launch.index)?.us)).toEqual(mms.map((e) => e.dur));
  });

  it('says TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE=1 is needed when the C++ kernels have no events', () => {
    const without = parseProfilerTrace(
      JSON.stringify({ traceEvents: RAW.filter((e) => !e.name?.startsWith('graph_')) }),
    );
    const m = matchTrace(without, groups);
    const cpp = groups.filter((g) => g.launch.kind === 'cpp').length;
    expect(m.cppWithoutEvents).toBe(cpp);
    expect(m.notes.join()).toMatch(/TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE=1/);
  });
});

describe('custom ops and collectives by name and order', () => {
  it('gives the k-th node of an op the k-th event of it, and a collective NCCL kernels when its op has none', () => {
    const ev = (cat: string, name: string, ts: number, dur: number) =>
      `{"ph": "X", "cat": "${cat}", "name": "${name}", "ts": ${ts}, "dur": ${dur}, "tid": 1, "args": {"stream": 7}}`;
    const t = parseProfilerTrace(
      `{"traceEvents": [${[
        ev('cpu_op', '_C::fused_add_rms_norm', 0, 0),
        ev('kernel', 'ncclDevKernel_AllReduce_Sum_bf16_RING_LL', 1, 40),
        ev('cpu_op', '_C::fused_add_rms_norm', 2, 0),
        ev('kernel', 'ncclDevKernel_AllReduce_Sum_bf16_RING_LL', 3, 60),
      ].join(', ')}]}`,
    );
    expect(t.gpu).toBe(true);
    expect(traceEvents(t, 'kernel', () => true).map((e) => e.stream)).toEqual(['7', '7']);
    const times = matchOpNodes(t, [
      { name: 'ar_0', op: 'vllm.all_reduce.default' },
      { name: 'ar_1', op: 'vllm.all_reduce.default' },
    ]);
    expect([...times]).toEqual([
      ['ar_0', 40],
      ['ar_1', 60],
    ]);
  });
});
