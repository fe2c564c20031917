// `fusionlab rewrite <file|folder|-> [--stage NAME|N] [--passes a,b,c] [--world-size N] [--max-tokens T]
//   [--gpu hopper|blackwell] [--token-gate runtime-fallback|compile-range] [--tp-group NAME] [--emit fx|json]
//   [--out PATH] [--report]`, or vLLM's own flags in place of --passes: `-O2 -tp 2
//   -cc.pass_config.enable_sp=true --compilation-config '{…}' [--platform sm80|sm89|sm90|sm100|rocm]`
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
import type { PassOptions, PipelineResult } from '../graph/passes/pipeline.ts';
import { DEFAULT_PIPELINE, PASSES, UnknownPassError, runPipeline } from '../graph/passes/pipeline.ts';
import { GPU_FAMILIES, TOKEN_GATES } from '../graph/passes/options.ts';
import {
  SWITCH,
  UsageError,
  nameList,
  nonEmpty,
  oneOf,
  parseFlags,
  positiveInt,
  type FlagSpec,
} from './flags.ts';
import { FUSED_ALLREDUCE_NORM } from '../graph/passes/patternOps.ts';
import {
  VLLM_PLATFORMS,
  VllmConfigError,
  resolveVllmConfig,
  splitVllmArgs,
  type ResolvedVllmConfig,
} from '../graph/passes/vllmConfig.ts';

interface RewriteArgs {
  file: string;
  passes: string[];
  opts: PassOptions;
  emit: 'fx' | 'json';
  out?: string;
  report: boolean;
  stage?: string;
  /** vLLM's own flags (-O2, -cc.pass_config.…, -tp), resolved: the passes vLLM would run. */
  vllm?: ResolvedVllmConfig;
}

const REWRITE_FLAGS = {
  '--passes': nameList(
    '--passes takes a comma-separated list of passes',
    PASSES,
    (p) => new UnknownPassError(p).message,
  ),
  '--world-size': positiveInt,
  '--max-tokens': positiveInt,
  '--gpu': oneOf(GPU_FAMILIES),
  '--token-gate': oneOf(TOKEN_GATES),
  '--tp-group': nonEmpty(
    "--tp-group takes the TP group's name as the graph's all_reduce calls carry it (default tp:0)",
  ),
  '--emit': oneOf(['fx', 'json'] as const),
  '--out': nonEmpty('--out takes a path'),
  '--report': SWITCH,
  '--stage': nonEmpty("--stage takes a stage's name or its index in the folder"),
  '--platform': oneOf(VLLM_PLATFORMS),
} satisfies FlagSpec;

