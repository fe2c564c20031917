// TORCH_TRACE's structured log (`TORCH_TRACE=dir` writes `dedicated_log_torch_trace_*.log`; what
// tlparse reads) as compiled frames, graph breaks, recompiles and each frame's graphs by stage.
//
// The format, as torch/_logging/structured.py writes it and tlparse's parse_path reads it
// (pytorch/tlparse src/lib.rs): one line per event, a glog prefix
// `V1206 11:40:40.401000 22736 path/file.py:5098] ` then a JSON envelope; an envelope with
// `has_payload` (the payload's md5) is followed by its payload, one tab-indented line per line of
// text; `{"str": [text, i]}` envelopes intern file names for later stacks; blank lines are never
// valid and are skipped. Compile ids are the envelope's `frame_id` / `frame_compile_id` /
// `attempt` (tlparse prints `[0/1_2]`); a compile restarted after a graph break logs its graphs
// under attempt 1.
//
// Streaming: `TorchTraceReader.push` takes the text in chunks of any size (a line may straddle
// two) so a 300 MB log is read without holding it whole; only graph payloads are kept. A line that
// cannot be read (no glog prefix, broken JSON, the file ending mid-line) is named in `problems`
// with its number and first characters; everything read before and after it stays.

import { GraphImportError } from '../errors.ts';
import { importGraph } from '../formats.ts';
import type { DumpStage, SkippedFile, StageFile, StageFolder } from '../stageFolder.ts';

/** The graphs a compile logs, in compile order: the envelope key or artifact name → stage. */
export const TRACE_STAGES = [
  'dynamo_output_graph',
  'before_pre_grad_graph',
  'after_pre_grad_graph',
  'aot_joint_graph',
  'aot_forward_graph',
  'aot_backward_graph',
  'aot_inference_graph',
  'before_joint_graph',
  'after_joint_graph',
  'before_post_grad_graph',
  'inductor_post_grad_graph',
  'inductor_output_code',
  'inductor_provenance_tracking_node_mappings',
] as const;
export type TraceStageName = (typeof TRACE_STAGES)[number];

/**
 * What a stage's text is: an FX graph fusionlab's importer reads (print_readable), or Inductor's
 * generated code, handed to an output-code reader where one is registered.
 */
export type TraceStageKind = 'fx' | 'output_code' | 'provenance';
export const traceStageKind = (stage: TraceStageName): TraceStageKind =>
  stage === 'inductor_output_code'
    ? 'output_code'
    : stage === 'inductor_provenance_tracking_node_mappings'
      ? 'provenance'
      : 'fx';

/** Short labels for the scrubber and the CLI's `--stage`. */
export const TRACE_STAGE_LABELS: Record<TraceStageName, string> = {
  dynamo_output_graph: 'dynamo',
  before_pre_grad_graph: 'pre_grad.before',
  after_pre_grad_graph: 'pre_grad.after',
  aot_joint_graph: 'aot_joint',
  aot_forward_graph: 'aot_forward',
  aot_backward_graph: 'aot_backward',
  aot_inference_graph: 'aot_inference',
  before_joint_graph: 'joint.before',
  after_joint_graph: 'joint.after',
  before_post_grad_graph: 'post_grad.before',
  inductor_post_grad_graph: 'post_grad',
  inductor_output_code: 'output_code',
  inductor_provenance_tracking_node_mappings: 'provenance',
};

export interface TraceGraph {
  stage: TraceStageName;
  kind: TraceStageKind;
  text: string;
  /** The log line of its envelope (1-based). */
  line: number;
  attempt: number;
}

export interface GraphBreak {
  /** `frame/compile` of the compile that broke. */
  compileId: string;
  /** The first line that says what broke (`Call to torch._dynamo.graph_break()`). */
  reason: string;
  /** The whole reason block torch wrote (explanation, hint). */
  detail: string;
  /** `file:line` of the user code that broke, when the log says. */
  where: string | null;
  /** The user code traceback, innermost last: `file:line in function`. */
  userStack: string[];
  line: number;
}

