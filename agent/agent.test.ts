// The agent end to end on this machine: the CPU build of the native worker behind the real
// server, driven by the real client and by a hostile one. Every hostile case is followed by a
// legitimate run whose outputs must equal the runtime's CPU reference.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseFx } from '../src/graph/fx/parse.ts';
import { graphToJson } from '../src/graph/json.ts';
import { runGraph, registerBackend, compareRewrite, type RunResult } from '../src/runtime/index.ts';
import { generateSample } from '../src/graph/samples/index.ts';
import { rewriteForCompare } from '../src/runtime/rewriteForCompare.ts';
import { compareTensor } from '../src/runtime/compareOutputs.ts';
import { AgentClient, agentBackend, agentAddressFromLocation } from '../src/runtime/agentClient.ts';
import { buildWorker } from './build.mjs';
import { startAgent, type RunningAgent } from './server.ts';

const FX = new URL('../fixtures/fx', import.meta.url).pathname;
const before = parseFx(readFileSync(`${FX}/seed/pr28841-before.fragment.txt`, 'utf8')).graph;
const after = parseFx(readFileSync(`${FX}/seed/pr28841-after.fragment.txt`, 'utf8')).graph;
const APP = 'http://127.0.0.1:5173';

/** A WebSocket whose errors say nothing, as a browser's do: the refusal's HTTP status is hidden. */
class SilentWebSocket extends WebSocket {
  override addEventListener(type: string, listener: (ev: object) => void): void {
    if (type === 'error') super.addEventListener('error', () => listener({}));
    else super.addEventListener(type as 'open', listener);
  }
}

let agent: RunningAgent;
let client: AgentClient;
const logs: string[] = [];

beforeAll(async () => {
  const worker = buildWorker({ forceCpu: true, log: () => {} });
  agent = await startAgent({
    workerPath: worker.path,
    workerEnv: { FUSIONLAB_WORKER_DEBUG: '1' },
    debug: true,
    limits: { messagesPerSecond: 100, maxGraphNodes: 100_000 },
    log: (l) => logs.push(l),
  });
  client = await AgentClient.connect(
    { url: `ws://127.0.0.1:${agent.port}`, token: agent.token },
    { origin: APP },
  );
  registerBackend('agent', async () => agentBackend(client));
}, 120_000);

afterAll(async () => {
  client?.close();
  await agent?.close();
});

// Planned as for the agent: the kernels its worker lacks (rotary, attention, scatter) are fed on
// both sides, so the reference checks the agent node for node.
const cpuOpts = (dtype: 'bf16' | 'f32', ranks = 2) => ({
  backend: 'cpu' as const,
  planFor: 'agent' as const,
  ranks,
  preset: 'tiny' as const,
  dtype,
  allreduce: 'ring' as const,
  workers: false,
});

/** Largest distance in ulps between two runs, over every output of every rank. */
function worstUlps(ref: RunResult, got: RunResult): number {
  let worst = 0;
  expect(got.outputs.length).toBe(ref.outputs.length);
  for (let r = 0; r < ref.outputs.length; r++) {
    expect([...got.outputs[r].keys()].sort()).toEqual([...ref.outputs[r].keys()].sort());
    for (const [name, t] of ref.outputs[r]) {
      const g = got.outputs[r].get(name)!;
      expect(g.shape).toEqual(t.shape);
      worst = Math.max(worst, compareTensor(name, t, g, 0, '').ulps);
    }
  }
  return worst;
}

/** A legitimate client, freshly connected, still gets the reference's outputs. */
async function assertStillServes(): Promise<void> {
  const c = await AgentClient.connect(
    { url: `ws://127.0.0.1:${agent.port}`, token: agent.token },
    { origin: APP },
  );
  try {
    const ref = await runGraph(after, cpuOpts('bf16'));
    const got = await c.runGraph(after, { preset: 'tiny', dtype: 'bf16', ranks: 2 });
    expect(worstUlps(ref, got)).toBe(0);
  } finally {
    c.close();
  }
}

