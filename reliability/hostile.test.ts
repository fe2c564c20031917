// The reliability suite: large and hostile inputs against every surface, on loopback only, seeded
// and bounded. The agent runs in a process of its own (its memory is read from /proc), a prober
// thread keeps opening connections and timing their handshakes while other clients attack, and
// after every agent attack a legitimate client's run must equal the CPU reference bit for bit.
// At the end it prints: attacks tried, attacks held, the longest handshake while attacked, the
// agent's peak memory and its memory per byte it held. Replay: RELIABILITY_SEED=<seed>.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { GraphImportError } from '../src/graph/errors.ts';
import { importGraph } from '../src/graph/formats.ts';
import { parseFx } from '../src/graph/fx/parse.ts';
import { graphToJson } from '../src/graph/json.ts';
import { runCliMutants } from '../src/cli/mutants.ts';
import { runGraph } from '../src/runtime/index.ts';
import { AgentClient } from '../src/runtime/agentClient.ts';
import { bitwiseEqual } from '../src/runtime/hostTensor.ts';
import { decodeUrlState, encodeUrlState, UrlStateError, type UrlState } from '../src/ui/urlState.ts';
import type { AgentLimits } from '../src/runtime/agentProtocol.ts';

const SEED = Number(process.env.RELIABILITY_SEED ?? 15);
const MiB = 2 ** 20;
const APP = 'http://127.0.0.1:5173';
const after = parseFx(
  readFileSync(new URL('../fixtures/fx/seed/pr28841-after.fragment.txt', import.meta.url), 'utf8'),
).graph;

/** Limits the attacks are sized against: large enough for a GiB held across two clients. */
const LIMITS: Partial<AgentLimits> = {
  maxConnections: 12,
  maxGraphNodes: 100_000,
  maxRunHostBytes: 3 * 1024 * MiB,
  maxHostBytes: 6 * 1024 * MiB,
  messagesPerSecond: 200,
};

const figures = {
  tried: 0,
  held: 0,
  maxHandshakeMs: 0,
  baselineHandshakeMs: 0,
  maxLoopGapMs: 0,
  maxLoopBusyMs: 0,
  peakRssBytes: 0,
  bytesPerHeldByte: 0,
};
/** The longest handshake during each attack that ran the prober. */
const handshakes: string[] = [];
const failed: string[] = [];

/** Counts an attack; it held when `fn` (its checks and the legitimate run after it) passed. */
async function attack(name: string, fn: () => Promise<void>): Promise<void> {
  figures.tried++;
  try {
    await fn();
    figures.held++;
  } catch (e) {
    failed.push(`${name}: ${(e as Error).message.split('\n')[0]}`);
    throw e;
  }
}

let agentProcess: ChildProcess;
let agent: { port: number; token: string; limits: AgentLimits };
/** Lines the agent process prints, after its first, in order. */
const agentLines: ((line: string) => void)[] = [];

/** What held up the agent's event loop since the last call (see agentHost.mjs). */
function agentLoop(): Promise<{ gapMs: number; busyMs: number }> {
  return new Promise((resolve) => {
    agentLines.push((l) => resolve(JSON.parse(l)));
    agentProcess.stdin!.write('loop\n');
  });
}

function rss(): { now: number; peak: number } {
  const status = readFileSync(`/proc/${agentProcess.pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  const r = { now: kb('VmRSS'), peak: kb('VmHWM') };
  figures.peakRssBytes = Math.max(figures.peakRssBytes, r.peak);
  return r;
}

function connect(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${agent.port}/?token=${agent.token}`, {
      origin: APP,
      maxPayload: 2 ** 30,
    });
    ws.on('open', () => resolve(ws));
    ws.on('unexpected-response', (_q, res) => {
      reject(new Error(`HTTP ${res.statusCode}`));
      res.resume();
      ws.terminate();
    });
    ws.on('error', (e) => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });
}

/** Text replies in order. */
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

const sent = (ws: WebSocket, data: string | Buffer) =>
  new Promise<void>((resolve, reject) => ws.send(data, (e) => (e ? reject(e) : resolve())));