export interface Recompile {
  compileId: string;
  /** The compile whose guard failed (`0/0`), when the reason names it. */
  previous: string | null;
  /** The failed guard as torch states it (`tensor 'x' size mismatch at index 0. expected 8, actual 12`). */
  guard: string;
  line: number;
}

export interface TraceFrame {
  /** `frame/compile`: `0/1` is the second compile of frame 0 (a recompile). */
  compileId: string;
  frameId: number;
  frameCompileId: number;
  fn: string | null;
  file: string | null;
  firstLine: number | null;
  /** The compile failed (`fail_type: fail_reason`), or null. */
  failure: string | null;
  graphs: TraceGraph[];
}

export interface TraceProblem {
  line: number;
  /** The line's first characters, as a reader would look for it. */
  head: string;
  message: string;
}

export interface TorchTrace {
  frames: TraceFrame[];
  breaks: GraphBreak[];
  recompiles: Recompile[];
  problems: TraceProblem[];
  /** Lines read (including payload lines). */
  lines: number;
}

const GLOG = /^[VIWEC]\d{4} \d{2}:\d{2}:\d{2}\.\d{6} +\d+ [^:\]]+:\d+\] /;
const HEAD_CHARS = 60;
const STAGE_SET = new Set<string>(TRACE_STAGES);

interface Envelope {
  frame_id?: number;
  frame_compile_id?: number;
  attempt?: number;
  has_payload?: string;
  str?: [string, number];
  artifact?: { name?: string };
  dynamo_start?: { stack?: { line?: number; name?: string; filename?: number | string }[] };
  compilation_metrics?: {
    co_name?: string;
    co_filename?: string;
    co_firstlineno?: number;
    fail_type?: string | null;
    fail_reason?: string | null;
    recompile_reason?: string | null;
    restart_reasons?: string[];
  };
  [key: string]: unknown;
}

/** What an envelope's payload is wanted for; most payloads (chromium events, guards) are not kept. */
type PayloadUse =
  { kind: 'graph'; stage: TraceStageName } | { kind: 'break' } | { kind: 'recompile' } | { kind: 'skip' };

function payloadUse(e: Envelope): PayloadUse {
  const art = e.artifact?.name;
  if (art !== undefined) {
    if (STAGE_SET.has(art)) return { kind: 'graph', stage: art as TraceStageName };
    if (art === 'dynamo_graph_break_reason') return { kind: 'break' };
    if (art === 'recompile_reasons') return { kind: 'recompile' };
    return { kind: 'skip' };
  }
  for (const k of Object.keys(e)) if (STAGE_SET.has(k)) return { kind: 'graph', stage: k as TraceStageName };
  return { kind: 'skip' };
}