/** Opens a raw socket; resolves with the HTTP status of a refused upgrade, or the open socket. */
function rawConnect(
  path: string,
  headers: Record<string, string> = {},
  origin: string | undefined = APP,
): Promise<{ status?: number; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${agent.port}${path}`, { origin, headers, maxPayload: 2 ** 30 });
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode });
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => resolve({ ws }));
    ws.on('error', (e) => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });
}

/** Text replies in arrival order (several can arrive in one tick, so none may be missed between awaits). */
function replies(ws: WebSocket): () => Promise<Record<string, unknown>> {
  const got: Record<string, unknown>[] = [];
  const waiting: ((m: Record<string, unknown>) => void)[] = [];
  ws.on('message', (d, bin) => {
    if (bin) return;
    const m = JSON.parse(d.toString());
    const w = waiting.shift();
    if (w) w(m);
    else got.push(m);
  });
  return () => (got.length ? Promise.resolve(got.shift()!) : new Promise((r) => waiting.push(r)));
}

describe('handshake and runs on the CPU worker', () => {
  it('reports the device, the protocol and its limits', () => {
    expect(client.hello.protocol).toBe(1);
    expect(client.hello.device.mode).toBe('cpu');
    expect(client.hello.device.reason).toMatch(/FUSIONLAB_CPU_ONLY/);
    expect(client.hello.device.gpus).toEqual([]);
    expect(client.hello.limits.maxGraphNodes).toBe(100_000);
  });

  it('prints an app URL whose address and token the client reads back', () => {
    const addr = agentAddressFromLocation(agent.appUrl(APP));
    expect(addr).toEqual({ url: `ws://127.0.0.1:${agent.port}`, token: agent.token });
    expect(agent.token).toMatch(/^[0-9a-f]{64}$/);
    expect(agentAddressFromLocation(`${APP}/?agent=ws://evil.example:80#token=abc`)).toBeNull();
  });

  for (const [label, g] of [
    ['before the rewrite (all_reduce → slice → fused_add_rms_norm)', before],
    ['after it (slice → fused all-reduce + RMSNorm)', after],
  ] as const) {
    it(`PR #28841 fragment ${label}: bf16 outputs equal the CPU reference bit for bit, 2 ranks`, async () => {
      const ref = await runGraph(g, cpuOpts('bf16'));
      const got = await client.runGraph(g, { preset: 'tiny', dtype: 'bf16', ranks: 2 });
      expect(worstUlps(ref, got)).toBe(0);
      expect(got.trace.backend).toBe('agent');
      expect(got.trace.events.every((e) => e.timing === 'host')).toBe(true);
    });
    it(`PR #28841 fragment ${label}: f32 within f32 accumulation error of the f64 reference`, async () => {
      const ref = await runGraph(g, cpuOpts('f32'));
      const got = await client.runGraph(g, { preset: 'tiny', dtype: 'f32', ranks: 2 });
      for (let r = 0; r < 2; r++)
        for (const [name, t] of ref.outputs[r])
          expect(compareTensor(name, t, got.outputs[r].get(name)!, 0, '').maxRel).toBeLessThan(1e-5);
    });
  }

  it('a generated gpt-oss-20b graph (2 layers, TP 2: embedding with vocabulary masks, MoE, norms) before and after the rewrite', async () => {
    const g0 = parseFx(generateSample('gpt-oss-20b', { layers: 2, tp: 2 })).graph;
    const g1 = rewriteForCompare(g0, ['slice-hoist', 'allreduce-rmsnorm'], 2);
    for (const g of [g0, g1]) {
      expect(
        worstUlps(
          await runGraph(g, cpuOpts('bf16')),
          await client.runGraph(g, { preset: 'tiny', dtype: 'bf16', ranks: 2 }),
        ),
      ).toBe(0);
      const ref = await runGraph(g, cpuOpts('f32'));
      const got = await client.runGraph(g, { preset: 'tiny', dtype: 'f32', ranks: 2 });
      for (let r = 0; r < 2; r++)
        for (const [name, t] of ref.outputs[r])
          expect(compareTensor(name, t, got.outputs[r].get(name)!, 0, '').maxAbs).toBeLessThan(1e-4);
    }
    // 2L + 1 = 5 fused sites after the rewrite, each a one-shot kernel.
    const after = await client.runGraph(g1, { preset: 'tiny', dtype: 'bf16', ranks: 2 });
    expect(after.trace.notes.length).toBe(5);
  });

  it('runs through the runtime as backend "agent" (the plan path) and the rewrite compares as on the CPU', async () => {
    const ref = await runGraph(before, cpuOpts('bf16', 4));
    const got = await runGraph(before, { ...cpuOpts('bf16', 4), backend: 'agent' });
    expect(worstUlps(ref, got)).toBe(0);
    const report = await compareRewrite(before, ['slice-hoist', 'allreduce-rmsnorm'], {
      ...cpuOpts('bf16', 2),
      backend: 'agent',
    });
    expect(report.outputs.length).toBeGreaterThan(0);
    expect(report.ok).toBe(true);
  });

  it('traces every node on every rank in the runtime trace format', async () => {
    const got = await client.runGraph(after, { preset: 'tiny', dtype: 'bf16', ranks: 2 });
    // Two steps carry the fused node's name: the gather that makes slice_1 contiguous, then the kernel.
    const named = got.trace.events.filter((e) => e.node === 'auto_functionalized_1');
    expect(named.length).toBe(4);
    const gather = named.slice(0, 2),
      fused = named.slice(2);
    expect(gather.map((e) => [e.bytesRead, e.bytesWritten])).toEqual([
      [7 * 40 * 2, 7 * 40 * 2],
      [7 * 40 * 2, 7 * 40 * 2],
    ]);
    expect(fused.map((e) => e.rank)).toEqual([0, 1]);
    expect(fused[0].kind).toBe('kernel');
    // T=7 rows of 40 bf16 columns: both ranks' inputs + residual + γ read; normed output + residual written.
    expect(fused[0].bytesRead).toBe(7 * 40 * 2 * 3 + 40 * 2);
    expect(fused[0].bytesWritten).toBe(7 * 40 * 2 * 2);
    expect(got.trace.notes).toEqual(['auto_functionalized_1: one-shot (cpu)']);
    const moe = got.trace.events.filter((e) => e.node === 'auto_functionalized' && e.kind === 'kernel');
    expect(moe.map((e) => e.rank).sort()).toEqual([0, 1]);
    // The expert weights are generated on the worker from the reference's seeds: fed, per rank.
    expect(got.trace.events.filter((e) => e.node === 'auto_functionalized' && e.kind === 'fed').length).toBe(
      2 * 4,
    );
  });

  it('takes user tensors as binary frames and uses them instead of seeded ones', async () => {
    const ref = await runGraph(after, cpuOpts('bf16'));
    const res = ref.outputs[0].get('auto_functionalized_1[2]')!;
    // Feed the reference's residual output back in as the residual input: the run must see it.
    const inputs = new Map([['getitem_14', res]]);
    const a = await runGraph(after, { ...cpuOpts('bf16'), inputs });
    const b = await client.runGraph(after, { preset: 'tiny', dtype: 'bf16', ranks: 2, inputs });
    expect(worstUlps(a, b)).toBe(0);
    expect(compareTensor('x', a.outputs[0].get('auto_functionalized_1[2]')!, res, 0, '').bitwiseEqual).toBe(
      false,
    );
  });

  it('takes more announced tensors than the message rate allows in a burst', async () => {
    // 500 single-element inputs named like no graph input: they are received and then unused.
    const many = new Map(
      Array.from({ length: 500 }, (_, i) => [
        `unused_${i}`,
        { dtype: 'bf16' as const, shape: [1], data: new Uint16Array(1) },
      ]),
    );
    const ref = await runGraph(after, cpuOpts('bf16'));
    expect(
      worstUlps(ref, await client.runGraph(after, { preset: 'tiny', dtype: 'bf16', ranks: 2, inputs: many })),
    ).toBe(0);
  });

  it('takes a tensor larger than one message in chunks of the message size', async () => {
    const numel = Math.floor(agent.limits.maxMessageBytes * 0.65);
    const big = { dtype: 'bf16' as const, shape: [numel], data: new Uint16Array(numel).fill(0x3f80) };
    const ref = await runGraph(after, cpuOpts('bf16'));
    expect(
      worstUlps(
        ref,
        await client.runGraph(after, {
          preset: 'tiny',
          dtype: 'bf16',
          ranks: 2,
          inputs: new Map([['unused_big', big]]),
        }),
      ),
    ).toBe(0);
  });

  it('a graph whose JSON is over the message size is refused by the client, which stays connected', async () => {
    const nodes = Array.from({ length: 90_000 }, (_, i) => ({
      ...after.nodes[0],
      name: `copy_of_a_node_${i}`,
      args: [],
      kwargs: {},
      meta: { file: 'layers.py:'.repeat(20) },
    }));
    await expect(
      client.runGraph({ ...after, nodes }, { preset: 'tiny', dtype: 'bf16', ranks: 2 }),
    ).rejects.toThrow(/^the run's graph is \d+\.\d MiB of JSON; the agent takes messages of at most 16 MiB$/);
    const ref = await runGraph(after, cpuOpts('bf16'));
    expect(worstUlps(ref, await client.runGraph(after, { preset: 'tiny', dtype: 'bf16', ranks: 2 }))).toBe(0);
  });

  it('refuses a tensor sent in chunks other than the message size, naming the input', async () => {
    const { ws } = await rawConnect(`/?token=${agent.token}`);
    const next = replies(ws!);
    ws!.send(
      JSON.stringify({
        type: 'run',
        id: 'chunks',
        graph: graphToJson(after),
        options: { preset: 'tiny', dtype: 'bf16', ranks: 2 },
        inputs: [{ name: 'unused', dtype: 'bf16', shape: [agent.limits.maxMessageBytes] }],
      }),
    );
    ws!.send(Buffer.alloc(2 ** 20));
    expect(await next()).toMatchObject({
      type: 'error',
      code: 'input',
      id: 'chunks',
      message: `input 'unused': ${2 ** 20} bytes, but bf16[${agent.limits.maxMessageBytes}] needs ${2 * agent.limits.maxMessageBytes} (sent in messages of ${agent.limits.maxMessageBytes} bytes but the last)`,
    });
    ws!.close();
    await assertStillServes();
  });

  it('refuses a tensor whose shape the run cannot use, naming the input', async () => {
    const wrong = { dtype: 'bf16' as const, shape: [3, 40], data: new Uint16Array(120) };
    await expect(
      client.runGraph(after, {
        preset: 'tiny',
        dtype: 'bf16',
        ranks: 2,
        inputs: new Map([['getitem_14', wrong]]),
      }),
    ).rejects.toThrow(/input 'getitem_14': shape \[3,40\] but the run needs \[7,40\]/);
  });
});