/** A legitimate client, freshly connected, still gets the CPU reference's outputs bit for bit. */
async function stillServes(): Promise<void> {
  const c = await AgentClient.connect(
    { url: `ws://127.0.0.1:${agent.port}`, token: agent.token },
    { origin: APP },
  );
  try {
    const opts = { preset: 'tiny' as const, dtype: 'bf16' as const, ranks: 2 };
    const ref = await runGraph(after, { backend: 'cpu', allreduce: 'ring', workers: false, ...opts });
    const got = await c.runGraph(after, opts);
    for (let r = 0; r < ref.outputs.length; r++) {
      for (const [name, t] of ref.outputs[r])
        expect(bitwiseEqual(t, got.outputs[r].get(name)!), `rank ${r} ${name}`).toBe(true);
    }
  } finally {
    c.close();
  }
}

// ---- the prober: a thread of its own, so the test's own work does not count as the agent's stall

const PROBER = `
const { parentPort, workerData } = require('node:worker_threads');
const WebSocket = require(workerData.ws);
let running = false;
const probe = () => new Promise((resolve) => {
  const t0 = performance.now();
  const ws = new WebSocket(workerData.url, { origin: workerData.origin });
  const done = (ms) => { ws.terminate(); resolve(ms); };
  ws.on('open', () => ws.send('{"type":"hello","protocol":1}'));
  ws.on('message', () => done(performance.now() - t0));
  ws.on('error', () => done(-1));
  ws.on('unexpected-response', (_q, res) => { res.resume(); done(-1); });
});
parentPort.on('message', async (m) => {
  if (m === 'stop') { running = false; return; }
  running = true;
  while (running) {
    parentPort.postMessage(await probe());
    await new Promise((r) => setTimeout(r, 20));
  }
  parentPort.postMessage('stopped');
});`;

let prober: Worker;
let latencies: number[] = [];

async function probing<T>(fn: () => Promise<T>): Promise<{ result: T; maxMs: number; probes: number }> {
  latencies = [];
  prober.postMessage('start');
  await new Promise((r) => setTimeout(r, 60));
  try {
    const result = await fn();
    await new Promise((r) => setTimeout(r, 60));
    return { result, maxMs: Math.max(...latencies.filter((l) => l >= 0)), probes: latencies.length };
  } finally {
    await new Promise<void>((resolve) => {
      const onStop = (m: unknown) => {
        if (m === 'stopped') {
          prober.off('message', onStop);
          resolve();
        }
      };
      prober.on('message', onStop);
      prober.postMessage('stop');
    });
  }
}

