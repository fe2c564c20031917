// `fusionlab rewrite <file|folder|-> [--stage NAME|N] [--passes a,b,c] [--world-size N] [--max-tokens T]
//   [--gpu hopper|blackwell] [--token-gate runtime-fallback|compile-range] [--tp-group NAME] [--emit fx|json]
//   [--out PATH] [--report]`
// Imports a graph (FX text in any form, or fusionlab JSON), runs the passes, and writes the
// rewritten graph — or, with --report, one JSON object saying what matched and what did not.
// A folder (vLLM's debug dump, TORCH_COMPILE_DEBUG's Inductor folder) imports as ordered stages;
// the first (or --stage) is rewritten, and the report lists every stage with its fused sites.
// Bad input exits 2 with one line naming the file, line and column.

import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MAX_BYTES, GraphImportError } from '../graph/errors.ts';
import { importGraph } from '../graph/formats.ts';
import type { Graph } from '../graph/ir.ts';
import { MAX_FOLDER_FILES, importStageFolder, type StageFolder } from '../graph/stageFolder.ts';
import { functionalizedTarget } from '../graph/call.ts';
import { printFx } from '../graph/fx/print.ts';
import { graphToJson } from '../graph/json.ts';
import type { PassOptions } from '../graph/passes/pipeline.ts';
import { DEFAULT_PIPELINE, PASSES, UnknownPassError, runPipeline } from '../graph/passes/pipeline.ts';
import { GPU_FAMILIES, TOKEN_GATES } from '../graph/passes/options.ts';
import { FUSED_ALLREDUCE_NORM } from '../graph/passes/patternOps.ts';

class UsageError extends Error {}

interface RewriteArgs {
  file: string;
  passes: string[];
  opts: PassOptions;
  emit: 'fx' | 'json';
  out?: string;
  report: boolean;
  stage?: string;
}

function positiveInt(flag: string, v: string | undefined): number {
  if (v === undefined || !/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v)))
    throw new UsageError(`${flag} takes a positive integer, got ${v === undefined ? 'nothing' : `'${v}'`}`);
  return Number(v);
}

function oneOf<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T {
  if (v === undefined || !(allowed as readonly string[]).includes(v))
    throw new UsageError(
      `${flag} takes ${allowed.join(' | ')}, got ${v === undefined ? 'nothing' : `'${v}'`}`,
    );
  return v as T;
}

export function parseRewriteArgs(argv: string[]): RewriteArgs {
  const a: Partial<RewriteArgs> & { opts: PassOptions } = {
    opts: {},
    emit: 'fx',
    report: false,
    passes: [...DEFAULT_PIPELINE],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--passes': {
        const v = value();
        if (!v) throw new UsageError('--passes takes a comma-separated list of passes');
        a.passes = v
          .split(',')
          .map((p) => p.trim())
          .filter((p) => p !== '');
        for (const p of a.passes) if (!(p in PASSES)) throw new UsageError(new UnknownPassError(p).message);
        break;
      }
      case '--world-size':
        a.opts.worldSize = positiveInt(flag, value());
        break;
      case '--max-tokens':
        a.opts.maxTokens = positiveInt(flag, value());
        break;
      case '--gpu':
        a.opts.gpu = oneOf(flag, value(), GPU_FAMILIES);
        break;
      case '--token-gate':
        a.opts.tokenGate = oneOf(flag, value(), TOKEN_GATES);
        break;
      case '--tp-group': {
        const v = value();
        if (!v)
          throw new UsageError(
            "--tp-group takes the TP group's name as the graph's all_reduce calls carry it (default tp:0)",
          );
        a.opts.tpGroup = v;
        break;
      }
      case '--emit':
        a.emit = oneOf(flag, value(), ['fx', 'json'] as const);
        break;
      case '--out': {
        const v = value();
        if (!v) throw new UsageError('--out takes a path');
        a.out = v;
        break;
      }
      case '--report':
        a.report = true;
        break;
      case '--stage': {
        const v = value();
        if (!v) throw new UsageError("--stage takes a stage's name or its index in the folder");
        a.stage = v;
        break;
      }
      default:
        if (arg.startsWith('--')) throw new UsageError(`unknown option '${arg}'`);
        if (a.file !== undefined) throw new UsageError(`one input file only (got '${a.file}' and '${arg}')`);
        a.file = arg;
    }
  }
  if (a.file === undefined) throw new UsageError('missing input: a file, or - for stdin');
  return a as RewriteArgs;
}