describe('a hostile client', () => {
  it('is refused without the token, with a wrong one, from a foreign Origin, or through another Host', async () => {
    expect((await rawConnect('/')).status).toBe(401);
    expect((await rawConnect('/?token=')).status).toBe(401);
    expect((await rawConnect(`/?token=${'0'.repeat(64)}`)).status).toBe(401);
    expect((await rawConnect(`/?token=${agent.token.slice(0, 63)}`)).status).toBe(401);
    expect((await rawConnect(`/?token=${agent.token}`, {}, 'https://evil.example')).status).toBe(403);
    expect((await rawConnect(`/?token=${agent.token}`, {}, 'http://127.0.0.1:5174')).status).toBe(403);
    expect((await rawConnect(`/?token=${agent.token}`, { host: 'attacker.example:80' })).status).toBe(403);
    expect(logs.filter((l) => l.startsWith('refused')).length).toBeGreaterThanOrEqual(7);
    await assertStillServes();
  });

  it('gets an error reply for malformed JSON, unknown types and schema violations, naming the field', async () => {
    const { ws } = await rawConnect(`/?token=${agent.token}`);
    const next = replies(ws!);
    const ask = async (text: string) => {
      ws!.send(text);
      return next();
    };
    expect(await ask('{"type": "run", ')).toMatchObject({
      type: 'error',
      code: 'bad-message',
      message: expect.stringMatching(/^not JSON/),
    });
    expect(await ask('[1,2,3]')).toMatchObject({
      code: 'bad-message',
      message: 'message: must be a JSON object',
    });
    expect(await ask('{"type":"shutdown"}')).toMatchObject({
      code: 'unknown-type',
      message: "unknown message type 'shutdown'",
    });
    expect(await ask('{"type":"hello","protocol":7}')).toMatchObject({ code: 'protocol' });
    expect(
      await ask(
        JSON.stringify({
          type: 'run',
          id: 'x1',
          graph: graphToJson(after),
          options: { preset: 'tiny', dtype: 'bf16', ranks: 99 },
        }),
      ),
    ).toMatchObject({
      code: 'bad-message',
      id: 'x1',
      message: 'run.options.ranks: must be an integer in [1, 8]',
    });
    expect(
      await ask(
        JSON.stringify({
          type: 'run',
          id: 'x2',
          graph: { schema: 'nope' },
          options: { preset: 'tiny', dtype: 'bf16', ranks: 2 },
        }),
      ),
    ).toMatchObject({ code: 'bad-message', id: 'x2', message: expect.stringMatching(/^run\.graph: /) });
    const plan = {
      preset: 'tiny',
      dtype: 'bf16',
      ranks: 2,
      tokens: 7,
      storages: [{ id: 's', dtype: 'bf16', shape: [4] }],
      steps: [
        {
          kernel: 'copy',
          node: 'n',
          op: 'aten.clone.default',
          x: { storage: 's', offset: 2, shape: [4], strides: [1] },
          out: 's',
        },
      ],
      outputs: [],
    };
    expect(
      await ask(
        JSON.stringify({ type: 'run', id: 'x3', plan, options: { preset: 'tiny', dtype: 'bf16', ranks: 2 } }),
      ),
    ).toMatchObject({
      code: 'bad-message',
      id: 'x3',
      message: "plan.steps[0].x: reaches element 5 of storage 's', which has 4",
    });
    ws!.send(Buffer.from([1, 2, 3]));
    expect(await next()).toMatchObject({
      code: 'protocol',
      message: 'a binary message arrived with no run waiting for tensors',
    });
    ws!.close();
    await assertStillServes();
  });

  it('is cut off by an oversized frame', async () => {
    const { ws } = await rawConnect(`/?token=${agent.token}`);
    const closed = new Promise<number>((r) => ws!.on('close', (code) => r(code)));
    ws!.send(Buffer.alloc(agent.limits.maxMessageBytes + 1));
    expect(await closed).toBe(1009);
    await assertStillServes();
  });

  it('flooding gets rate-limit errors, then the connection closed', async () => {
    const { ws } = await rawConnect(`/?token=${agent.token}`);
    const replies: Record<string, unknown>[] = [];
    ws!.on('message', (d, bin) => {
      if (!bin) replies.push(JSON.parse(d.toString()));
    });
    const closed = new Promise<number>((r) => ws!.on('close', (code) => r(code)));
    const t0 = Date.now();
    for (let i = 0; i < 3000 && ws!.readyState === ws!.OPEN; i++) ws!.send('{"type":"hello","protocol":1}');
    expect(await closed).toBe(1008);
    const seconds = (Date.now() - t0) / 1000;
    expect(replies.some((m) => m.code === 'rate-limit')).toBe(true);
    // At most the burst (2 × 100) plus what the rate refilled while the flood lasted was answered.
    expect(replies.filter((m) => m.type === 'hello').length).toBeLessThanOrEqual(
      200 + Math.ceil(100 * seconds),
    );
    await assertStillServes();
  });

  it('a graph over the node limit is refused by its count as sent, before it is walked', async () => {
    const { ws } = await rawConnect(`/?token=${agent.token}`);
    // The wire format the client sends: {schema, graph: {nodes}}; the nodes are not even valid.
    const nodes = Array.from({ length: 150_000 }, (_, i) => ({ name: `n${i}`, op: 'x' }));
    const text = JSON.stringify({
      type: 'run',
      id: 'big',
      graph: {
        schema: 'fusionlab.graph/1',
        graph: { name: 'g', form: 'fragment', inputs: [], nodes, outputs: null, submodules: {} },
      },
      options: { preset: 'tiny', dtype: 'bf16', ranks: 2 },
    });
    expect(text.length).toBeLessThan(agent.limits.maxMessageBytes);
    const next = replies(ws!);
    ws!.send(text);
    expect(await next()).toMatchObject({
      type: 'error',
      code: 'limits',
      id: 'big',
      message: 'the graph has 150000 nodes; this agent takes at most 100000',
    });
    ws!.close();
    await assertStillServes();
  }, 120_000);

  it('disconnecting mid-run cancels the run and frees it (the worker is replaced), and the next run works', async () => {
    const c = await AgentClient.connect(
      { url: `ws://127.0.0.1:${agent.port}`, token: agent.token },
      { origin: APP },
    );
    const { ws } = await rawConnect(`/?token=${agent.token}`);
    ws!.send(JSON.stringify({ type: 'debug', stepDelayMs: 200 }));
    ws!.send(
      JSON.stringify({
        type: 'run',
        id: 'slow',
        graph: graphToJson(before),
        options: { preset: 'tiny', dtype: 'bf16', ranks: 2 },
      }),
    );
    await new Promise<void>((r) =>
      ws!.on('message', (d) => {
        if (JSON.parse(d.toString()).type === 'progress') r();
      }),
    );
    const nLogs = logs.length;
    ws!.terminate();
    await expect.poll(() => logs.slice(nLogs).includes('worker restarted'), { timeout: 10_000 }).toBe(true);
    c.close();
    await assertStillServes();
  });

  it('a worker crash at a node is reported naming that node; the worker restarts and the next run works', async () => {
    const { ws } = await rawConnect(`/?token=${agent.token}`);
    const next = replies(ws!);
    ws!.send(JSON.stringify({ type: 'debug', abortAt: 'auto_functionalized_1' }));
    ws!.send(
      JSON.stringify({
        type: 'run',
        id: 'crash',
        graph: graphToJson(after),
        options: { preset: 'tiny', dtype: 'bf16', ranks: 2 },
      }),
    );
    let m = await next();
    while (m.type === 'progress') m = await next();
    expect(m).toMatchObject({
      type: 'error',
      code: 'worker',
      id: 'crash',
      node: 'auto_functionalized_1',
      op: 'higher_order.auto_functionalized',
    });
    expect(m.message).toBe(
      'node auto_functionalized_1 (higher_order.auto_functionalized): the worker was killed by SIGABRT while running it; the worker was restarted',
    );
    ws!.close();
    await assertStillServes();
  });

  it("answers a browser's probe over HTTP as its handshake would: busy, token, origin, or free", async () => {
    const other = await startAgent({
      workerPath: buildWorker({ forceCpu: true, log: () => {} }).path,
      limits: { maxConnections: 1 },
      log: () => {},
    });
    const probe = (token: string, headers: Record<string, string> = {}) =>
      fetch(`http://127.0.0.1:${other.port}/handshake?token=${token}`, { headers });
    try {
      expect((await probe(other.token)).status).toBe(204);
      expect((await probe('0'.repeat(64))).status).toBe(401);
      const foreign = await probe(other.token, { origin: 'https://evil.example' });
      expect(foreign.status).toBe(403);
      // Readable by the page that asks (no token is learnt from it: a foreign origin is refused first).
      expect(foreign.headers.get('access-control-allow-origin')).toBe('*');
      const ws = new WebSocket(`ws://127.0.0.1:${other.port}/?token=${other.token}`);
      await new Promise((r) => ws.on('open', r));
      const busy = await probe(other.token);
      expect(busy.status).toBe(503);
      expect(await busy.text()).toBe('1 connections are open; this agent takes at most 1\n');
      // A browser's client asks the same question and says busy, not "is it running".
      await expect(
        AgentClient.connect(
          { url: `ws://127.0.0.1:${other.port}`, token: other.token },
          { webSocket: SilentWebSocket },
        ),
      ).rejects.toThrow(/is busy: all its connections are taken \(HTTP 503\)/);
      ws.close();
    } finally {
      await other.close();
    }
  });

  it('debug messages are refused by an agent not started for tests', async () => {
    const other = await startAgent({
      workerPath: buildWorker({ forceCpu: true, log: () => {} }).path,
      log: () => {},
    });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${other.port}/?token=${other.token}`);
      await new Promise((r) => ws.on('open', r));
      const next = replies(ws);
      ws.send(JSON.stringify({ type: 'debug', abortAt: 'slice_1' }));
      expect(await next()).toMatchObject({ code: 'unknown-type' });
      ws.close();
    } finally {
      await other.close();
    }
  });
});

describe('sequence parallelism on the agent', () => {
  it('runs reduce_scatter, all_gather and the fused matmuls (GPT-OSS, SP + async TP) as the CPU reference does, bit for bit', async () => {
    const g = parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 2 })).graph;
    const sp = rewriteForCompare(
      g,
      ['noop-elimination', 'slice-hoist', 'sequence-parallelism', 'async-tp'],
      2,
    );
    expect(sp.nodes.some((n) => n.op === 'symm_mem.fused_matmul_reduce_scatter.default')).toBe(true);
    const opts = { ...cpuOpts('bf16'), tokens: 8 };
    const ref = await runGraph(g, opts);
    const got = await runGraph(sp, { ...opts, backend: 'agent' });
    // The final norm's output is named all_gather_* after the split: compare by position.
    expect(got.outputs.length).toBe(2);
    for (let r = 0; r < 2; r++) {
      const [[, a]] = [...ref.outputs[r]],
        [[, b]] = [...got.outputs[r]];
      expect(compareTensor(`rank ${r}`, a!, b!, 0, 'same sums in the same order').bitwiseEqual).toBe(true);
    }
    expect(got.trace.events.some((e) => e.op === 'vllm.reduce_scatter.default')).toBe(true);
    // The fused matmul + reduce-scatter runs as one worker op (mm_reduce_scatter), not gemm then collective.
    const fused = got.trace.events.filter(
      (e) => e.rank === 0 && e.op === 'symm_mem.fused_matmul_reduce_scatter.default',
    );
    expect(fused.length).toBe(
      sp.nodes.filter((n) => n.op === 'symm_mem.fused_matmul_reduce_scatter.default').length,
    );
  }, 120_000);
});
