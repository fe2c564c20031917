// torch.profiler's Chrome trace (`export_chrome_trace`, vLLM's profiler directory; JSON, often
// gzipped), read as a stream: a 300 MB trace is never one string. The reader scans the text for
// the `traceEvents` array and parses one event at a time, keeping only the kernels and the ops
// that launch them:
//  - `cat: "kernel"`: a GPU kernel (name, dur, args.stream, args.correlation, args.device);
//  - `cat: "cuda_runtime"` / `"cuda_driver"` launches: args.correlation ties a CPU op to its kernels;
//  - `cat: "cpu_op"`: an op on the CPU (`aten::mm`, `vllm::all_reduce`), and on CPU runs Inductor's
//    C++ kernels themselves when torch generated them with TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE=1
//    (torch/_inductor/codegen/cpp.py: a record function named `graph_<n>_<kernel>`).
// Then its kernels are matched to Inductor's launches (by name, then order) and to the graph's own
// custom-op and collective nodes (by op name and order). Pure: no DOM, no Node APIs.

import type { KernelGroup } from './outputCode.ts';

export const TRACE_EVENT_KINDS = ['kernel', 'cpu_op', 'launch'] as const;
export type TraceEventKind = (typeof TRACE_EVENT_KINDS)[number];

export interface TraceEvent {
  kind: TraceEventKind;
  name: string;
  /** µs, as the trace writes them. */
  ts: number;
  dur: number;
  /** The GPU stream (kernels) or the thread (CPU ops, launches). */
  stream: number | string;
  /** Ties a launch to its kernel; absent on CPU ops. */
  correlation?: number;
}

/**
 * The kept events in columns, in file order: a 300 MB trace keeps about a million, which cross
 * from the worker to the page as a few transferred arrays rather than a million objects.
 */
export interface ProfilerTrace {
  /** Event names and streams, each once. */
  strings: string[];
  /** Index into TRACE_EVENT_KINDS. */
  kind: Uint8Array;
  /** Index into `strings`. */
  name: Uint32Array;
  ts: Float64Array;
  dur: Float64Array;
  /** Index into `strings`. */
  stream: Uint32Array;
  /** NaN: none. */
  correlation: Float64Array;
  /** Kept events. */
  count: number;
  /** Events the file holds, kept or not. */
  total: number;
  /** Whether any GPU kernel is in it. */
  gpu: boolean;
}

/** The arrays a worker transfers with a trace. */
export function traceBuffers(t: ProfilerTrace): ArrayBuffer[] {
  return [t.kind, t.name, t.ts, t.dur, t.stream, t.correlation].map((a) => a.buffer as ArrayBuffer);
}

/** Growable columns for the reader. */
class Columns {
  size = 0;
  kind = new Uint8Array(1024);
  name = new Uint32Array(1024);
  ts = new Float64Array(1024);
  dur = new Float64Array(1024);
  stream = new Uint32Array(1024);
  correlation = new Float64Array(1024);
  readonly strings: string[] = [];
  private readonly ids = new Map<string, number>();

  intern(s: string): number {
    let id = this.ids.get(s);
    if (id === undefined) {
      id = this.strings.length;
      this.strings.push(s);
      this.ids.set(s, id);
    }
    return id;
  }

  push(e: TraceEvent) {
    if (this.size === this.kind.length) {
      const grow = <A extends Uint8Array | Uint32Array | Float64Array>(a: A): A => {
        const b = new (a.constructor as new (n: number) => A)(a.length * 2);
        b.set(a);
        return b;
      };
      this.kind = grow(this.kind);
      this.name = grow(this.name);
      this.ts = grow(this.ts);
      this.dur = grow(this.dur);
      this.stream = grow(this.stream);
      this.correlation = grow(this.correlation);
    }
    const i = this.size++;
    this.kind[i] = TRACE_EVENT_KINDS.indexOf(e.kind);
    this.name[i] = this.intern(e.name);
    this.ts[i] = e.ts;
    this.dur[i] = e.dur;
    this.stream[i] = this.intern(String(e.stream));
    this.correlation[i] = e.correlation ?? NaN;
  }
}

