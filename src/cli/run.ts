// `fusionlab run <file|sample:NAME> --backend webgpu|cpu|agent --ranks N [--dp D] --preset tiny|layer
//   --dtype bf16|f32 [--allreduce ring|one-shot|two-shot] [--workers] [--tokens T] [--seed S]
//   [--layers L] [--inputs DIR] [--dump-outputs DIR] [--compare PASSES] [--report]
//   [--agent ws://127.0.0.1:PORT] [--token T]`
// Runs a graph on every rank (or, with --compare, before and after the passes on the same
// inputs). --report prints one JSON object: per output max abs / rel error and bitwise equality,
// and a trace per rank per node. Bad input, and any flag the chosen run would not use, exits 2
// with one line. The agent's token comes from --token or FUSIONLAB_AGENT_TOKEN. --ranks is the
// TP size; --dp (default 1) the data-parallel size: dp × ranks ranks run, and each collective
// spans the ranks of the process group it names (src/runtime/rankMesh.ts).

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GraphImportError } from '../graph/errors.ts';
import { importGraph } from '../graph/formats.ts';
import { generateSample, SAMPLE_MODELS, type SampleModel } from '../graph/samples/index.ts';
import { PASSES } from '../graph/passes/pipeline.ts';
import type { Graph } from '../graph/ir.ts';
import {
  compareRewrite,
  planGraph,
  registerBackend,
  runGraph,
  RunError,
  type RunErrorKind,
  type RunOptions,
  type Trace,
  type HostTensor,
  type Plan,
  type RunResult,
  type CompareReport,
  type Verdict,
} from '../runtime/index.ts';
import { fedSourcesOfOutputs } from '../runtime/fedSources.ts';
import { readNpy, readSafetensors, tensorFileName, writeNpy, TensorFileError } from '../runtime/tensorio.ts';
import { hostValues } from '../runtime/hostTensor.ts';
import {
  SWITCH,
  UsageError,
  integerAtLeast,
  nameList,
  nonEmpty,
  oneOf,
  parseFlags,
  type FlagSpec,
} from './flags.ts';

/**
 * The exit code of a run that failed. 2: the graph, the sizes or the flags cannot be run as given
 * (what the user must change). 1 is otherwise a --compare that differs; a device lost mid-run is
 * the one failure of the machine rather than the input, so it shares it.
 */
export const RUN_ERROR_EXIT: Record<RunErrorKind, 1 | 2> = {
  'unsupported-ops': 2,
  limits: 2,
  validation: 2,
  input: 2,
  'device-lost': 1,
};

/** Where the CLI looks for the agent when --agent is not given (the port `npm run agent -- --port 8765` takes). */
const DEFAULT_AGENT = 'ws://127.0.0.1:8765';
const TOKEN_ENV = 'FUSIONLAB_AGENT_TOKEN';

interface RunArgs {
  source: string;
  backend: RunOptions['backend'];
  ranks: number;
  dp: number;
  preset: RunOptions['preset'];
  dtype: RunOptions['dtype'];
  allreduce: RunOptions['allreduce'];
  workers: boolean;
  tokens?: number;
  seed?: number;
  layers: number;
  inputs?: string;
  dumpOutputs?: string;
  compare?: string[];
  report: boolean;
  agent?: string;
  token?: string;
  /** The flags given on the command line (defaults excluded), to refuse the ones the run would not use. */
  given: Set<string>;
}

const RUN_FLAGS = {
  '--backend': oneOf(['webgpu', 'cpu', 'agent'] as const),
  '--ranks': integerAtLeast(1),
  '--dp': integerAtLeast(1),
  '--preset': oneOf(['tiny', 'layer'] as const),
  '--dtype': oneOf(['bf16', 'f32', 'f16'] as const),
  '--allreduce': oneOf(['ring', 'one-shot', 'two-shot'] as const),
  '--workers': SWITCH,
  '--tokens': integerAtLeast(1),
  '--seed': integerAtLeast(0),
  '--layers': integerAtLeast(1),
  '--inputs': nonEmpty('--inputs takes a directory'),
  '--dump-outputs': nonEmpty('--dump-outputs takes a directory'),
  '--compare': nameList(
    '--compare takes a comma-separated list of passes',
    PASSES,
    (p) => `unknown pass '${p}' in --compare (known: ${Object.keys(PASSES).join(', ')})`,
  ),
  '--report': SWITCH,
  '--agent': (v: string | undefined) => {
    if (!v || !/^ws:\/\/(127\.0\.0\.1|localhost):\d{1,5}\/?$/.test(v))
      throw new UsageError(
        `--agent takes ws://127.0.0.1:PORT (the agent listens on loopback only), got ${v === undefined ? 'nothing' : `'${v}'`}`,
      );
    return v.replace(/\/$/, '');
  },
  '--token': nonEmpty('--token takes the token `npm run agent` printed'),
} satisfies FlagSpec;