export function parseRewriteArgs(argv: string[]): RewriteArgs {
  let file: string | undefined;
  let split: ReturnType<typeof splitVllmArgs>;
  try {
    split = splitVllmArgs(argv);
  } catch (e) {
    if (e instanceof VllmConfigError) throw new UsageError(e.message);
    throw e;
  }
  const { values: f } = parseFlags(split.rest, REWRITE_FLAGS, (arg) => {
    if (file !== undefined) throw new UsageError(`one input file only (got '${file}' and '${arg}')`);
    file = arg;
  });
  if (file === undefined) throw new UsageError('missing input: a file, or - for stdin');
  if (split.vllm && f['--passes'])
    throw new UsageError("--passes and vLLM's -O / -cc flags both pick the passes: give one of them");
  if (f['--platform'] && !split.vllm)
    throw new UsageError("--platform picks vLLM's defaults: give it with -O or -cc flags");
  const vllm = split.vllm ? resolveVllmConfig(split.vllm, { platform: f['--platform'] }) : undefined;
  return {
    file,
    passes: vllm ? vllm.passes : (f['--passes'] ?? [...DEFAULT_PIPELINE]),
    ...(vllm ? { vllm } : {}),
    opts: {
      worldSize: f['--world-size'] ?? vllm?.options.worldSize,
      maxTokens: f['--max-tokens'],
      gpu: f['--gpu'] ?? vllm?.options.gpu,
      tokenGate: f['--token-gate'],
      tpGroup: f['--tp-group'],
      platform: vllm?.options.platform,
    },
    emit: f['--emit'] ?? 'fx',
    out: f['--out'],
    report: f['--report'] ?? false,
    stage: f['--stage'],
  };
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

/** Bad input: the one line the command prints on stderr before it exits 2. */
class InputError extends Error {}

const cannotRead = (source: string, e: unknown) =>
  new InputError(
    `fusionlab rewrite: cannot read ${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
  );

/** The graph to rewrite and, from a folder, the folder and which of its stages that graph is. */
interface RewriteInput {
  graph: Graph;
  folder?: StageFolder;
  stageIndex: number;
}

/** The chosen stage of a dump folder (the first without --stage); skipped files and the stage's warnings go to stderr. */
function folderStage(args: RewriteArgs, source: string): RewriteInput {
  let folder: StageFolder;
  try {
    folder = readFolder(args.file);
  } catch (e) {
    throw cannotRead(source, e);
  }
  for (const s of folder.skipped)
    process.stderr.write(`${join(source, s.path)}: warning: skipped: ${s.reason}\n`);
  if (folder.stages.length === 0)
    throw new InputError(`fusionlab rewrite: ${source}: no graph among its ${folder.skipped.length} files`);
  let stageIndex = 0;
  if (args.stage !== undefined) {
    stageIndex = /^\d+$/.test(args.stage)
      ? Number(args.stage)
      : folder.stages.findIndex((s) => s.name === args.stage);
    if (stageIndex < 0 || stageIndex >= folder.stages.length)
      throw new InputError(
        `fusionlab rewrite: no stage '${args.stage}' in ${source} (stages: ${folder.stages.map((s, i) => `${i} ${s.name}`).join(', ')})`,
      );
  }
  const stage = folder.stages[stageIndex]!;
  for (const w of stage.warnings)
    process.stderr.write(`${join(source, stage.path)}:${w.line}: warning: ${w.message}\n`);
  return { graph: stage.graph, folder, stageIndex };
}

/** The graph of one file (or stdin); its import warnings go to stderr. */
function fileGraph(args: RewriteArgs, source: string): RewriteInput {
  if (args.stage !== undefined)
    throw new InputError(`fusionlab rewrite: --stage picks a stage of a folder; ${source} is a file`);
  let text: string;
  try {
    text = readInput(args.file);
  } catch (e) {
    throw cannotRead(source, e);
  }
  let imported;
  try {
    imported = importGraph(text, { fileName: source });
  } catch (e) {
    if (e instanceof GraphImportError)
      throw new InputError(`${e.source ?? source}:${e.line}:${e.col}: ${e.detail}`);
    throw e;
  }
  for (const w of imported.warnings) process.stderr.write(`${source}:${w.line}: warning: ${w.message}\n`);
  return { graph: imported.graph, stageIndex: 0 };
}

function isFolder(file: string): boolean {
  try {
    return file !== '-' && statSync(file).isDirectory();
  } catch {
    return false; // Not there: reading it as a file says so.
  }
}

/** --report: what each pass matched, why the rest did not fire, and a folder's stages. */
function report(result: PipelineResult, input: RewriteInput, vllm?: ResolvedVllmConfig): string {
  const { folder, stageIndex } = input;
  return (
    JSON.stringify({
      // vLLM's flags as resolved: each switch on or off and why, and those whose pass is not run here.
      ...(vllm
        ? {
            vllm: {
              level: vllm.level,
              platform: vllm.context.platform,
              tp: vllm.context.tp,
              flags: vllm.flags.map(({ flag, on, source, why, pass }) => ({ flag, on, source, why, pass })),
              notRun: vllm.notRun.map((f) => ({ flag: f.flag, vllmPass: f.vllmPass })),
            },
          }
        : {}),
      passes: result.stages.map((s) => {
        // Sites that fused with a gate left unevaluated (no shapes in the graph), and what was assumed.
        const unevaluated = s.matches
          .filter((m) => m.unevaluated)
          .map((m) => ({ site: m.site, gates: m.unevaluated }));
        const entry = { name: s.pass, matches: s.matches.length, sites: s.matches.map((m) => m.site) };
        return {
          ...entry,
          ...(unevaluated.length ? { unevaluated } : {}),
          // What this stage refused, and why: the report groups the run's diagnostics by stage.
          ...(s.diagnostics.length ? { refused: s.diagnostics.length } : {}),
        };
      }),
      // Every stage's diagnostics in stage order (each names its pass), then why each all-reduce
      // left at the end is not fused.
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
    }) + '\n'
  );
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
  let input: RewriteInput;
  try {
    input = isFolder(args.file) ? folderStage(args, source) : fileGraph(args, source);
  } catch (e) {
    if (e instanceof InputError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  for (const f of args.vllm?.notRun ?? [])
    process.stderr.write(
      `fusionlab rewrite: note: vLLM would also run ${f.vllmPass} (${f.flag}); fusionlab has no such pass yet, so its sites are not counted\n`,
    );
  const result = runPipeline(input.graph, args.passes, args.opts);
  const out = args.report
    ? report(result, input, args.vllm)
    : args.emit === 'json'
      ? JSON.stringify(graphToJson(result.output)) + '\n'
      : printFx(result.output);
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