/** A graph break's payload: `Graph break in user code at F:L`, `Graph Break Reason: …`, `User code traceback:`. */
export function parseGraphBreak(text: string): Pick<GraphBreak, 'reason' | 'detail' | 'where' | 'userStack'> {
  const where = /^Graph break in user code at (.+)$/m.exec(text)?.[1]?.trim() ?? null;
  const start = text.indexOf('Graph Break Reason:');
  const tb = text.indexOf('User code traceback:');
  const block = (
    start >= 0 ? text.slice(start + 'Graph Break Reason:'.length, tb > start ? tb : undefined) : text
  ).trim();
  const lines = block
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  // torch's first line often says only where tracing was ("Encountered graph break when attempting
  // to trace CALL …:"); the next names the cause.
  const reason = (/^Encountered graph break/.test(lines[0] ?? '') ? lines[1] : lines[0]) ?? block;
  const userStack: string[] = [];
  if (tb >= 0) {
    for (const l of text.slice(tb).split('\n').slice(1)) {
      if (l.trim() === '' && userStack.length > 0) break;
      const m = /^\s*File "(.+)", line (\d+), in (.+)$/.exec(l);
      if (m) userStack.push(`${m[1]}:${m[2]} in ${m[3]}`);
    }
  }
  return { reason: reason.replace(/`/g, ''), detail: block, where, userStack };
}

/** A recompile reason `0/0: tensor 'x' size mismatch …` (one per line; the first guard that failed leads). */
export function parseRecompile(text: string): Pick<Recompile, 'previous' | 'guard'> {
  let t = text.trim();
  // The artifact's encoding is json: a list of strings, or a bare string in some torch versions.
  if (t.startsWith('[') || t.startsWith('"')) {
    try {
      const v = JSON.parse(t) as unknown;
      t = (Array.isArray(v) ? v.map(String).join('\n') : String(v)).trim();
    } catch {
      /* not JSON after all: read as text */
    }
  }
  const first = t.split('\n')[0] ?? '';
  const m = /^(\d+\/\d+):\s*(.*)$/.exec(first);
  return m ? { previous: m[1]!, guard: m[2]! } : { previous: null, guard: first };
}

/**
 * AOT's graphs print `def forward(` and `return (` with one item a line, each with a comment naming
 * where it came from (`arg0_1: "i64[8][1]cpu",  # PlainAOTInput(idx=0)`); the FX importer reads the
 * one-line forms print_readable writes elsewhere, so those lines are joined and the comments dropped.
 */
export function oneLineSignature(text: string): string {
  return text.replace(
    /^( *)(def forward\(|return \()\n([\s\S]*?)\n\1\)((?: *->[^:\n]*)?:?)$/gm,
    (_, ind, open, body, end) => {
      const items = (body as string)
        .split('\n')
        .map((l) => l.replace(/\s+#.*$/, '').trim())
        .filter((l) => l !== '')
        .join(' ');
      // A tuple keeps its trailing comma (`return (x,)`); an argument list drops it.
      return `${ind}${open}${open === 'return (' ? items : items.replace(/,$/, '')})${end}`;
    },
  );
}

/** Reads a TORCH_TRACE log pushed in chunks; `finish()` returns what was read. */
export class TorchTraceReader {
  private rest = '';
  private lineNo = 0;
  private strings = new Map<number, string>();
  private frames = new Map<string, TraceFrame>();
  private breaks: GraphBreak[] = [];
  private recompiles: Recompile[] = [];
  private metricsRecompiles = new Map<string, Recompile>();
  private metricsBreaks: GraphBreak[] = [];
  private problems: TraceProblem[] = [];
  /** The envelope whose payload lines are being read. */
  private open: { env: Envelope; use: PayloadUse; line: number; parts: string[] } | null = null;
  /** Payload lines after an envelope that could not be read belong to it: skipped, not each named. */
  private orphaned = false;

  push(chunk: string): void {
    const text = this.rest + chunk;
    let from = 0;
    for (;;) {
      const nl = text.indexOf('\n', from);
      if (nl < 0) break;
      this.line(text.slice(from, text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl));
      from = nl + 1;
    }
    this.rest = text.slice(from);
  }

  finish(): TorchTrace {
    if (this.rest !== '') {
      // torch ends every line with a newline: text after the last one is a line cut off.
      const cut = this.rest;
      this.rest = '';
      const n = this.lineNo + 1;
      if (cut.startsWith('\t') && this.open) {
        this.problem(
          this.open.line,
          '',
          `the log ends inside this entry's payload (line ${n} is cut off): its ${this.entryName(this.open)} was not loaded`,
          true,
        );
        this.open = null;
        this.lineNo = n;
      } else {
        this.lineNo = n;
        this.problem(n, cut, 'the log ends mid-line (truncated)');
      }
    }
    this.close();
    const frames = [...this.frames.values()].sort(
      (a, b) => a.frameId - b.frameId || a.frameCompileId - b.frameCompileId,
    );
    // Metrics are the fallback: older logs have no graph-break / recompile artifacts.
    const broke = new Set(this.breaks.map((b) => b.compileId));
    const breaks = [...this.breaks, ...this.metricsBreaks.filter((b) => !broke.has(b.compileId))];
    const recompiled = new Set(this.recompiles.map((r) => r.compileId));
    const recompiles = [
      ...this.recompiles,
      ...[...this.metricsRecompiles.values()].filter((r) => !recompiled.has(r.compileId)),
    ];
    return { frames, breaks, recompiles, problems: this.problems, lines: this.lineNo };
  }

  private line(l: string): void {
    const n = ++this.lineNo;
    if (l.startsWith('\t')) {
      if (this.open) {
        if (this.open.use.kind !== 'skip') this.open.parts.push(l.slice(1));
      } else if (!this.orphaned) {
        this.problem(n, l, 'a payload line with no entry before it');
        this.orphaned = true;
      }
      return;
    }
    this.close();
    this.orphaned = false;
    if (l === '') return;
    const m = GLOG.exec(l);
    if (!m) {
      this.problem(n, l, 'not a TORCH_TRACE line (no glog prefix `V1206 11:40:40.401000 123 file.py:10] `)');
      this.orphaned = true;
      return;
    }
    let env: Envelope;
    try {
      env = JSON.parse(l.slice(m[0].length)) as Envelope;
      if (typeof env !== 'object' || env === null || Array.isArray(env)) throw new Error('not an object');
    } catch (e) {
      this.problem(n, l, `its JSON envelope does not parse (${(e as Error).message})`);
      this.orphaned = true;
      return;
    }
    this.envelope(env, n);
  }

  private envelope(env: Envelope, n: number): void {
    if (env.str) {
      this.strings.set(env.str[1], env.str[0]);
      return;
    }
    if (env.dynamo_start) {
      const top = env.dynamo_start.stack?.at(-1);
      const f = this.frame(env);
      if (f && top) {
        f.fn ??= top.name ?? null;
        f.file ??= this.fileName(top.filename);
        f.firstLine ??= top.line ?? null;
      }
    }
    if (env.compilation_metrics) this.metrics(env, n);
    if (env.has_payload !== undefined) this.open = { env, use: payloadUse(env), line: n, parts: [] };
  }

  private metrics(env: Envelope, n: number): void {
    const m = env.compilation_metrics!;
    const f = this.frame(env);
    if (!f) return;
    // The metrics name the compiled function itself; dynamo_start's stack may end elsewhere.
    if (m.co_name) f.fn = m.co_name;
    if (m.co_filename) f.file = m.co_filename;
    if (typeof m.co_firstlineno === 'number') f.firstLine = m.co_firstlineno;
    if (m.fail_type) f.failure = `${m.fail_type}: ${(m.fail_reason ?? '').split('\n')[0]}`;
    if (m.recompile_reason)
      this.metricsRecompiles.set(f.compileId, {
        compileId: f.compileId,
        ...parseRecompile(m.recompile_reason),
        line: n,
      });
    for (const r of m.restart_reasons ?? []) {
      const lines = r.split('\n').filter((l) => l.trim() !== '');
      this.metricsBreaks.push({
        compileId: f.compileId,
        reason: (lines[0] ?? r).replace(/`/g, ''),
        detail: r,
        where: null,
        userStack: [],
        line: n,
      });
    }
  }

  private close(): void {
    const o = this.open;
    if (!o) return;
    this.open = null;
    if (o.use.kind === 'skip') return;
    const text = o.parts.join('\n');
    const f = this.frame(o.env);
    if (!f) {
      this.problem(
        o.line,
        '',
        `its ${this.entryName(o)} names no compile id (frame_id / frame_compile_id)`,
        true,
      );
      return;
    }
    if (o.use.kind === 'graph') {
      const stage = o.use.stage;
      const kind = traceStageKind(stage);
      const graph: TraceGraph = {
        stage,
        kind,
        text: kind === 'fx' ? oneLineSignature(text) : text,
        line: o.line,
        attempt: o.env.attempt ?? 0,
      };
      // A restarted compile may log a stage again: the later attempt is the graph that was compiled.
      const at = f.graphs.findIndex((g) => g.stage === stage);
      if (at >= 0) f.graphs[at] = graph;
      else f.graphs.push(graph);
    } else if (o.use.kind === 'break') {
      this.breaks.push({ compileId: f.compileId, ...parseGraphBreak(text), line: o.line });
    } else {
      this.recompiles.push({ compileId: f.compileId, ...parseRecompile(text), line: o.line });
    }
  }

  private frame(env: Envelope): TraceFrame | null {
    if (typeof env.frame_id !== 'number' || typeof env.frame_compile_id !== 'number') return null;
    const compileId = `${env.frame_id}/${env.frame_compile_id}`;
    let f = this.frames.get(compileId);
    if (!f) {
      f = {
        compileId,
        frameId: env.frame_id,
        frameCompileId: env.frame_compile_id,
        fn: null,
        file: null,
        firstLine: null,
        failure: null,
        graphs: [],
      };
      this.frames.set(compileId, f);
    }
    return f;
  }

  private fileName(f: number | string | undefined): string | null {
    if (typeof f === 'string') return f;
    return f === undefined ? null : (this.strings.get(f) ?? null);
  }

  private entryName(o: { use: PayloadUse; env: Envelope }): string {
    return o.use.kind === 'graph' ? o.use.stage : (o.env.artifact?.name ?? 'payload');
  }

  private problem(line: number, text: string, message: string, noHead = false): void {
    this.problems.push({ line, head: noHead ? '' : text.slice(0, HEAD_CHARS), message });
  }
}

/** Reads a whole log held as text (tests, the CLI on small files). */
export function parseTorchTrace(text: string): TorchTrace {
  const r = new TorchTraceReader();
  r.push(text);
  return r.finish();
}

/** `dedicated_log_torch_trace_*.log`, or any `.log` a TORCH_TRACE folder holds. */
export const isTorchTraceLog = (path: string): boolean =>
  /(^|\/)dedicated_log_torch_trace[^/]*\.log$/.test(path);

/** A frame's FX graphs ordered by stage, named by label (`post_grad`), for the stage scrubber. */
export function frameStages(f: TraceFrame): TraceGraph[] {
  return [...f.graphs].sort((a, b) => TRACE_STAGES.indexOf(a.stage) - TRACE_STAGES.indexOf(b.stage));
}

/** A problem as one line: `line 12 ("V1206 …"): its JSON envelope does not parse`. */
export const describeProblem = (p: TraceProblem): string =>
  `line ${p.line}${p.head ? ` (${JSON.stringify(p.head)})` : ''}: ${p.message}`;

/** A compile's graphs as the stage scrubber's stages: its FX graphs imported, in compile order. */
export interface TraceFrameStages {
  folder: StageFolder;
  /** The stages' texts by path, as the editor shows them. */
  files: StageFile[];
  /** Inductor's output code, for an output-code reader (none reads it here). */
  outputCode: string | null;
  /** Inductor's provenance mapping (kernels → post-grad nodes, JSON), where the compile logged one. */
  provenance: string | null;
}

/**
 * Imports a compile's FX graphs (`[0/0]/dynamo` … `[0/0]/post_grad`; Dynamo's torch-level calls as
 * the ops they mean, see fx/torchLevel.ts); one the importer cannot read is listed as skipped with
 * the importer's reason, as a dump folder's are.
 */
export function importTraceFrame(
  frame: TraceFrame,
  opts: { maxBytes?: number; maxNodes?: number } = {},
): TraceFrameStages {
  const stages: DumpStage[] = [];
  const skipped: SkippedFile[] = [];
  const files: StageFile[] = [];
  let outputCode: string | null = null;
  let provenance: string | null = null;
  for (const g of frameStages(frame)) {
    const path = `[${frame.compileId}]/${TRACE_STAGE_LABELS[g.stage]}`;
    if (g.kind === 'output_code') {
      outputCode = g.text;
      skipped.push({ path, reason: "Inductor's generated kernels (output code), not an FX graph" });
      continue;
    }
    if (g.kind === 'provenance') {
      provenance = g.text;
      skipped.push({
        path,
        reason: "Inductor's provenance mapping (kernels → post-grad nodes), not an FX graph",
      });
      continue;
    }
    files.push({ path, text: g.text });
    try {
      const r = importGraph(g.text, { fileName: path, ...opts });
      stages.push({
        name: TRACE_STAGE_LABELS[g.stage],
        path,
        graph: r.graph,
        warnings: r.warnings,
        format: r.format,
      });
    } catch (e) {
      const why =
        e instanceof GraphImportError ? `line ${e.line}:${e.col}: ${e.detail}` : (e as Error).message;
      skipped.push({ path, reason: `not read as FX (${why})` });
    }
  }
  return { folder: { stages, skipped }, files, outputCode, provenance };
}
