// `fusionlab rewrite <file|-> [--passes a,b,c] [--world-size N] [--max-tokens T]
//   [--gpu hopper|blackwell] [--token-gate runtime-fallback|compile-range] [--emit fx|json]
//   [--out PATH] [--report]`
// Imports a graph (FX text in any form, or fusionlab JSON), runs the passes, and writes the
// rewritten graph — or, with --report, one JSON object saying what matched and what did not.
// Bad input exits 2 with one line naming the file, line and column.

import { readFileSync, writeFileSync } from 'node:fs';
import { GraphImportError } from '../graph/errors.ts';
import { importGraph } from '../graph/formats.ts';
import { printFx } from '../graph/fx/print.ts';
import { graphToJson } from '../graph/json.ts';
import type { PassOptions } from '../graph/passes/pipeline.ts';
import { DEFAULT_PIPELINE, PASSES, UnknownPassError, runPipeline } from '../graph/passes/pipeline.ts';
import { GPU_FAMILIES, TOKEN_GATES } from '../graph/passes/options.ts';

class UsageError extends Error {}

interface RewriteArgs { file: string; passes: string[]; opts: PassOptions; emit: 'fx' | 'json'; out?: string; report: boolean }

function positiveInt(flag: string, v: string | undefined): number {
  if (v === undefined || !/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) throw new UsageError(`${flag} takes a positive integer, got ${v === undefined ? 'nothing' : `'${v}'`}`);
  return Number(v);
}

function oneOf<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T {
  if (v === undefined || !(allowed as readonly string[]).includes(v)) throw new UsageError(`${flag} takes ${allowed.join(' | ')}, got ${v === undefined ? 'nothing' : `'${v}'`}`);
  return v as T;
}

export function parseRewriteArgs(argv: string[]): RewriteArgs {
  const a: Partial<RewriteArgs> & { opts: PassOptions } = { opts: {}, emit: 'fx', report: false, passes: [...DEFAULT_PIPELINE] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--passes': {
        const v = value();
        if (!v) throw new UsageError('--passes takes a comma-separated list of passes');
        a.passes = v.split(',').map((p) => p.trim()).filter((p) => p !== '');
        for (const p of a.passes) if (!(p in PASSES)) throw new UsageError(new UnknownPassError(p).message);
        break;
      }
      case '--world-size': a.opts.worldSize = positiveInt(flag, value()); break;
      case '--max-tokens': a.opts.maxTokens = positiveInt(flag, value()); break;
      case '--gpu': a.opts.gpu = oneOf(flag, value(), GPU_FAMILIES); break;
      case '--token-gate': a.opts.tokenGate = oneOf(flag, value(), TOKEN_GATES); break;
      case '--emit': a.emit = oneOf(flag, value(), ['fx', 'json'] as const); break;
      case '--out': {
        const v = value();
        if (!v) throw new UsageError('--out takes a path');
        a.out = v;
        break;
      }
      case '--report': a.report = true; break;
      default:
        if (arg.startsWith('--')) throw new UsageError(`unknown option '${arg}'`);
        if (a.file !== undefined) throw new UsageError(`one input file only (got '${a.file}' and '${arg}')`);
        a.file = arg;
    }
  }
  if (a.file === undefined) throw new UsageError('missing input: a file, or - for stdin');
  return a as RewriteArgs;
}

function readInput(file: string): string {
  return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
}

export async function command(argv: string[]): Promise<number> {
  let args: RewriteArgs;
  try {
    args = parseRewriteArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`fusionlab rewrite: ${e.message} (see fusionlab rewrite --help)\n`);
      return 2;
    }
    throw e;
  }
  const source = args.file === '-' ? '<stdin>' : args.file;
  let text: string;
  try {
    text = readInput(args.file);
  } catch (e) {
    process.stderr.write(`fusionlab rewrite: cannot read ${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
    return 2;
  }
  let imported;
  try {
    imported = importGraph(text, { fileName: source });
  } catch (e) {
    if (e instanceof GraphImportError) {
      process.stderr.write(`${e.source ?? source}:${e.line}:${e.col}: ${e.detail}\n`);
      return 2;
    }
    throw e;
  }
  for (const w of imported.warnings) process.stderr.write(`${source}:${w.line}: warning: ${w.message}\n`);
  const result = runPipeline(imported.graph, args.passes, args.opts);
  let out: string;
  if (args.report) {
    out = JSON.stringify({
      passes: result.stages.map((s) => ({ name: s.pass, matches: s.matches.length, sites: s.matches.map((m) => m.site) })),
      diagnostics: result.diagnostics,
      nodes: { before: result.input.nodes.length, after: result.output.nodes.length },
    }) + '\n';
  } else {
    out = args.emit === 'json' ? JSON.stringify(graphToJson(result.output)) + '\n' : printFx(result.output);
  }
  if (args.out === undefined) {
    process.stdout.write(out);
    return 0;
  }
  try {
    writeFileSync(args.out, out);
  } catch (e) {
    process.stderr.write(`fusionlab rewrite: cannot write ${args.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
    return 2;
  }
  return 0;
}