export function parseRunArgs(argv: string[]): RunArgs {
  let source: string | undefined;
  const { values: f, given } = parseFlags(argv, RUN_FLAGS, (arg) => {
    if (source !== undefined) throw new UsageError(`one graph only (got '${source}' and '${arg}')`);
    source = arg;
  });
  if (source === undefined) throw new UsageError('missing graph: a file, or sample:NAME');
  const args: RunArgs = {
    source,
    backend: f['--backend'] ?? 'webgpu',
    ranks: f['--ranks'] ?? 1,
    dp: f['--dp'] ?? 1,
    preset: f['--preset'] ?? 'tiny',
    dtype: f['--dtype'] ?? 'bf16',
    allreduce: f['--allreduce'] ?? 'one-shot',
    workers: f['--workers'] ?? false,
    tokens: f['--tokens'],
    seed: f['--seed'],
    layers: f['--layers'] ?? 1,
    inputs: f['--inputs'],
    dumpOutputs: f['--dump-outputs'],
    compare: f['--compare'],
    report: f['--report'] ?? false,
    agent: f['--agent'],
    token: f['--token'],
    given,
  };
  refuseUnused(args);
  return args;
}

/** Flags the chosen run would not use are refused, never ignored. */
function refuseUnused(a: RunArgs): void {
  const only = (flag: string, ok: boolean, why: string) => {
    if (a.given.has(flag) && !ok) throw new UsageError(`${flag} ${why}`);
  };
  only('--agent', a.backend === 'agent', `is for --backend agent (the backend is ${a.backend})`);
  only('--token', a.backend === 'agent', `is for --backend agent (the backend is ${a.backend})`);
  only('--workers', a.backend === 'webgpu', `runs WebGPU ranks in workers; --backend ${a.backend} has none`);
  only(
    '--allreduce',
    a.backend === 'webgpu',
    a.backend === 'cpu'
      ? 'has no effect on --backend cpu (the reference sums in rank order whatever the algorithm)'
      : 'has no effect on --backend agent (the native worker uses NCCL or its one-shot kernel)',
  );
  only(
    '--layers',
    a.source.startsWith('sample:'),
    'sets the layers of a generated sample (sample:NAME), not of a file',
  );
}