/** The events of one kind whose name passes `test`, as objects, by start time. */
export function traceEvents(
  t: ProfilerTrace,
  kind: TraceEventKind,
  test: (name: string) => boolean,
): TraceEvent[] {
  const k = TRACE_EVENT_KINDS.indexOf(kind);
  const names = new Set<number>();
  t.strings.forEach((s, i) => {
    if (test(s)) names.add(i);
  });
  const out: TraceEvent[] = [];
  for (let i = 0; i < t.count; i++)
    if (t.kind[i] === k && names.has(t.name[i]))
      out.push({
        kind,
        name: t.strings[t.name[i]],
        ts: t.ts[i],
        dur: t.dur[i],
        stream: t.strings[t.stream[i]],
        correlation: Number.isNaN(t.correlation[i]) ? undefined : t.correlation[i],
      });
  return out.sort((a, b) => a.ts - b.ts);
}

export class TraceError extends Error {
  constructor(
    message: string,
    readonly byte: number,
    readonly line: number,
  ) {
    super(`byte ${byte}, line ${line}: ${message}`);
    this.name = 'TraceError';
  }
}

const KEPT_CATS: Record<string, TraceEventKind> = {
  kernel: 'kernel',
  cpu_op: 'cpu_op',
  cuda_runtime: 'launch',
  cuda_driver: 'launch',
};

// Character codes the scanner switches on.
const QUOTE = 34,
  BACKSLASH = 92,
  OPEN = 123,
  CLOSE = 125,
  CLOSE_ARRAY = 93,
  NEWLINE = 10;

/**
 * A streaming reader: `push` each decoded chunk, then `end`. Errors name the byte (of the decoded
 * text, UTF-16 units past ASCII) and line where the event that failed starts.
 */
export class TraceReader {
  private state: 'head' | 'array' | 'event' | 'after' = 'head';
  private head = '';
  private event = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private eventByte = 0;
  private eventLine = 1;
  /** Position of the next chunk's first character. */
  private byte = 0;
  private line = 1;
  private readonly columns = new Columns();
  private total = 0;
  private gpu = false;

  /** Characters and lines read so far. */
  get read(): { byte: number; line: number } {
    return { byte: this.byte, line: this.line };
  }

  push(chunk: string): void {
    let i = 0;
    if (this.state === 'head') {
      // The header before the array is small (schema, device properties): held whole.
      this.head += chunk;
      const key = this.head.indexOf('"traceEvents"');
      if (key < 0) {
        if (this.head.length > 1 << 24) this.fail('no "traceEvents" array in the first 16 MB', 0, 1);
        this.advance(chunk, 0, chunk.length);
        return;
      }
      const open = this.head.indexOf('[', key);
      if (open < 0) {
        this.advance(chunk, 0, chunk.length);
        return;
      }
      // Where the array starts within this chunk.
      i = open + 1 - (this.head.length - chunk.length);
      this.advance(chunk, 0, i);
      this.head = '';
      this.state = 'array';
    }
    this.scan(chunk, i);
  }

  private advance(chunk: string, from: number, to: number) {
    for (let k = from; k < to; k++) if (chunk.charCodeAt(k) === NEWLINE) this.line++;
    this.byte += to - from;
  }

  private fail(message: string, byte = this.byte, line = this.line): never {
    throw new TraceError(message, byte, line);
  }

