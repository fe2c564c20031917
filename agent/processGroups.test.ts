// The agent's native worker (CPU build) runs each collective over the process group it names, as
// the CPU reference does: a rewrite that fuses a dp all-reduce as TP's fails its comparison on
// the agent too, and the worker refuses groups that do not split its ranks evenly.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareGraphs, registerBackend, runGraph, type RunOptions } from '../src/runtime/index.ts';
import { AgentClient, agentBackend } from '../src/runtime/agentClient.ts';
import { mutantRewrite, rightRewrite } from '../src/runtime/groupRewriteCases.ts';
import { buildWorker } from './build.mjs';
import { startAgent, type RunningAgent } from './server.ts';
import { WorkerProcess } from './workerProcess.ts';

let agent: RunningAgent;
let client: AgentClient;
const path = buildWorker({ forceCpu: true, log: () => {} }).path;

beforeAll(async () => {
  agent = await startAgent({ workerPath: path, limits: { messagesPerSecond: 100 }, log: () => {} });
  client = await AgentClient.connect(
    { url: `ws://127.0.0.1:${agent.port}`, token: agent.token },
    { origin: 'http://127.0.0.1:5173' },
  );
  registerBackend('agent', async () => agentBackend(client));
}, 120_000);

afterAll(async () => {
  client?.close();
  await agent?.close();
});

const opts = (backend: 'agent' | 'cpu', dp: number): RunOptions => ({
  backend,
  planFor: 'agent',
  ranks: 2,
  dp,
  preset: 'tiny',
  dtype: 'bf16',
  allreduce: 'one-shot',
  workers: false,
  seed: 11,
});

describe('collectives run over the process group they name (agent, CPU worker)', () => {
  for (const dp of [1, 2])
    it(`dp ${dp} × tp 2: bitwise the CPU reference; the right rewrite passes, the mutant fails`, async () => {
      const right = rightRewrite();
      for (const g of [right.before, right.after]) {
        const ref = await runGraph(g, opts('cpu', dp));
        const got = await runGraph(g, opts('agent', dp));
        expect(got.outputs).toHaveLength(2 * dp);
        expect(got.outputs).toEqual(ref.outputs);
      }
      const ok = await compareGraphs(right.before, right.after, ['allreduce-rmsnorm'], opts('agent', dp));
      expect(ok.ok, JSON.stringify(ok.outputs)).toBe(true);
      const bad = mutantRewrite();
      const rep = await compareGraphs(bad.before, bad.after, ['allreduce-rmsnorm'], opts('agent', dp));
      expect(rep.verdict).toBe('failed');
    });

  it('the worker refuses groups that leave out a rank, repeat one or differ in size', async () => {
    const worker = new WorkerProcess({ path });
    await worker.start();
    try {
      const program = (groups: number[][]) => ({
        type: 'run',
        id: 'g',
        world: 4,
        dtype: 'f32',
        slots: [4, 4],
        intSlots: [],
        inputs: [],
        outputs: [1],
        steps: [
          { node: 'x', op: 'fill', in: [], out: [0], i: [], f: [1] },
          { node: 'ar', op: 'all_reduce', in: [0], out: [1], i: [], f: [], groups },
        ],
      });
      for (const [groups, why] of [
        [[[0, 1]], /rank 2 is in no group/],
        [
          [
            [0, 1],
            [1, 2],
          ],
          /once/,
        ],
        [[[0], [1, 2, 3]], /one size/],
      ] as const) {
        const reply = await worker.request(program(groups as unknown as number[][]), []);
        expect(reply.header.type).toBe('error');
        expect(String(reply.header.message)).toMatch(why);
      }
      // Two groups of two: each rank's all-reduce sums its own group's ones, 2 (the world's would be 4).
      const res = await worker.request(
        program([
          [0, 2],
          [1, 3],
        ]),
        [],
      );
      expect(res.header.type).toBe('result');
      const sums = new Float32Array(
        res.payload.buffer.slice(res.payload.byteOffset, res.payload.byteOffset + 64),
      );
      expect([...sums]).toEqual(new Array(16).fill(2));
    } finally {
      await worker.stop();
    }
  });
});