function loadGraph(args: RunArgs): Graph {
  if (args.source.startsWith('sample:')) {
    const model = args.source.slice('sample:'.length) as SampleModel;
    if (!SAMPLE_MODELS.includes(model))
      throw new UsageError(`unknown sample '${model}' (choose ${SAMPLE_MODELS.join(', ')})`);
    // The sample is rank 0's graph at the run's tensor-parallel degree.
    let text: string;
    try {
      text = generateSample(model, { layers: args.layers, tp: args.ranks });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    return importGraph(text, { fileName: args.source }).graph;
  }
  let text: string;
  try {
    text = readFileSync(args.source, 'utf8');
  } catch (e) {
    throw new UsageError(
      `cannot read ${args.source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  const imported = importGraph(text, { fileName: args.source });
  for (const w of imported.warnings)
    process.stderr.write(`${args.source}:${w.line}: warning: ${w.message}\n`);
  return imported.graph;
}

/** Every NAME.npy in the directory, and every tensor of every .safetensors file. */
export function loadInputs(dir: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new UsageError(`cannot read --inputs ${dir}: ${(e as NodeJS.ErrnoException).code}`);
  }
  for (const f of names.sort()) {
    const path = join(dir, f);
    if (f.endsWith('.npy')) out.set(f.slice(0, -4), readNpy(readFileSync(path), path));
    else if (f.endsWith('.safetensors'))
      for (const [k, v] of readSafetensors(readFileSync(path), path)) out.set(k, v);
  }
  if (out.size === 0) throw new UsageError(`--inputs ${dir} holds no .npy or .safetensors files`);
  return out;
}

function traceReport(t: Trace) {
  const perRank = Array.from({ length: t.ranks }, (_, r) => {
    const nodes = new Map<
      string,
      {
        node: string;
        op: string;
        kernel_us: number;
        transfer_us: number;
        bytesRead: number;
        bytesWritten: number;
        fed: boolean;
      }
    >();
    for (const e of t.events.filter((e) => e.rank === r)) {
      const n = nodes.get(e.node) ?? {
        node: e.node,
        op: e.op,
        kernel_us: 0,
        transfer_us: 0,
        bytesRead: 0,
        bytesWritten: 0,
        fed: false,
      };
      if (e.kind === 'transfer') n.transfer_us += e.dur_us;
      else n.kernel_us += e.dur_us;
      if (e.kind === 'fed') n.fed = true;
      n.bytesRead += e.bytesRead;
      n.bytesWritten += e.bytesWritten;
      nodes.set(e.node, n);
    }
    return { rank: r, nodes: [...nodes.values()] };
  });
  const timing = [...new Set(t.events.filter((e) => e.kind === 'kernel').map((e) => e.timing))];
  return { backend: t.backend, device: t.device, timing, fed: t.fed, notes: t.notes, ranks: perRank };
}

const VERDICT_LINE: Record<Verdict, (r: CompareReport) => string> = {
  proven: () => 'proven: every output gated and computed on every path',
  'unknown-group': (r) =>
    `not proven: the run cannot tell which ranks a collective's group spans (${r.unknownGroups.map((u) => `${u.node}: ${u.why}`).join('; ')}); it ran over every rank`,
  'depends-on-fed': (r) =>
    `not proven: outputs depend on ${r.fedOnComparedPaths.join(', ')}, fed with random values (no kernel); equal there shows only that the data flow around them was kept`,
  'not-gated': () => 'not proven: some outputs were only reported (several fused sites, no exact check)',
  failed: () => 'failed',
};

function outputsReport(r: RunResult, fed?: Map<string, string[]>) {
  return r.outputs.map((m, rank) => ({
    rank,
    outputs: [...m].map(([name, t]) => {
      const v = hostValues(t);
      let maxAbs = 0,
        sumSq = 0;
      for (const x of v) {
        maxAbs = Math.max(maxAbs, Math.abs(x));
        sumSq += x * x;
      }
      return {
        name,
        dtype: t.dtype,
        shape: t.shape,
        maxAbs,
        rms: Math.sqrt(sumSq / Math.max(1, v.length)),
        fedFrom: fed?.get(name) ?? [],
      };
    }),
  }));
}

function dump(dir: string, outputs: RunResult['outputs']): void {
  outputs.forEach((m, rank) => {
    const d = join(dir, `rank${rank}`);
    mkdirSync(d, { recursive: true });
    for (const [name, t] of m) writeFileSync(join(d, `${tensorFileName(name)}.npy`), writeNpy(t));
  });
}

/** The run's settings as the user chose or defaulted them: what RunOptions and the report share. */
function runSettings(args: RunArgs) {
  return {
    backend: args.backend,
    ranks: args.ranks,
    dp: args.dp,
    preset: args.preset,
    dtype: args.dtype,
    allreduce: args.allreduce,
    workers: args.workers,
  };
}

/** What the run is, as the report's head states it. */
function reportHead(args: RunArgs) {
  return { graph: args.source, ...runSettings(args), tokens: args.tokens ?? null, seed: args.seed ?? null };
}
type ReportHead = ReturnType<typeof reportHead>;

/** Before and after the passes on the same inputs; exit 1 when an output differs. */
async function compareAndReport(graph: Graph, args: RunArgs, opts: RunOptions, head: ReportHead) {
  const rep: CompareReport = await compareRewrite(graph, args.compare!, opts);
  if (args.dumpOutputs) {
    dump(join(args.dumpOutputs, 'before'), rep.beforeOutputs);
    dump(join(args.dumpOutputs, 'after'), rep.afterOutputs);
  }
  if (args.report) {
    process.stdout.write(
      JSON.stringify({
        ...head,
        compare: {
          passes: rep.passes,
          ok: rep.ok,
          verdict: rep.verdict,
          unknownGroups: rep.unknownGroups,
          fedOnComparedPaths: rep.fedOnComparedPaths,
          outputs: rep.outputs,
          fusedSites: rep.fusedSites,
          exact: rep.exact ?? null,
        },
        before: traceReport(rep.before),
        after: traceReport(rep.after),
      }) + '\n',
    );
  } else process.stdout.write(compareLines(rep));
  return rep.ok ? 0 : 1;
}

function compareLines(rep: CompareReport): string {
  const lines = rep.outputs.map((o) => {
    const fed = o.fedFrom.length
      ? `; depends on fed ${o.fedFrom.length > 1 ? 'nodes' : 'node'} ${o.fedFrom.join(', ')} (random values, no kernel): not proven`
      : '';
    return `${o.pass ? 'ok  ' : 'FAIL'} ${o.name}: max abs ${o.maxAbs}, max rel ${o.maxRel.toExponential(2)}, ${o.bitwiseEqual ? 'bitwise equal' : `${o.ulps} ulps`}; ${o.tolerance}${fed}`;
  });
  if (rep.exact) {
    lines.push(`${rep.exact.skipped ? 'skip' : rep.exact.pass ? 'ok  ' : 'FAIL'} ${rep.exact.note}`);
    for (const o of rep.exact.outputs ?? [])
      if (!o.pass) lines.push(`FAIL ${o.name} (exact): max abs ${o.maxAbs}, ${o.ulps} ulps`);
  }
  lines.push(`verdict: ${VERDICT_LINE[rep.verdict](rep)}`);
  return lines.map((l) => `${l}\n`).join('');
}

/** One run of the graph: its outputs per rank (and, with --report, the trace). */
async function runAndReport(graph: Graph, plan: Plan, args: RunArgs, opts: RunOptions, head: ReportHead) {
  const res = await runGraph(graph, opts);
  if (args.dumpOutputs) dump(args.dumpOutputs, res.outputs);
  const fed = fedSourcesOfOutputs(plan);
  if (args.report) {
    process.stdout.write(
      JSON.stringify({ ...head, outputs: outputsReport(res, fed), trace: traceReport(res.trace) }) + '\n',
    );
    return 0;
  }
  process.stdout.write(`${res.trace.backend} on ${res.trace.device}, ${res.trace.ranks} rank(s)\n`);
  for (const r of outputsReport(res, fed)) {
    for (const o of r.outputs) {
      const from = o.fedFrom.length ? ` (depends on fed ${o.fedFrom.join(', ')})` : '';
      process.stdout.write(
        `rank ${r.rank} ${o.name}: ${o.dtype}[${o.shape}] max |x| ${o.maxAbs.toPrecision(4)}, rms ${o.rms.toPrecision(4)}${from}\n`,
      );
    }
  }
  return 0;
}

/** The exit code of an expected failure, after its one line on stderr; anything else is rethrown. */
function failure(e: unknown): number {
  const line = (m: string) => {
    process.stderr.write(`fusionlab run: ${m.split('\n')[0]}\n`);
  };
  if (e instanceof GraphImportError) {
    process.stderr.write(`${e.source ?? ''}:${e.line}:${e.col}: ${e.detail}\n`);
    return 2;
  }
  if (e instanceof UsageError || e instanceof TensorFileError) {
    line(e.message);
    return 2;
  }
  if (e instanceof RunError) {
    line(e.message);
    return RUN_ERROR_EXIT[e.kind];
  }
  throw e;
}

export async function command(argv: string[]): Promise<number> {
  let gpu: GPU | undefined;
  let agentClient: { close(): void } | undefined;
  try {
    const args = parseRunArgs(argv);
    const graph = loadGraph(args);
    const inputs = args.inputs ? loadInputs(args.inputs) : undefined;
    // Plan first: ops with no kernel, fed nodes and bad sizes are reported before any device work.
    const plan = planGraph(graph, {
      preset: args.preset,
      dtype: args.dtype,
      ranks: args.ranks,
      dp: args.dp,
      tokens: args.tokens,
      backend: args.backend,
    });
    if (plan.fed.length && !args.report)
      process.stderr.write(`fed from seeded inputs (no kernel): ${plan.fed.join(', ')}\n`);
    if (args.backend === 'webgpu') gpu = await (await import('../runtime/nodeGpu.ts')).nodeGpu();
    if (args.backend === 'agent') agentClient = await connectAgent(args);
    const opts: RunOptions = { ...runSettings(args), tokens: args.tokens, seed: args.seed, inputs, gpu };
    const head = reportHead(args);
    return args.compare
      ? await compareAndReport(graph, args, opts, head)
      : await runAndReport(graph, plan, args, opts, head);
  } catch (e) {
    return failure(e);
  } finally {
    if (gpu) (await import('../runtime/webgpu/rankDevice.ts')).closeRanks(gpu);
    agentClient?.close();
  }
}

/** Connects to the agent and registers it as the `agent` backend; a RunError that says what to do when it cannot. */
async function connectAgent(args: RunArgs): Promise<{ close(): void }> {
  const token = args.token ?? process.env[TOKEN_ENV];
  if (!token)
    throw new UsageError(
      `--backend agent needs the agent's token: --token T or ${TOKEN_ENV} (npm run agent prints it)`,
    );
  const url = args.agent ?? DEFAULT_AGENT;
  const { AgentClient, agentBackend } = await import('../runtime/agentClient.ts');
  // The agent admits the app's origins; this client presents the dev server's.
  const client = await AgentClient.connect(
    { url, token },
    { origin: 'http://127.0.0.1:5173', timeoutMs: 10_000 },
  ).catch((e: unknown) => {
    // Nothing ran: like bad input, exit 2 with the one line.
    throw e instanceof RunError ? new RunError('input', e.message) : e;
  });
  registerBackend('agent', async () => agentBackend(client));
  return client;
}
