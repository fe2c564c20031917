// `fusionlab bench passes [--layers L] [--runs N] [--tokens T]`: import + the default pipeline on a
// generated GPT-OSS-120B graph of ~10,000 nodes. Medians of repeated runs, printed per node and as a
// ratio to ceilings measured on the same graph in the same run: structuredClone (the least any pass
// that copies the graph could cost) and a JSON round trip (what handing the graph to a worker costs).
// Then what each fusion buys on that graph, from the cost model (graph/cost/passSavings.ts): per
// pass, its sites and the kernel launches, HBM bytes and link bytes it saves at T tokens.

import { parseFx } from '../src/graph/fx/parse.ts';
import { formatSavedBytes, passSavings } from '../src/graph/cost/passSavings.ts';
import { PROFILES } from '../src/graph/cost/profiles.ts';
import {
  DEFAULT_PIPELINE,
  PASS_DESCRIPTIONS,
  runPipeline,
  type PassName,
} from '../src/graph/passes/pipeline.ts';
import { generateSample } from '../src/graph/samples/index.ts';
import { median, positiveIntFlag } from './args.ts';

/** The budget the pipeline should stay well under at this size. */
const PIPELINE_BUDGET_MS = 100;

function time(runs: number, f: () => unknown): number {
  f(); // warm the JIT
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    f();
    t.push(performance.now() - t0);
  }
  return median(t);
}

export async function bench(argv: string[]): Promise<number> {
  let layers: number, runs: number, tokens: number;
  try {
    layers = positiveIntFlag(argv, '--layers', 300);
    runs = positiveIntFlag(argv, '--runs', 15);
    tokens = positiveIntFlag(argv, '--tokens', 4096);
  } catch (e) {
    process.stderr.write(`fusionlab bench passes: ${(e as Error).message}\n`);
    return 2;
  }
  const text = generateSample('gpt-oss-120b', { layers, tp: 4 });
  const graph = parseFx(text).graph;
  const n = graph.nodes.length;

  const importMs = time(runs, () => parseFx(text));
  let matches = 0;
  const pipelineMs = time(runs, () => {
    const r = runPipeline(graph, DEFAULT_PIPELINE);
    matches = r.stages.reduce((s, st) => s + st.matches.length, 0);
  });
  const cloneMs = time(runs, () => structuredClone(graph));
  const jsonMs = time(runs, () => JSON.parse(JSON.stringify(graph)));

  const us = (ms: number) => ((ms * 1000) / n).toFixed(2);
  const row = (label: string, ms: number) =>
    `  ${label.padEnd(30)} ${ms.toFixed(2).padStart(8)} ms  ${us(ms).padStart(6)} µs/node  ${(ms / cloneMs).toFixed(2).padStart(6)}× clone  ${(ms / jsonMs).toFixed(2).padStart(6)}× JSON`;
  const lines = [
    `bench passes: gpt-oss-120b, ${layers} layers, tp 4 — ${n} nodes, ${(text.length / 1e6).toFixed(2)} MB of FX text; median of ${runs} runs (Node ${process.version})`,
    row('ceiling: structuredClone', cloneMs),
    row('ceiling: JSON round trip', jsonMs),
    row('import (parseFx)', importMs),
    row(`pipeline (${DEFAULT_PIPELINE.join(', ')})`, pipelineMs),
    row('import + pipeline', importMs + pipelineMs),
    `  pipeline matches: ${matches}; budget ${PIPELINE_BUDGET_MS} ms: ${pipelineMs < PIPELINE_BUDGET_MS ? `within (${((pipelineMs / PIPELINE_BUDGET_MS) * 100).toFixed(0)} %)` : 'OVER'}`,
  ];
  process.stdout.write([...lines, ...savingsLines(graph, tokens)].join('\n') + '\n');
  return 0;
}

const TP = 4;

/** Per pass, what it saves on the graph in the cost model's terms (H100 profile, TP 4, ring). */
function savingsLines(graph: ReturnType<typeof parseFx>['graph'], tokens: number): string[] {
  const profile = PROFILES['H100-NVLink']!;
  const passes = Object.keys(PASS_DESCRIPTIONS) as PassName[];
  const rows = passSavings(graph, passes, { worldSize: TP }, profile, { tp: TP, tokens });
  return [
    `what each fusion buys (cost model, ${profile.name}, TP ${TP}, ${tokens} tokens; each pass alone on the graph):`,
    `  ${'pass'.padEnd(22)} ${'sites'.padStart(6)} ${'launches'.padStart(9)} ${'HBM bytes'.padStart(12)} ${'link bytes/rank'.padStart(16)} ${'time'.padStart(10)}`,
    ...rows.map(
      (r) =>
        `  ${r.pass.padEnd(22)} ${String(r.sites).padStart(6)} ${String(r.launches).padStart(9)} ${formatSavedBytes(r.hbmBytes).padStart(12)} ${formatSavedBytes(r.linkBytesPerRank).padStart(16)} ${`${r.us.toFixed(1)} µs`.padStart(10)}`,
    ),
  ];
}
