// `fusionlab kernels output_code.py [--trace trace.json[.gz]] [--provenance mapping.json] [--graph post_grad.py]`
// Inductor's kernels in launch order: kind, the nodes each covers and which file said so, and
// with a trace each one's measured time. In a TORCH_COMPILE_DEBUG folder the provenance mapping
// and the post-grad graph (fx_graph_transformed.py) beside the output code are read unasked.

import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { importGraph } from '../graph/formats.ts';
import type { Graph } from '../graph/ir.ts';
import {
  kernelCounts,
  kernelGroups,
  MAPPING_SOURCE_LABEL,
  OutputCodeError,
  parseOutputCode,
  parseProvenance,
  type KernelGroup,
} from '../graph/artifacts/outputCode.ts';
import {
  isGzip,
  matchTrace,
  TraceError,
  TraceReader,
  type ProfilerTrace,
  type TraceMatch,
} from '../graph/artifacts/profilerTrace.ts';
import { nonEmpty, parseFlags, UsageError } from './flags.ts';

const USAGE =
  'usage: fusionlab kernels output_code.py [--trace trace.json[.gz]] [--provenance mapping.json] [--graph post_grad.py]';

/** Streams a trace file through the reader, gunzipping it when it is gzipped. */
export async function readTraceFile(path: string): Promise<ProfilerTrace> {
  const head = Buffer.alloc(2);
  const fd = await open(path);
  await fd.read(head, 0, 2, 0);
  await fd.close();
  const raw = createReadStream(path);
  const stream = isGzip(head) ? raw.pipe(createGunzip()) : raw;
  stream.setEncoding('utf8');
  const reader = new TraceReader();
  try {
    for await (const chunk of stream) reader.push(chunk as string);
  } catch (e) {
    if (e instanceof TraceError) throw e;
    // zlib: a gzip stream cut short or corrupted.
    const { byte, line } = reader.read;
    throw new TraceError(`the gzip stream breaks off here (${(e as Error).message})`, byte, line);
  }
  return reader.end();
}

export function formatKernels(groups: readonly KernelGroup[], match: TraceMatch | null): string {
  const c = kernelCounts({ kernels: [], launches: groups.map((g) => g.launch) });
  const kinds = Object.entries(c.byKind)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  const out = [`${c.kernels} kernels, ${c.launches} launches (${kinds})`];
  const sources = new Set(groups.map((g) => g.source));
  for (const s of sources) out.push(`nodes from: ${MAPPING_SOURCE_LABEL[s]}`);
  for (const g of groups) {
    const t = match?.byLaunch.get(g.launch.index);
    const time = match ? (t ? `${t.us.toFixed(1)} µs (median of ${t.occurrences})` : 'not in trace') : '';
    out.push(
      `#${g.launch.index} ${g.launch.kernel} [${g.launch.kind}]${time ? ` ${time}` : ''}`,
      `    nodes (${g.source}): ${g.nodes.length ? g.nodes.join(', ') : '—'}`,
    );
  }
  for (const n of match?.notes ?? []) out.push(`note: ${n}`);
  return out.join('\n') + '\n';
}

function graphBeside(code: string, given: string | undefined): Graph | null {
  const path = given ?? join(dirname(code), 'fx_graph_transformed.py');
  if (!existsSync(path)) {
    if (given) throw new UsageError(`no such file: ${given}`);
    return null;
  }
  const r = importGraph(readFileSync(path, 'utf8'));
  return 'graph' in r ? r.graph : null;
}

export async function command(argv: string[]): Promise<number> {
  let file: string | undefined;
  try {
    const { values } = parseFlags(
      argv,
      {
        '--trace': nonEmpty('a trace file'),
        '--provenance': nonEmpty('a provenance mapping file'),
        '--graph': nonEmpty('a post-grad graph file'),
      },
      (a) => {
        if (file) throw new UsageError(`one output code file, got '${file}' and '${a}'`);
        file = a;
      },
    );
    if (!file) throw new UsageError('no output code file');
    if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
    const code = parseOutputCode(readFileSync(file, 'utf8'));
    const provPath =
      values['--provenance'] ?? join(dirname(file), 'inductor_provenance_tracking_node_mappings.json');
    const prov = existsSync(provPath) ? parseProvenance(readFileSync(provPath, 'utf8')) : undefined;
    const graph = graphBeside(file, values['--graph']);
    const groups = kernelGroups(code, graph ? graph.nodes.map((n) => n.name) : null, prov);
    let match: TraceMatch | null = null;
    if (values['--trace']) match = matchTrace(await readTraceFile(values['--trace']), groups);
    process.stdout.write(formatKernels(groups, match));
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`fusionlab kernels: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    if (e instanceof OutputCodeError || e instanceof TraceError) {
      process.stderr.write(`fusionlab kernels: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