function readFolder(dir: string): StageFolder {
  const paths = (readdirSync(dir, { recursive: true }) as string[])
    .map((p) => p.split('\\').join('/'))
    .filter((p) => statSync(join(dir, p)).isFile());
  if (paths.length > MAX_FOLDER_FILES)
    throw new Error(`${dir} holds ${paths.length} files (at most ${MAX_FOLDER_FILES}): not a dump folder`);
  // A file past the import limit is not read at all, only named.
  const tooBig = paths.filter((p) => statSync(join(dir, p)).size > DEFAULT_MAX_BYTES);
  const r = importStageFolder(
    paths
      .filter((p) => !tooBig.includes(p))
      .map((p) => ({ path: p, text: readFileSync(join(dir, p), 'utf8') })),
  );
  return {
    stages: r.stages,
    skipped: [
      ...tooBig.map((p) => ({
        path: p,
        reason: `larger than the ${DEFAULT_MAX_BYTES / 2 ** 20} MiB import limit`,
      })),
      ...r.skipped,
    ],
  };
}

const fusedSites = (g: Graph) =>
  g.nodes.filter((n) => n.op === FUSED_ALLREDUCE_NORM || functionalizedTarget(n) === FUSED_ALLREDUCE_NORM)
    .length;

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
  let graph: Graph;
  let folder: StageFolder | undefined;
  let stageIndex = 0;
  let isFolder = false;
  try {
    isFolder = args.file !== '-' && statSync(args.file).isDirectory();
  } catch {
    // Not there: readInput below says so.
  }
  if (isFolder) {
    try {
      folder = readFolder(args.file);
    } catch (e) {
      process.stderr.write(
        `fusionlab rewrite: cannot read ${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`,
      );
      return 2;
    }
    for (const s of folder.skipped)
      process.stderr.write(`${join(source, s.path)}: warning: skipped: ${s.reason}\n`);
    if (folder.stages.length === 0) {
      process.stderr.write(
        `fusionlab rewrite: ${source}: no graph among its ${folder.skipped.length} files\n`,
      );
      return 2;
    }
    if (args.stage !== undefined) {
      stageIndex = /^\d+$/.test(args.stage)
        ? Number(args.stage)
        : folder.stages.findIndex((s) => s.name === args.stage);
      if (stageIndex < 0 || stageIndex >= folder.stages.length) {
        process.stderr.write(
          `fusionlab rewrite: no stage '${args.stage}' in ${source} (stages: ${folder.stages.map((s, i) => `${i} ${s.name}`).join(', ')})\n`,
        );
        return 2;
      }
    }
    const stage = folder.stages[stageIndex]!;
    for (const w of stage.warnings)
      process.stderr.write(`${join(source, stage.path)}:${w.line}: warning: ${w.message}\n`);
    graph = stage.graph;
  } else {
    if (args.stage !== undefined) {
      process.stderr.write(`fusionlab rewrite: --stage picks a stage of a folder; ${source} is a file\n`);
      return 2;
    }
    let text: string;
    try {
      text = readInput(args.file);
    } catch (e) {
      process.stderr.write(
        `fusionlab rewrite: cannot read ${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`,
      );
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
    graph = imported.graph;
  }
  const result = runPipeline(graph, args.passes, args.opts);
  let out: string;
  if (args.report) {
    out =
      JSON.stringify({
        passes: result.stages.map((s) => {
          // Sites that fused with a gate left unevaluated (no shapes in the graph), and what was assumed.
          const unevaluated = s.matches
            .filter((m) => m.unevaluated)
            .map((m) => ({ site: m.site, gates: m.unevaluated }));
          const entry = { name: s.pass, matches: s.matches.length, sites: s.matches.map((m) => m.site) };
          return unevaluated.length ? { ...entry, unevaluated } : entry;
        }),
        diagnostics: result.diagnostics,
        nodes: { before: result.input.nodes.length, after: result.output.nodes.length },
        // A folder: every stage in order, with the fused all-reduce + norm sites it already holds.
        ...(folder
          ? {
              stage: folder.stages[stageIndex]!.name,
              stages: folder.stages.map((s) => ({
                name: s.name,
                path: s.path,
                nodes: s.graph.nodes.length,
                fusedSites: fusedSites(s.graph),
              })),
              skipped: folder.skipped,
            }
          : {}),
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
    process.stderr.write(
      `fusionlab rewrite: cannot write ${args.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`,
    );
    return 2;
  }
  return 0;
}
