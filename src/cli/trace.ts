// `fusionlab trace <dir|log> [--json]`: what a TORCH_TRACE log holds — each compile (`frame/compile`)
// with its function, graph breaks (reason, user frame), recompiles (the failed guard) and its graphs
// by stage. `fusionlab rewrite <dir> --frame 0/0 --stage post_grad` rewrites one of those graphs.

import { relative } from 'node:path';
import {
  TRACE_STAGE_LABELS,
  describeProblem,
  frameStages,
  type TorchTrace,
} from '../graph/artifacts/torchTrace.ts';
import { SWITCH, UsageError, parseFlags, type FlagSpec } from './flags.ts';
import { readTorchTrace, torchTraceLogs } from './traceLog.ts';

const TRACE_FLAGS = { '--json': SWITCH } satisfies FlagSpec;

export async function command(argv: string[]): Promise<number> {
  let path: string | undefined;
  let json = false;
  try {
    const { values } = parseFlags(argv, TRACE_FLAGS, (arg) => {
      if (path !== undefined) throw new UsageError(`one folder or log only (got '${path}' and '${arg}')`);
      path = arg;
    });
    if (path === undefined) throw new UsageError('missing input: a TORCH_TRACE folder or its log');
    json = values['--json'] ?? false;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`fusionlab trace: ${e.message}\n`);
    return 2;
  }
  let logs: string[];
  try {
    logs = torchTraceLogs(path);
  } catch (e) {
    process.stderr.write(`fusionlab trace: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? e}\n`);
    return 2;
  }
  if (logs.length === 0) {
    process.stderr.write(`fusionlab trace: ${path}: no dedicated_log_torch_trace_*.log in it\n`);
    return 2;
  }
  const log = logs[0]!;
  for (const other of logs.slice(1))
    process.stderr.write(`fusionlab trace: ${other}: another rank's log, not read (showing ${log})\n`);
  const trace = readTorchTrace(log);
  for (const p of trace.problems) process.stderr.write(`${log}: warning: ${describeProblem(p)}\n`);
  process.stdout.write(json ? `${JSON.stringify(traceSummary(trace), null, 1)}\n` : traceText(log, trace));
  return trace.frames.length > 0 ? 0 : 1;
}

/** What the command prints with --json: no graph texts, only where they are. */
export function traceSummary(t: TorchTrace) {
  return {
    frames: t.frames.map((f) => ({
      compileId: f.compileId,
      fn: f.fn,
      file: f.file,
      line: f.firstLine,
      failure: f.failure,
      stages: frameStages(f).map((g) => ({
        stage: TRACE_STAGE_LABELS[g.stage],
        kind: g.kind,
        line: g.line,
        lines: g.text.split('\n').length,
      })),
    })),
    breaks: t.breaks,
    recompiles: t.recompiles,
    problems: t.problems,
  };
}

/** A path under the working folder as a relative one (the log names absolute paths). */
const shortPath = (p: string) => (p.startsWith(process.cwd() + '/') ? relative(process.cwd(), p) : p);

function traceText(log: string, t: TorchTrace): string {
  const out: string[] = [];
  const frames = new Set(t.frames.map((f) => f.frameId)).size;
  out.push(
    `${log}: ${t.frames.length} compiles of ${frames} frames, ${t.breaks.length} graph breaks, ${t.recompiles.length} recompiles${t.problems.length ? `, ${t.problems.length} unreadable lines` : ''}`,
  );
  for (const f of t.frames) {
    const where = f.file ? ` (${shortPath(f.file)}:${f.firstLine ?? '?'})` : '';
    out.push(`[${f.compileId}] ${f.fn ?? '?'}${where}${f.failure ? `  failed: ${f.failure}` : ''}`);
    for (const r of t.recompiles.filter((x) => x.compileId === f.compileId))
      out.push(`  recompile: guard failed${r.previous ? ` on ${r.previous}` : ''}: ${r.guard}`);
    for (const b of t.breaks.filter((x) => x.compileId === f.compileId))
      out.push(`  graph break: ${b.reason}${b.where ? ` at ${shortPath(b.where)}` : ''}`);
    for (const g of frameStages(f))
      out.push(
        `  ${TRACE_STAGE_LABELS[g.stage].padEnd(17)} ${g.kind === 'fx' ? 'FX graph   ' : 'output code'} ${g.text.split('\n').length} lines (log line ${g.line})`,
      );
  }
  return `${out.join('\n')}\n`;
}