  private scan(chunk: string, start: number) {
    let line = this.line;
    const base = this.byte - start;
    let eventStart = this.state === 'event' ? 0 : -1;
    for (let i = start; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c === NEWLINE) line++;
      if (this.state === 'event') {
        if (this.inString) {
          if (this.escaped) this.escaped = false;
          else if (c === BACKSLASH) this.escaped = true;
          else if (c === QUOTE) this.inString = false;
          continue;
        }
        if (c === QUOTE) this.inString = true;
        else if (c === OPEN) this.depth++;
        else if (c === CLOSE && --this.depth === 0) {
          this.event += chunk.slice(eventStart, i + 1);
          this.take(this.event);
          this.event = '';
          this.state = 'array';
          eventStart = -1;
        }
        continue;
      }
      if (this.state === 'array') {
        if (c === OPEN) {
          this.state = 'event';
          this.depth = 1;
          this.eventByte = base + i;
          this.eventLine = line;
          eventStart = i;
        } else if (c === CLOSE_ARRAY) this.state = 'after';
        else if (c !== 44 && c > 32) this.fail(`unexpected '${chunk[i]}' between events`, base + i, line);
      }
      // 'after': the rest of the object (traceName, …) is not needed.
    }
    if (this.state === 'event' && eventStart >= 0) this.event += chunk.slice(eventStart);
    this.line = line;
    this.byte = base + chunk.length;
  }

  private take(text: string) {
    this.total++;
    // Most events are not kept: a cheap look before the parse.
    if (!/"cat"\s*:\s*"(kernel|cpu_op|cuda_runtime|cuda_driver)"/.test(text)) return;
    let e: {
      ph?: string;
      cat?: string;
      name?: string;
      ts?: number;
      dur?: number;
      tid?: number | string;
      args?: Record<string, unknown>;
    };
    try {
      e = JSON.parse(text) as typeof e;
    } catch (err) {
      this.fail(
        `event ${this.total} is not JSON (${(err as Error).message})`,
        this.eventByte,
        this.eventLine,
      );
    }
    const kind = KEPT_CATS[e.cat ?? ''];
    if (!kind || e.ph !== 'X' || typeof e.name !== 'string') return;
    if (typeof e.ts !== 'number' || typeof e.dur !== 'number')
      this.fail(`event ${this.total} (${e.name}) has no numeric ts / dur`, this.eventByte, this.eventLine);
    const args = e.args ?? {};
    const stream = kind === 'kernel' ? ((args.stream as number | undefined) ?? e.tid ?? 0) : (e.tid ?? 0);
    const correlation = typeof args.correlation === 'number' ? args.correlation : undefined;
    if (kind === 'kernel') this.gpu = true;
    this.columns.push({ kind, name: e.name, ts: e.ts, dur: e.dur, stream, correlation });
  }

  end(): ProfilerTrace {
    if (this.state === 'head') this.fail('no "traceEvents" array: not a torch.profiler Chrome trace');
    if (this.state === 'event')
      this.fail(
        `the file ends inside event ${this.total + 1}, which starts here: truncated`,
        this.eventByte,
        this.eventLine,
      );
    if (this.state === 'array') this.fail('the file ends before the traceEvents array closes: truncated');
    const c = this.columns;
    const n = c.size;
    return {
      strings: c.strings,
      kind: c.kind.slice(0, n),
      name: c.name.slice(0, n),
      ts: c.ts.slice(0, n),
      dur: c.dur.slice(0, n),
      stream: c.stream.slice(0, n),
      correlation: c.correlation.slice(0, n),
      count: n,
      total: this.total,
      gpu: this.gpu,
    };
  }
}

/** Reads a whole trace text (tests, small files). */
export function parseProfilerTrace(text: string): ProfilerTrace {
  const r = new TraceReader();
  r.push(text);
  return r.end();
}

/** Whether the first bytes are gzip's magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

export function isProfilerTrace(text: string): boolean {
  return /"traceEvents"\s*:/.test(text.slice(0, 1 << 20));
}

/** One launch's measured time: every occurrence in the trace (one per run of the graph). */
export interface LaunchTime {
  launch: number;
  /** Median over the occurrences, µs. */
  us: number;
  occurrences: number;
  /** The trace's name for it (`graph_0_cpp_fused_mul_silu_1`, `aten::mm`, a GPU kernel). */
  traceName: string;
}

