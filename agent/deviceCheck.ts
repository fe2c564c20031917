// On a GPU host: the agent with the CUDA worker runs the PR #28841 fragments (before and after
// the rewrite) on 1 and 2 GPUs, bf16 and f32, the tiny and the real layer sizes, and every
// output is compared with the runtime's CPU reference; then a crash at a node and the run after
// it. Bundled into dist-agent/ (esbuild) so it needs no node_modules there.
// Usage: node dist-agent/deviceCheck.mjs FRAGMENT_DIR [--json FILE]

import { readFileSync, writeFileSync } from 'node:fs';
import WebSocket from 'ws';
import { parseFx } from '../src/graph/fx/parse.ts';
import { generateSample } from '../src/graph/samples/index.ts';
import { rewriteForCompare } from '../src/runtime/rewriteForCompare.ts';
import { runGraph } from '../src/runtime/index.ts';
import { compareTensor } from '../src/runtime/compareOutputs.ts';
import { AgentClient } from '../src/runtime/agentClient.ts';
import { buildWorker } from './build.mjs';
import { startAgent } from './server.ts';

const dir = process.argv[2];
const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : null;
const sample = parseFx(generateSample('gpt-oss-20b', { layers: 2, tp: 2 })).graph;
const graphs = {
  before: parseFx(readFileSync(`${dir}/pr28841-before.fragment.txt`, 'utf8')).graph,
  after: parseFx(readFileSync(`${dir}/pr28841-after.fragment.txt`, 'utf8')).graph,
  'gpt-oss-20b-2l': sample,
  'gpt-oss-20b-2l-rewritten': rewriteForCompare(sample, ['slice-hoist', 'allreduce-rmsnorm'], 2),
  // Sequence parallelism + async TP: NCCL reduce-scatter / all-gather and the fused matmuls' halves.
  'gpt-oss-20b-2l-sp': rewriteForCompare(
    sample,
    ['noop-elimination', 'slice-hoist', 'sequence-parallelism', 'async-tp'],
    2,
  ),
};
type GraphName = keyof typeof graphs;
const worker = buildWorker();
const agent = await startAgent({
  workerPath: worker.path,
  debug: true,
  workerEnv: { FUSIONLAB_WORKER_DEBUG: '1' },
});
const client = await AgentClient.connect(
  { url: `ws://127.0.0.1:${agent.port}`, token: agent.token },
  { webSocket: WebSocket },
);
const results: object[] = [];
const report = (r: object) => {
  results.push(r);
  process.stdout.write(`${JSON.stringify(r)}\n`);
};
report({ check: 'hello', device: client.hello.device });
const gpus = client.hello.device.gpus.length;

const only = process.argv.includes('--samples-only');
const cases: {
  graph: GraphName;
  ranks: number;
  dtype: 'bf16' | 'f32';
  preset: 'tiny' | 'layer';
  tokens?: number;
  forceFallback?: boolean;
}[] = [];
for (const ranks of [1, 2, 4, 8].filter((r) => r <= Math.max(1, gpus)))
  for (const dtype of ['bf16', 'f32'] as const)
    for (const graph of ['before', 'after'] as const)
      if (!only) cases.push({ graph, ranks, dtype, preset: 'tiny' });
if (gpus >= 2)
  for (const dtype of ['bf16', 'f32'] as const)
    for (const graph of ['gpt-oss-20b-2l', 'gpt-oss-20b-2l-rewritten'] as const)
      cases.push({ graph, ranks: 2, dtype, preset: 'tiny' });
// SP splits the tokens over the ranks: a token count both ranks share evenly.
if (gpus >= 2)
  for (const dtype of ['bf16', 'f32'] as const)
    for (const graph of ['gpt-oss-20b-2l', 'gpt-oss-20b-2l-sp'] as const)
      cases.push({ graph, ranks: 2, dtype, preset: 'tiny', tokens: 8 });
if (gpus >= 2 && !only) {
  cases.push({ graph: 'after', ranks: 2, dtype: 'bf16', preset: 'tiny', forceFallback: true });
  for (const graph of ['before', 'after'] as const)
    cases.push({ graph, ranks: 2, dtype: 'bf16', preset: 'layer', tokens: 8 });
  cases.push({ graph: 'after', ranks: 2, dtype: 'bf16', preset: 'layer', tokens: 8, forceFallback: true });
}
for (const c of cases) {
  const g = graphs[c.graph];
  try {
    const ref = await runGraph(g, {
      backend: 'cpu',
      ranks: c.ranks,
      preset: c.preset,
      dtype: c.dtype,
      tokens: c.tokens,
      allreduce: 'ring',
      workers: false,
      planFor: 'agent',
    });
    const got = await client.runGraph(g, {
      preset: c.preset,
      dtype: c.dtype,
      ranks: c.ranks,
      tokens: c.tokens,
      forceFallback: c.forceFallback,
    });
    const outputs = [];
    for (let r = 0; r < c.ranks; r++)
      for (const [name, t] of ref.outputs[r]) {
        const k = compareTensor(name, t, got.outputs[r].get(name)!, 0, '');
        outputs.push({
          rank: r,
          name,
          ulps: k.ulps,
          maxAbs: k.maxAbs,
          maxRel: k.maxRel,
          bitwise: k.bitwiseEqual,
        });
      }
    const kernels = got.trace.events.filter((e) => e.kind !== 'fed');
    report({
      check: 'run',
      ...c,
      device: got.trace.device,
      notes: got.trace.notes,
      timing: got.trace.events[0]?.timing,
      kernelUs: kernels.reduce((a, e) => a + e.dur_us, 0) / c.ranks,
      outputs,
    });
  } catch (e) {
    report({ check: 'run', ...c, error: (e as Error).message });
  }
}
// A crash at a node on the GPU worker, then a normal run.
try {
  const ws = (client as unknown as { ws: { send(s: string): void } }).ws;
  ws.send(JSON.stringify({ type: 'debug', abortAt: 'auto_functionalized_1' }));
  await client
    .runGraph(graphs.after, { preset: 'tiny', dtype: 'bf16', ranks: Math.min(2, Math.max(1, gpus)) })
    .then(
      () => report({ check: 'crash', error: 'no error came back' }),
      (e) => report({ check: 'crash', message: (e as Error).message }),
    );
  const ref = await runGraph(graphs.after, {
    backend: 'cpu',
    ranks: 1,
    preset: 'tiny',
    dtype: 'bf16',
    allreduce: 'ring',
    workers: false,
    planFor: 'agent',
  });
  const got = await client.runGraph(graphs.after, { preset: 'tiny', dtype: 'bf16', ranks: 1 });
  const k = compareTensor('x', [...ref.outputs[0].values()][0], [...got.outputs[0].values()][0], 0, '');
  report({ check: 'after-crash', ulps: k.ulps });
} catch (e) {
  report({ check: 'crash', error: (e as Error).message });
}
client.close();
await agent.close();
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(results, null, 1));
