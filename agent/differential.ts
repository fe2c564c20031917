// The differential check (src/runtime/differential.ts) with the agent among the backends: starts
// an agent on a worker binary (the CPU build here, the CUDA build on a GPU host), connects to it
// like the app does, and runs the same seeded graphs on the CPU reference, WebGPU and the agent.
//
//   node --import tsx agent/differential.ts [--seed N] [--graphs N] [--max-ranks R] [--backends agent,webgpu] [--cpu]
// Prints the seed, the kernel counts and one line per backend; exits 1 when an output is outside
// the contract the op table declares for it (its map function's rounding, else its kernel's). On a GPU host without npm, bench/device/differential.sh runs a bundle of it.

import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { buildWorker } from './build.mjs';
import { startAgent, type RunningAgent } from './server.ts';
import { AgentClient, agentBackend } from '../src/runtime/agentClient.ts';
import { cpuBackend } from '../src/runtime/cpuBackend.ts';
import {
  differentialCases,
  runDifferentialCase,
  summarize,
  type BackendUnderTest,
  type DifferentialResult,
} from '../src/runtime/differential.ts';

export interface AgentUnderTest {
  agent: RunningAgent;
  client: AgentClient;
  backend: BackendUnderTest;
  mode: string;
}

/** An agent on `workerPath`, connected; `close()` it after. */
export async function agentUnderTest(
  workerPath: string,
  name = 'agent',
): Promise<AgentUnderTest & { close(): Promise<void> }> {
  const agent = await startAgent({ workerPath, log: () => {}, limits: { messagesPerSecond: 1000 } });
  const client = await AgentClient.connect(
    { url: `ws://127.0.0.1:${agent.port}`, token: agent.token },
    { origin: 'http://127.0.0.1:5173', webSocket: WebSocket },
  );
  const dev = await agent.device();
  return {
    agent,
    client,
    mode: dev.mode === 'cuda' ? `cuda: ${dev.gpus.map((g) => g.name).join(', ')}` : 'cpu',
    backend: { name, backend: agentBackend(client) },
    close: async () => {
      client.close();
      await agent.close();
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const opt = (name: string, fallback: string) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
  };
  const known = new Set(['--seed', '--graphs', '--max-ranks', '--backends', '--cpu']);
  for (let i = 0; i < args.length; i++) {
    if (!known.has(args[i])) {
      process.stderr.write(`differential: unknown option '${args[i]}' (have: ${[...known].join(', ')})\n`);
      process.exit(2);
    }
    if (args[i] !== '--cpu') i++;
  }
  const seed = Number(opt('--seed', String(Date.now() % 1_000_000)));
  const graphs = Number(opt('--graphs', '8'));
  // The CUDA worker runs one rank per GPU.
  const maxRanks = Number(opt('--max-ranks', '4'));
  const wanted = opt('--backends', 'agent,webgpu').split(',');
  if (
    !Number.isInteger(seed) ||
    !Number.isInteger(graphs) ||
    graphs < 1 ||
    !Number.isInteger(maxRanks) ||
    maxRanks < 1 ||
    maxRanks > 8
  ) {
    process.stderr.write('differential: --seed, --graphs (≥ 1) and --max-ranks (1..8) take integers\n');
    process.exit(2);
  }
  for (const w of wanted)
    if (w !== 'agent' && w !== 'webgpu') {
      process.stderr.write(`differential: backend '${w}' is not one of agent, webgpu\n`);
      process.exit(2);
    }

  const backends: BackendUnderTest[] = [];
  let agentHandle: Awaited<ReturnType<typeof agentUnderTest>> | null = null;
  if (wanted.includes('agent')) {
    const worker = buildWorker({ forceCpu: args.includes('--cpu') });
    agentHandle = await agentUnderTest(worker.path, `agent (${worker.mode})`);
    process.stdout.write(`agent worker: ${agentHandle.mode}\n`);
    backends.push(agentHandle.backend);
  }
  if (wanted.includes('webgpu')) {
    const { webgpuBackend } = await import('../src/runtime/webgpuBackend.ts');
    const { nodeGpu } = await import('../src/runtime/nodeGpu.ts');
    const gpu = await nodeGpu();
    backends.push({ name: 'webgpu', backend: webgpuBackend, options: { gpu } });
  }
  process.stdout.write(
    `differential: seed ${seed}, ${graphs} graphs, 1–${maxRanks} ranks (rerun with --seed ${seed})\n`,
  );
  const results: DifferentialResult[] = [];
  try {
    for (const c of differentialCases(seed, graphs, maxRanks))
      results.push(await runDifferentialCase(c, cpuBackend, backends));
  } finally {
    await agentHandle?.close();
  }
  const { lines, failures } = summarize(results);
  process.stdout.write(`${lines.join('\n')}\n`);
  for (const f of failures.slice(0, 20)) process.stdout.write(`  FAIL ${f}\n`);
  process.exit(failures.length ? 1 : 0);
}