export interface TraceMatch {
  byLaunch: Map<number, LaunchTime>;
  /** Launches of Inductor's C++ kernels with no event of their own. */
  cppWithoutEvents: number;
  /** What the user should know about the match, shown with it. */
  notes: string[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** The names a launch goes by in a trace. */
function traceNamesOf({ kernel, kind, recordName }: KernelGroup['launch']): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  switch (kind) {
    case 'triton':
      return new RegExp(`^${esc(kernel)}$`);
    case 'cpp':
      // cpp.py's record function, `graph_<n>_<kernel>`: exactly this graph's when the source names it.
      return new RegExp(recordName ? `^${esc(recordName)}$` : `^(graph_\\d+_)?${esc(kernel)}$`);
    case 'extern':
    case 'custom': {
      // extern_kernels.mm → aten::mm; torch.ops.vllm.all_reduce.default → vllm::all_reduce.
      const parts = kernel.replace(/^extern_kernels\./, 'torch.ops.aten.').split('.');
      const [ns, op] = parts[0] === 'torch' ? [parts[2], parts[3]] : ['aten', parts[parts.length - 1]];
      return new RegExp(`^${esc(ns)}::${esc(op)}$`);
    }
  }
}

/**
 * The GPU kernels each CPU op launched: the launches on the op's thread within its span, through
 * their correlation ids. On a CPU trace there are none and the op's own span is its time.
 */
function gpuTimeOfOps(trace: ProfilerTrace): (op: TraceEvent) => number {
  if (!trace.gpu) return (op) => op.dur;
  const kernelByCorrelation = new Map<number, number>();
  for (const e of traceEvents(trace, 'kernel', () => true))
    if (e.correlation !== undefined)
      kernelByCorrelation.set(e.correlation, (kernelByCorrelation.get(e.correlation) ?? 0) + e.dur);
  const launches = traceEvents(trace, 'launch', () => true);
  return (op) => {
    let lo = 0,
      hi = launches.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (launches[mid].ts < op.ts) lo = mid + 1;
      else hi = mid;
    }
    let us = 0;
    for (let i = lo; i < launches.length && launches[i].ts <= op.ts + op.dur; i++)
      if (launches[i].stream === op.stream && launches[i].correlation !== undefined)
        us += kernelByCorrelation.get(launches[i].correlation!) ?? 0;
    return us;
  };
}

/**
 * Where each event was issued from on the CPU: a GPU kernel runs later than its launch, on another
 * timeline, so it is placed at its launch (through the correlation id); every other event at itself.
 */
function issuedAt(trace: ProfilerTrace): (e: TraceEvent) => TraceEvent {
  if (!trace.gpu) return (e) => e;
  const launchOf = new Map<number, TraceEvent>();
  for (const l of traceEvents(trace, 'launch', () => true))
    if (l.correlation !== undefined) launchOf.set(l.correlation, l);
  return (e) => (e.kind === 'kernel' && e.correlation !== undefined ? (launchOf.get(e.correlation) ?? e) : e);
}

/**
 * Whether an event ran inside this graph's runs: the `Torch-Compiled Region` spans (torch/_dynamo's
 * record function around a compiled frame) that hold this graph's own kernels — its recorded C++
 * kernels on CPU, the launches of its Triton kernels on GPU (Triton kernels carry no graph number,
 * and two graphs may name one alike, so a region counts when every Triton kernel of the graph is
 * launched in it). A trace of several graphs runs `aten::mm` in each; with none of the graph's
 * kernels found, every event counts.
 */