beforeAll(async () => {
  agentProcess = spawn(
    process.execPath,
    [new URL('./agentHost.mjs', import.meta.url).pathname, JSON.stringify(LIMITS)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  agent = await new Promise((resolve, reject) => {
    let first = true;
    createInterface({ input: agentProcess.stdout! }).on('line', (l) => {
      if (first) {
        first = false;
        resolve(JSON.parse(l));
      } else agentLines.shift()?.(l);
    });
    agentProcess.once('exit', (code) => reject(new Error(`the agent exited with ${code}`)));
  });
  prober = new Worker(PROBER, {
    eval: true,
    workerData: {
      ws: createRequire(import.meta.url).resolve('ws'),
      url: `ws://127.0.0.1:${agent.port}/?token=${agent.token}`,
      origin: APP,
    },
  });
  prober.on('message', (m) => {
    if (typeof m === 'number') latencies.push(m);
  });
  await stillServes();
  const idle = await probing(() => new Promise((r) => setTimeout(r, 600)));
  figures.baselineHandshakeMs = [...latencies].sort((a, b) => a - b)[Math.floor(latencies.length / 2)];
  expect(idle.probes).toBeGreaterThan(3);
}, 180_000);

afterAll(async () => {
  await prober?.terminate();
  agentProcess?.stdin?.end();
  await new Promise((r) => {
    if (!agentProcess || agentProcess.exitCode !== null) r(null);
    else agentProcess.once('exit', r);
  });
  const f = figures;
  console.log(
    [
      `reliability (seed ${SEED}): ${f.tried} attacks tried, ${f.held} held`,
      `  longest handshake while attacked: ${f.maxHandshakeMs.toFixed(0)} ms (idle median ${f.baselineHandshakeMs.toFixed(1)} ms; target ≤ 100 ms)`,
      `  agent event loop: longest gap ${f.maxLoopGapMs.toFixed(0)} ms (wall clock, the OS's scheduling included); its main thread's own work in one gap ≤ ${f.maxLoopBusyMs} ms`,
      ...handshakes.map((h) => `    ${h}`),
      `  agent peak RSS: ${(f.peakRssBytes / MiB).toFixed(0)} MiB; RSS growth per byte held: ${f.bytesPerHeldByte.toFixed(3)} (target ≤ 1.1)`,
      ...failed.map((x) => `  failed: ${x}`),
    ].join('\n'),
  );
});

describe('the agent under hostile clients', () => {
  it('inputs beyond host memory are refused when announced, before any byte is buffered', async () => {
    await attack('4096 × 128 MiB announced', async () => {
      const before = rss().now;
      const ws = await connect();
      const next = replies(ws);
      const inputs = Array.from({ length: 4096 }, (_, i) => ({
        name: `x${i}`,
        dtype: 'bf16',
        shape: [64 * MiB],
      }));
      ws.send(
        JSON.stringify({
          type: 'run',
          id: 'huge',
          graph: graphToJson(after),
          options: { preset: 'tiny', dtype: 'bf16', ranks: 2 },
          inputs,
        }),
      );
      expect(await next()).toMatchObject({
        code: 'limits',
        id: 'huge',
        message: expect.stringMatching(
          /^the run's inputs need 1572864\.0 MiB of host memory .* at most 3072\.0 MiB a run$/,
        ),
      });
      // Sending the bytes anyway buffers nothing: no run is waiting for them.
      ws.send(Buffer.alloc(16 * MiB));
      expect(await next()).toMatchObject({
        code: 'protocol',
        message: 'a binary message arrived with no run waiting for tensors',
      });
      ws.close();
      expect(rss().now - before).toBeLessThan(64 * MiB);
      await stillServes();
    });
  });

  it('memory held for two clients is what they sent, and is given back when they leave', async () => {
    await attack('1 GiB held by two clients, then a third over the total', async () => {
      const chunk = Buffer.alloc(16 * MiB, 1);
      const tensor = { dtype: 'bf16', shape: [128 * MiB] }; // 256 MiB; costs 768 MiB of host memory with the f32 copy
      const run = (id: string) =>
        JSON.stringify({
          type: 'run',
          id,
          graph: graphToJson(after),
          options: { preset: 'tiny', dtype: 'bf16', ranks: 2 },
          inputs: [0, 1, 2].map((k) => ({ name: `held_${k}`, ...tensor })),
        });
      const before = rss().now;
      const clients = await Promise.all([connect(), connect()]);
      let held = 0;
      await Promise.all(
        clients.map(async (ws, k) => {
          await sent(ws, run(`hold${k}`));
          // Two whole tensors and the first chunk of the third: the run waits for the rest.
          for (let i = 0; i < 33; i++) {
            await sent(ws, chunk);
            held += chunk.length;
          }
        }),
      );
      await new Promise((r) => setTimeout(r, 500));
      figures.bytesPerHeldByte = (rss().now - before) / held;
      // Not a timing: a second copy of what is held (as before the fix) would make this 2 or more.
      expect(figures.bytesPerHeldByte).toBeLessThan(1.5);
      // A third client's run would take the admitted total past the host budget: refused, not buffered.
      const third = await connect();
      const next = replies(third);
      third.send(run('third'));
      expect(await next()).toMatchObject({ code: 'busy', id: 'third' });
      for (const ws of clients) ws.close();
      await new Promise((r) => setTimeout(r, 300));
      // Given back: the same run is admitted now (and cancelled by leaving).
      third.send(run('third-again'));
      third.send(JSON.stringify({ type: 'hello', protocol: 1 }));
      expect(await next()).toMatchObject({ type: 'hello' });
      third.close();
      await stillServes();
    });
  }, 120_000);

  it('a client that leaves while its run is being parsed leaves nothing admitted', async () => {
    await attack('leave while parsing', async () => {
      const g = graphToJson(after) as unknown as { graph: { nodes: { meta: Record<string, unknown> }[] } };
      g.graph.nodes[0].meta.pad = 'x'.repeat(256 * 1024); // past the inline size: parsed in the thread
      // One whole run's worth of host memory: 1 GiB sent + 2 GiB for the worker's f32 copy.
      const run = (id: string) =>
        JSON.stringify({
          type: 'run',
          id,
          graph: g,
          options: { preset: 'tiny', dtype: 'bf16', ranks: 2 },
          inputs: [{ name: 'big', dtype: 'bf16', shape: [512 * MiB] }],
        });
      for (let k = 0; k < 4; k++) {
        const ws = await connect();
        ws.send(run(`gone${k}`));
        ws.terminate();
      }
      await new Promise((r) => setTimeout(r, 500));
      // Had any of them been admitted, two more whole runs would not fit in the total.
      const stay = await Promise.all([connect(), connect()]);
      const answers = stay.map((ws) => replies(ws));
      stay.forEach((ws, k) => {
        ws.send(run(`stay${k}`));
        ws.send('{"type":"hello","protocol":1}');
      });
      for (const next of answers) expect(await next()).toMatchObject({ type: 'hello' });
      for (const ws of stay) ws.close();
      await stillServes();
    });
  });

  it('connections past the cap are refused with 503; closing them frees their places', async () => {
    await attack('connection flood', async () => {
      // The earlier clients' closing handshakes finish first, so every place is free.
      await new Promise((r) => setTimeout(r, 500));
      const open = await Promise.all(Array.from({ length: agent.limits.maxConnections }, () => connect()));
      await expect(connect()).rejects.toThrow('HTTP 503');
      for (const ws of open) ws.close();
      await new Promise((r) => setTimeout(r, 200));
      await stillServes();
    });
  });

  it('in-limit messages of other clients never hold up a handshake', async () => {
    const rnd = (() => {
      let a = SEED >>> 0;
      return () => (a = (a * 1664525 + 1013904223) >>> 0) / 2 ** 32;
    })();
    const chain = (n: number) => ({
      schema: 'fusionlab.graph/1',
      graph: {
        name: 'chain',
        form: 'fragment',
        outputs: null,
        submodules: {},
        inputs: [{ name: 'x', type: { kind: 'tensor', dtype: 'bf16', shape: [4, 64] }, meta: {} }],
        nodes: Array.from({ length: n }, (_, i) => ({
          name: `c${i}`,
          op: 'aten.clone.default',
          args: [{ kind: 'ref', name: i ? `c${i - 1}` : 'x' }],
          kwargs: {},
          type: { kind: 'tensor', dtype: 'bf16', shape: [4, 64] },
          meta: {},
        })),
      },
    });
    const cases: [string, (ws: WebSocket, next: () => Promise<Record<string, unknown>>) => Promise<void>][] =
      [
        [
          'a 60,000-node graph (planned in the thread)',
          async (ws, next) => {
            const text = JSON.stringify({
              type: 'run',
              id: 'chain',
              graph: chain(60_000),
              options: { preset: 'tiny', dtype: 'bf16', ranks: 1 },
            });
            expect(text.length).toBeLessThan(agent.limits.maxMessageBytes);
            ws.send(text);
            expect(await next()).toMatchObject({ id: 'chain' });
          },
        ],
        [
          'a 150,000-node graph (refused by count)',
          async (ws, next) => {
            const g = chain(150_000);
            for (const n of g.graph.nodes) {
              n.type = null as never;
              n.meta = undefined as never;
            }
            ws.send(
              JSON.stringify({
                type: 'run',
                id: 'count',
                graph: g,
                options: { preset: 'tiny', dtype: 'bf16', ranks: 1 },
              }),
            );
            expect(await next()).toMatchObject({ code: 'limits', id: 'count' });
          },
        ],
        [
          'two 64 MiB tensors in 16 MiB chunks',
          async (ws, next) => {
            const t = { dtype: 'bf16', shape: [32 * MiB] };
            ws.send(
              JSON.stringify({
                type: 'run',
                id: 'big',
                graph: graphToJson(after),
                options: { preset: 'tiny', dtype: 'bf16', ranks: 2 },
                inputs: [
                  { name: 'u0', ...t },
                  { name: 'u1', ...t },
                ],
              }),
            );
            const chunk = Buffer.alloc(16 * MiB, 3);
            for (let i = 0; i < 8; i++) await sent(ws, chunk);
            expect(await next()).toMatchObject({ id: 'big' });
          },
        ],
        [
          '4 MiB of nested brackets',
          async (ws, next) => {
            const depth = 2 * MiB;
            ws.send(
              `{"type":"run","id":"deep","graph":{"schema":"fusionlab.graph/1","graph":${'['.repeat(depth)}${']'.repeat(depth)}}}`,
            );
            expect(await next()).toMatchObject({ id: 'deep', code: 'bad-message' });
          },
        ],
        [
          '16 MiB that is not JSON',
          async (ws, next) => {
            const junk = Buffer.alloc(16 * MiB - 1);
            for (let i = 0; i < junk.length; i += 97) junk[i] = 32 + Math.floor(rnd() * 90);
            ws.send(junk.toString('latin1'));
            expect(await next()).toMatchObject({
              code: 'bad-message',
              message: expect.stringMatching(/^not JSON/),
            });
          },
        ],
        [
          'a flood of hellos',
          async (ws, next) => {
            for (let i = 0; i < 1500 && ws.readyState === ws.OPEN; i++)
              ws.send('{"type":"hello","protocol":1}');
            let m;
            do m = await next();
            while (m.type === 'hello');
            expect(m).toMatchObject({ code: 'rate-limit' });
          },
        ],
      ];
    for (const [name, fn] of cases) {
      await attack(name, async () => {
        await agentLoop();
        const { maxMs, probes } = await probing(async () => {
          const ws = await connect();
          const next = replies(ws);
          await fn(ws, next);
          ws.close();
        });
        expect(probes).toBeGreaterThan(0);
        const loop = await agentLoop();
        figures.maxHandshakeMs = Math.max(figures.maxHandshakeMs, maxMs);
        figures.maxLoopGapMs = Math.max(figures.maxLoopGapMs, loop.gapMs);
        figures.maxLoopBusyMs = Math.max(figures.maxLoopBusyMs, loop.busyMs);
        handshakes.push(
          `${name}: handshakes ≤ ${maxMs.toFixed(0)} ms (${probes}); agent loop gap ≤ ${loop.gapMs.toFixed(0)} ms, main thread busy ≤ ${loop.busyMs} ms of it`,
        );
        rss();
        await stillServes();
      });
    }
  }, 300_000);
});

describe("the importers, the CLI and the app's links", () => {
  it('1,000 seeded CLI mutants: exit 0, or exit 2 and one line; no stack trace', async () => {
    const r = await runCliMutants(SEED + 1000, 1000);
    figures.tried += r.tried;
    figures.held += r.tried - r.failures.length;
    failed.push(...r.failures.slice(0, 5));
    expect(r.failures.slice(0, 5)).toEqual([]);
  }, 300_000);

  it('hostile nesting and cycles are refused with where', async () => {
    const cases: [string, string][] = [
      [
        'add: "f32[2]" = torch.ops.aten.add.Tensor(' + '['.repeat(100_000) + ']'.repeat(100_000) + ')',
        'brackets nested deeper than 64 levels',
      ],
      [
        `{"schema":"fusionlab.graph/1","graph":{"name":"g","form":"fragment","inputs":[],"nodes":[{"name":"a","op":"x","args":[],"kwargs":{},"type":null,"meta":{"m":${'['.repeat(500_000)}${']'.repeat(500_000)}}}],"outputs":null,"submodules":{}}}`,
        'nested deeper than 64 levels',
      ],
      [
        JSON.stringify(graphToJson({ ...after, nodes: [...after.nodes].reverse() })),
        'is used before it is defined',
      ],
    ];
    for (const [text, message] of cases) {
      await attack(`import: ${message}`, async () => {
        let e: unknown;
        try {
          importGraph(text);
        } catch (x) {
          e = x;
        }
        expect(e).toBeInstanceOf(GraphImportError);
        expect((e as GraphImportError).detail).toContain(message);
      });
    }
  });

  it('links: a deflate bomb, an unknown GPU, an unknown field, an absurd zoom', async () => {
    const zeros = new Uint8Array(256 * MiB);
    const deflated = new Uint8Array(
      await new Response(
        new Blob([zeros]).stream().pipeThrough(new CompressionStream('deflate')),
      ).arrayBuffer(),
    );
    const bomb = Buffer.from(deflated).toString('base64url');
    const base: UrlState = { v: 1, source: { sample: 'pr-before' }, steps: [] };
    const cases: [string, string][] = [
      [bomb, 'inflates to more than'],
      [
        await encodeUrlState({ ...base, gates: { gpu: 'ampere' } } as unknown as UrlState),
        'state.gates.gpu is "ampere"',
      ],
      [
        await encodeUrlState({ ...base, view: { theme: 'x' } } as unknown as UrlState),
        'state.view.theme is "x"',
      ],
      [
        await encodeUrlState({ ...base, view: { centre: { node: 'add', dx: 0, dy: 0, k: 1e308 } } }),
        'state.view.centre.k is 1e+308; expected a number in [0.01, 4]',
      ],
    ];
    for (const [link, message] of cases) {
      await attack(`link: ${message}`, async () => {
        await expect(decodeUrlState(link)).rejects.toThrow(UrlStateError);
        await expect(decodeUrlState(link)).rejects.toThrow(message);
      });
    }
  });
});