function graphRuns(trace: ProfilerTrace, groups: readonly KernelGroup[]): (e: TraceEvent) => boolean {
  const records = new Set(groups.map((g) => g.launch.recordName).filter((r) => r !== undefined));
  const triton = new Set(groups.filter((g) => g.launch.kind === 'triton').map((g) => g.launch.kernel));
  const at = issuedAt(trace);
  const own: { name: string; at: TraceEvent }[] = [
    ...traceEvents(trace, 'cpu_op', (n) => records.has(n)),
    ...traceEvents(trace, 'kernel', (n) => triton.has(n)),
  ].map((e) => ({ name: e.name, at: at(e) }));
  if (!own.length) return () => true;
  const all = traceEvents(trace, 'cpu_op', (n) => n.startsWith('Torch-Compiled Region'));
  const holds = (r: TraceEvent, e: TraceEvent) => e.ts >= r.ts && e.ts <= r.ts + r.dur && r !== e;
  // Regions nest (a graph break's resume function runs inside the frame that broke): the innermost.
  const names = new Map<TraceEvent, Set<string>>();
  for (const e of own) {
    let inner: TraceEvent | undefined;
    for (const r of all) if (holds(r, e.at) && (!inner || r.dur < inner.dur)) inner = r;
    if (!inner) continue;
    const s = names.get(inner) ?? new Set<string>();
    names.set(inner, s.add(e.name));
  }
  const whole = [...names].filter(([, s]) => [...triton].every((k) => s.has(k))).map(([r]) => r);
  const mine = whole.length ? whole : [...names.keys()];
  if (!mine.length) return () => true;
  const others = all.filter((r) => !mine.includes(r));
  // In one of this graph's regions and not in another region nested inside it.
  return (event) => {
    const e = at(event);
    return mine.some((r) => holds(r, e) && !others.some((o) => o.dur < r.dur && holds(r, o) && holds(o, e)));
  };
}

/**
 * Each launch's time: the trace events of its name, in order, the k-th going to the k-th launch of
 * that name in `call()` (mod the launches per run), as many runs as the trace holds.
 */
export function matchTrace(trace: ProfilerTrace, groups: readonly KernelGroup[]): TraceMatch {
  const byLaunch = new Map<number, LaunchTime>();
  const timeOf = gpuTimeOfOps(trace);
  const inGraph = graphRuns(trace, groups);
  const pool = new Map<string, { re: RegExp; launches: number[] }>();
  for (const g of groups) {
    const key = `${g.launch.kind}:${g.launch.kernel}`;
    let p = pool.get(key);
    if (!p) pool.set(key, (p = { re: traceNamesOf(g.launch), launches: [] }));
    p.launches.push(g.launch.index);
  }
  for (const [key, p] of pool) {
    const own = key.startsWith('triton:') ? 'kernel' : 'cpu_op';
    const hits = traceEvents(trace, own, (name) => p.re.test(name)).filter(inGraph);
    if (!hits.length) continue;
    const times = p.launches.map(() => [] as number[]);
    hits.forEach((e, k) => times[k % p.launches.length].push(own === 'kernel' ? e.dur : timeOf(e)));
    p.launches.forEach((launch, k) => {
      if (times[k].length)
        byLaunch.set(launch, {
          launch,
          us: median(times[k]),
          occurrences: times[k].length,
          traceName: hits[0].name,
        });
    });
  }
  const cppWithoutEvents = groups.filter(
    (g) => g.launch.kind === 'cpp' && !byLaunch.has(g.launch.index),
  ).length;
  const notes: string[] = [];
  if (cppWithoutEvents > 0)
    notes.push(
      `${cppWithoutEvents} C++ kernel launch${cppWithoutEvents === 1 ? ' has' : 'es have'} no event in the trace: ` +
        'Inductor records its C++ kernels only when the code is generated with TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE=1',
    );
  return { byLaunch, cppWithoutEvents, notes };
}

/** A graph node's op as a trace names it (`vllm::all_reduce`), for nodes no kernel group covers. */
export interface OpNode {
  name: string;
  /** `vllm.all_reduce.default`, as call.ts's calledOp reads it. */
  op: string;
}

/** NCCL's kernels, by the collective a node runs. */
const NCCL_KERNEL: Record<string, RegExp> = {
  all_reduce: /^nccl(Dev)?Kernel_AllReduce/,
  all_gather: /^nccl(Dev)?Kernel_AllGather/,
  reduce_scatter: /^nccl(Dev)?Kernel_ReduceScatter/,
};

/**
 * Per graph node, the time of the trace's events of its op (custom ops and collectives: fusionlab's
 * fused ops among them), the k-th node of an op to the k-th event (mod the nodes per run). A
 * collective with no op event of its own takes NCCL's kernels of its kind, in order.
 */
export function matchOpNodes(trace: ProfilerTrace, nodes: readonly OpNode[]): Map<string, number> {
  const out = new Map<string, number>();
  const timeOf = gpuTimeOfOps(trace);
  const byOp = new Map<string, string[]>();
  for (const n of nodes) {
    const l = byOp.get(n.op);
    if (l) l.push(n.name);
    else byOp.set(n.op, [n.name]);
  }
  for (const [op, names] of byOp) {
    const parts = op.split('.');
    if (parts.length < 2 || parts[0] === 'aten') continue;
    const traceName = `${parts[0]}::${parts[1]}`;
    let hits = traceEvents(trace, 'cpu_op', (name) => name === traceName).map(timeOf);
    const nccl = Object.entries(NCCL_KERNEL).find(([k]) => parts[1].includes(k))?.[1];
    if ((!hits.length || hits.every((t) => t === 0)) && nccl)
      hits = traceEvents(trace, 'kernel', (name) => nccl.test(name)).map((e) => e.dur);
    if (!hits.length) continue;
    const times = names.map(() => [] as number[]);
    hits.forEach((t, k) => times[k % names.length].push(t));
    names.forEach((n, k) => {
      if (times[k].length) out.set(n, median(times[k]));
    });
  }
  return out;
}

/**
 * Per node, the measured time of what ran it: a node inside an Inductor kernel takes the kernel's
 * time (every node a kernel fused shows the one kernel's time), a custom-op node its op's time.
 */
export function nodeTraceTimes(
  groups: readonly KernelGroup[],
  match: TraceMatch,
  opTimes: ReadonlyMap<string, number>,
): Map<string, number> {
  const out = new Map(opTimes);
  for (const g of groups) {
    const t = match.byLaunch.get(g.launch.index);
    if (t) for (const n of g.nodes) out.set(n, t.us);
  }
  return out;
}

/**
 * Reads a trace from a byte stream (a File's in the browser's worker), gunzipping it with
 * DecompressionStream when it starts with gzip's magic number. `onBytes` hears how many of the
 * stream's bytes (compressed, when it is) have been read.
 */
export async function readTraceStream(
  bytes: ReadableStream<Uint8Array>,
  onBytes: (read: number) => void,
): Promise<ProfilerTrace> {
  let read = 0;
  let gzip: boolean | null = null;
  const counted = bytes.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, out) {
        if (gzip === null) gzip = isGzip(chunk);
        read += chunk.length;
        onBytes(read);
        out.enqueue(chunk);
      },
    }),
  );
  // The first chunk decides; a tee would hold the whole file.
  const reader = counted.getReader();
  const first = await reader.read();
  const rest = new ReadableStream<Uint8Array>({
    start(c) {
      if (!first.done) c.enqueue(first.value);
    },
    async pull(c) {
      const r = await reader.read();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
  });
  // lib.dom types these streams' writable side as BufferSource; Uint8Array chunks are what they take.
  type BytePair = ReadableWritablePair<Uint8Array, Uint8Array>;
  const plain = gzip ? rest.pipeThrough(new DecompressionStream('gzip') as unknown as BytePair) : rest;
  const text = plain
    .pipeThrough(new TextDecoderStream() as unknown as ReadableWritablePair<string, Uint8Array>)
    .getReader();
  const trace = new TraceReader();
  for (;;) {
    let r: ReadableStreamReadResult<string>;
    try {
      r = await text.read();
    } catch (e) {
      const { byte, line } = trace.read;
      throw new TraceError(`the gzip stream breaks off here (${(e as Error).message})`, byte, line);
    }
    if (r.done) break;
    trace.push(r.value);
  }
  return trace.end();
}
