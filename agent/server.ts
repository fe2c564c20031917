// The companion agent: a WebSocket server on 127.0.0.1 that runs graphs on this machine's GPUs
// through the native worker. A web page the user happens to visit must not be able to drive
// it, so every connection needs the one-time token and, when a browser sends an Origin, the
// app's Origin; the Host header must name this loopback address (no DNS rebinding). Messages
// are bounded in size and rate, runs in number, and every message is schema-checked.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { graphFromJson } from '../src/graph/json.ts';
import { planGraph } from '../src/runtime/index.ts';
import { RunError } from '../src/runtime/runError.ts';
import { DEFAULT_SEED, type Trace, type TraceEvent } from '../src/runtime/backend.ts';
import type { Plan } from '../src/runtime/plan.ts';
import type { HostTensor } from '../src/runtime/hostTensor.ts';
import { WorkerProcess, WorkerFailure, type WorkerHello } from './workerProcess.ts';
import { lowerPlan, type LoweredProgram } from './program.ts';
import { planFromWire } from './planWire.ts';
import {
  PROTOCOL_VERSION, ProtocolError, checkClientMessage, elemBytes,
  type AgentLimits, type AgentMessage, type ClientMessage, type DeviceInfo, type ErrorCode, type InputDecl, type RunOptionsWire,
} from './protocol.ts';

export const AGENT_VERSION = 'fusionlab-agent 0.1.0';

/** The app's dev and preview origins. */
export const DEFAULT_ORIGINS = ['http://127.0.0.1:5173', 'http://127.0.0.1:4173', 'http://localhost:5173', 'http://localhost:4173'];

export interface AgentConfig {
  workerPath: string;
  workerEnv?: Record<string, string>;
  /** 0 (default): a free port. */
  port?: number;
  /** Default: 32 random bytes, hex. */
  token?: string;
  allowedOrigins?: string[];
  limits?: Partial<AgentLimits>;
  /** Accept `debug` messages (tests make the worker abort at a node with them). */
  debug?: boolean;
  log?: (line: string) => void;
}

export const DEFAULT_LIMITS: AgentLimits = {
  maxMessageBytes: 256 * 2 ** 20,
  maxGraphNodes: 200_000,
  maxInputs: 4096,
  maxRanks: 8,
  messagesPerSecond: 200,
  maxQueuedRuns: 8,
  maxDeviceBytes: 64 * 2 ** 30,
};

export interface RunningAgent {
  port: number;
  token: string;
  /** ws://127.0.0.1:PORT/?token=… */
  wsUrl: string;
  /** The app URL that selects this agent: `${appOrigin}/?agent=ws://127.0.0.1:PORT#token=…`. */
  appUrl(appOrigin?: string): string;
  device(): Promise<DeviceInfo>;
  close(): Promise<void>;
}

interface Job {
  conn: Connection;
  id: string;
  msg: Extract<ClientMessage, { type: 'run' }>;
  tensors: Buffer[];
  cancelled: boolean;
}

interface Connection {
  ws: WebSocket;
  bucket: number;
  lastRefill: number;
  lastRateError: number;
  dropped: number;
  /** A run whose tensors are still arriving. */
  receiving: Job | null;
  jobs: Set<Job>;
  debug: { abortAt?: string; stepDelayMs?: number } | null;
}

const sha = (s: string) => createHash('sha256').update(s).digest();
/** Constant-time: both sides hashed to the same length first. */
function tokenMatches(given: string, token: string): boolean {
  return timingSafeEqual(sha(given), sha(token));
}

export async function startAgent(cfg: AgentConfig): Promise<RunningAgent> {
  const limits: AgentLimits = { ...DEFAULT_LIMITS, ...cfg.limits };
  const token = cfg.token ?? randomBytes(32).toString('hex');
  const origins = new Set(cfg.allowedOrigins ?? DEFAULT_ORIGINS);
  const log = cfg.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const worker = new WorkerProcess({ path: cfg.workerPath, env: cfg.workerEnv, onLog: (l) => log(`worker: ${l}`) });
  let hello: WorkerHello = await worker.start();
  const queue: Job[] = [];
  let active: Job | null = null;
  const conns = new Set<Connection>();

  const http: Server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('fusionlab agent: connect with a WebSocket\n');
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxMessageBytes });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(cfg.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (http.address() as { port: number }).port;

  const refuse = (socket: Duplex, status: number, why: string) => {
    log(`refused a connection: ${why}`);
    socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Forbidden'}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${why}\n`);
  };
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const host = req.headers.host ?? '';
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) return refuse(socket, 403, `Host '${host.slice(0, 80)}' is not this agent`);
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.has(origin)) return refuse(socket, 403, `Origin '${origin.slice(0, 80)}' is not the app's`);
    const given = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
    if (!given || !tokenMatches(given, token)) return refuse(socket, 401, given ? 'wrong token' : 'no token');
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
  });

  function send(c: Connection, m: AgentMessage) {
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(m));
  }
  function sendError(c: Connection, code: ErrorCode, message: string, extra: { id?: string; node?: string; op?: string } = {}) {
    send(c, { type: 'error', code, message, ...extra });
  }

  /** Token bucket: `messagesPerSecond` sustained, twice that in a burst. */
  function allow(c: Connection): boolean {
    const now = Date.now();
    const cap = limits.messagesPerSecond * 2;
    c.bucket = Math.min(cap, c.bucket + ((now - c.lastRefill) / 1000) * limits.messagesPerSecond);
    c.lastRefill = now;
    if (c.bucket >= 1) { c.bucket -= 1; return true; }
    c.dropped++;
    if (now - c.lastRateError > 1000) {
      c.lastRateError = now;
      sendError(c, 'rate-limit', `more than ${limits.messagesPerSecond} messages a second; ${c.dropped} dropped`);
    }
    // A client that keeps flooding is cut off rather than served.
    if (c.dropped > limits.messagesPerSecond * 20) c.ws.close(1008, 'rate limit');
    return false;
  }

  function onConnection(ws: WebSocket) {
    const c: Connection = { ws, bucket: limits.messagesPerSecond * 2, lastRefill: Date.now(), lastRateError: 0, dropped: 0, receiving: null, jobs: new Set(), debug: null };
    conns.add(c);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      try {
        onMessage(c, data, isBinary);
      } catch (e) {
        // Never let one message take the agent down.
        sendError(c, 'bad-message', e instanceof Error ? e.message : String(e));
      }
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      conns.delete(c);
      for (const j of c.jobs) cancel(j, 'the client disconnected');
    });
  }

  function onMessage(c: Connection, data: RawData, isBinary: boolean) {
    // Tensors a run announced are already bounded by its input count; everything else is rate-limited.
    if (!(isBinary && c.receiving) && !allow(c)) return;
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    if (isBinary) {
      const j = c.receiving;
      if (!j) return sendError(c, 'protocol', 'a binary message arrived with no run waiting for tensors');
      const decl = j.msg.inputs[j.tensors.length];
      const want = decl.shape.reduce((a, b) => a * b, 1) * elemBytes(decl.dtype);
      if (buf.length !== want) {
        c.receiving = null;
        c.jobs.delete(j);
        return sendError(c, 'input', `input '${decl.name}': ${buf.length} bytes, but ${decl.dtype}[${decl.shape}] needs ${want}`, { id: j.id });
      }
      j.tensors.push(buf);
      if (j.tensors.length === j.msg.inputs.length) { c.receiving = null; enqueue(j); }
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(buf.toString('utf8'));
    } catch (e) {
      return sendError(c, 'bad-message', `not JSON: ${(e as Error).message.slice(0, 120)}`);
    }
    let m: ClientMessage;
    try {
      m = checkClientMessage(parsed, limits);
    } catch (e) {
      if (e instanceof ProtocolError) return sendError(c, e.code, e.message, e.id ? { id: e.id } : {});
      throw e;
    }
    switch (m.type) {
      case 'hello':
        return send(c, { type: 'hello', protocol: PROTOCOL_VERSION, agent: AGENT_VERSION, device: deviceOf(hello), limits });
      case 'cancel': {
        for (const j of c.jobs) if (j.id === m.id) cancel(j, 'cancelled by the client');
        return;
      }
      case 'debug':
        if (!cfg.debug) return sendError(c, 'unknown-type', "unknown message type 'debug'");
        c.debug = { abortAt: m.abortAt, stepDelayMs: m.stepDelayMs };
        return;
      case 'run': {
        if (c.receiving) return sendError(c, 'protocol', `run '${c.receiving.id}' is still waiting for ${c.receiving.msg.inputs.length - c.receiving.tensors.length} tensors`, { id: m.id });
        if ([...c.jobs].some((j) => j.id === m.id)) return sendError(c, 'protocol', `run '${m.id}' is already in progress`, { id: m.id });
        const waiting = queue.length + (active ? 1 : 0);
        if (waiting >= limits.maxQueuedRuns) return sendError(c, 'busy', `${waiting} runs are queued or running; the agent takes at most ${limits.maxQueuedRuns}`, { id: m.id });
        if (c.jobs.size >= 2) return sendError(c, 'busy', 'this connection already has 2 runs queued or running', { id: m.id });
        const j: Job = { conn: c, id: m.id, msg: m, tensors: [], cancelled: false };
        c.jobs.add(j);
        if (m.inputs.length) c.receiving = j;
        else enqueue(j);
        return;
      }
    }
  }

  function enqueue(j: Job) {
    queue.push(j);
    void pump();
  }

  function cancel(j: Job, why: string) {
    if (j.cancelled) return;
    j.cancelled = true;
    j.conn.jobs.delete(j);
    if (j.conn.receiving === j) j.conn.receiving = null;
    const q = queue.indexOf(j);
    if (q >= 0) queue.splice(q, 1);
    sendError(j.conn, 'cancelled', why, { id: j.id });
    // A run in the worker is stopped by ending the process: that frees its host and GPU memory.
    if (active === j) worker.kill();
  }

  async function pump() {
    if (active) return;
    const j = queue.shift();
    if (!j) return;
    active = j;
    try {
      await execute(j);
    } finally {
      active = null;
      j.conn.jobs.delete(j);
      void pump();
    }
  }

  async function execute(j: Job) {
    const c = j.conn;
    let lowered: LoweredProgram;
    let plan: Plan;
    try {
      plan = planFor(j.msg);
      const inputs = new Map<string, HostTensor>();
      j.msg.inputs.forEach((d, k) => inputs.set(d.name, tensorOf(d, j.tensors[k])));
      lowered = lowerPlan(plan, { id: j.id, seed: j.msg.options.seed ?? DEFAULT_SEED, inputs, maxDeviceBytes: limits.maxDeviceBytes });
      if (c.debug) {
        // Applies to the next run only; the worker ignores it unless started with FUSIONLAB_WORKER_DEBUG.
        if (c.debug.abortAt) lowered.program.abortAt = c.debug.abortAt;
        if (c.debug.stepDelayMs) lowered.program.stepDelayMs = c.debug.stepDelayMs;
        c.debug = null;
      }
      if (j.msg.options.forceFallback) lowered.program.forceFallback = true;
    } catch (e) {
      if (e instanceof RunError) return sendError(c, e.kind === 'input' ? 'input' : e.kind === 'limits' ? 'limits' : e.kind === 'unsupported-ops' ? 'unsupported-ops' : 'validation', e.message, { id: j.id, node: e.node, op: e.op });
      if (e instanceof ProtocolError) return sendError(c, e.code, e.message, { id: j.id });
      return sendError(c, 'validation', e instanceof Error ? e.message : String(e), { id: j.id });
    }
    if (j.cancelled) return;
    if (lowered.program.world > Math.max(1, hello?.gpus.length ?? 0) && hello?.mode === 'cuda') {
      return sendError(c, 'limits', `the run asks for ${lowered.program.world} ranks; this host has ${hello.gpus.length} GPUs`, { id: j.id });
    }
    let lastProgress = 0;
    const total = lowered.steps.length;
    try {
      hello = await worker.start();
      const reply = await worker.request(lowered.program, lowered.payload, (i) => {
        const now = Date.now();
        if (now - lastProgress > 100) { lastProgress = now; send(c, { type: 'progress', id: j.id, done: i, total }); }
      });
      if (j.cancelled) return;
      const h = reply.header;
      if (h.type === 'error') {
        const node = typeof h.node === 'string' ? h.node : undefined;
        const op = node ? lowered.steps.find((s) => s.node === node)?.op : undefined;
        // A CUDA error ends the worker (its context may be poisoned): start a clean one.
        const restarted = h.fatal === true;
        if (restarted) await worker.stop().then(() => worker.start()).then((w) => { hello = w; }, (e) => log(`worker restart failed: ${e}`));
        return sendError(c, 'worker', `${node ? `node ${node}${op ? ` (${op})` : ''}: ` : ''}${String(h.message)}${restarted ? '; the worker was restarted' : ''}`, { id: j.id, node, op });
      }
      deliver(c, j, lowered, plan, h, reply.payload);
    } catch (e) {
      if (!(e instanceof WorkerFailure)) throw e;
      // The process died: name the node it was running, start a fresh one for the next run.
      const step = e.step !== null ? lowered.steps[e.step] : undefined;
      void worker.start().then((w) => { hello = w; log('worker restarted'); }, (err) => log(`worker restart failed: ${err}`));
      if (j.cancelled) return;
      sendError(c, 'worker', `${step ? `node ${step.node} (${step.op}): ` : ''}${e.message} while running it; the worker was restarted`, { id: j.id, node: step?.node, op: step?.op });
    }
  }

  function planFor(m: Extract<ClientMessage, { type: 'run' }>): Plan {
    const o: RunOptionsWire = m.options;
    if (m.plan !== undefined) {
      const p = planFromWire(m.plan, { maxSteps: limits.maxGraphNodes * 4, maxStorages: limits.maxGraphNodes * 4, maxRanks: limits.maxRanks, maxElements: 2 ** 34 });
      if (p.ranks !== o.ranks || p.dtype !== o.dtype) throw new ProtocolError('bad-message', `plan.ranks/dtype (${p.ranks}, ${p.dtype}) differ from options (${o.ranks}, ${o.dtype})`);
      return p;
    }
    let g;
    try {
      g = graphFromJson(m.graph, { maxNodes: limits.maxGraphNodes });
    } catch (e) {
      throw new ProtocolError(/limit|at most/i.test((e as Error).message) ? 'limits' : 'bad-message', `run.graph: ${(e as Error).message}`);
    }
    return planGraph(g, { preset: o.preset, dtype: o.dtype, ranks: o.ranks, tokens: o.tokens });
  }

  function deliver(c: Connection, j: Job, lowered: LoweredProgram, plan: Plan, h: Record<string, unknown>, payload: Buffer) {
    const mode = h.mode === 'cuda' ? 'cuda' : 'cpu';
    const timing: TraceEvent['timing'] = mode === 'cuda' ? 'cuda-event' : 'host';
    const events: TraceEvent[] = [];
    const notes = new Set<string>();
    for (const t of h.trace as { rank: number; step: number; start_us: number; dur_us: number; note?: string }[]) {
      const s = lowered.steps[t.step];
      if (!s) continue;
      events.push({ rank: t.rank, node: s.node, op: s.op, kind: s.kind, start_us: t.start_us, dur_us: t.dur_us, bytesRead: s.bytesRead, bytesWritten: s.bytesWritten, timing });
      if (t.note && t.note !== 'nccl') notes.add(`${s.node}: ${t.note}`);
    }
    const dev = deviceOf(hello);
    const device = mode === 'cuda' && dev.gpus.length
      ? `${plan.ranks}× ${dev.gpus[0].name} (CUDA ${dev.cuda}, NCCL ${dev.nccl})`
      : `CPU (agent worker${dev.reason ? `: ${dev.reason}` : ''})`;
    const trace: Trace = { backend: 'agent', device, ranks: plan.ranks, events, fed: plan.fed, notes: [...notes] };
    const outs = h.outputs as { slot: number; rank: number; offset: number; bytes: number }[];
    const decls = [];
    const frames: Buffer[] = [];
    for (const o of outs) {
      const meta = lowered.outputs.find((x) => x.slot === o.slot);
      if (!meta) continue;
      decls.push({ rank: o.rank, name: meta.name, dtype: meta.dtype, shape: meta.shape });
      frames.push(payload.subarray(o.offset, o.offset + o.bytes));
    }
    send(c, { type: 'result', id: j.id, outputs: decls, trace });
    for (const f of frames) if (c.ws.readyState === c.ws.OPEN) c.ws.send(f, { binary: true });
  }

  return {
    port,
    token,
    wsUrl: `ws://127.0.0.1:${port}/?token=${token}`,
    appUrl: (appOrigin = 'http://127.0.0.1:5173') => `${appOrigin}/?agent=ws://127.0.0.1:${port}#token=${token}`,
    device: async () => deviceOf(hello ?? (await worker.start())),
    async close() {
      for (const c of conns) c.ws.terminate();
      wss.close();
      await new Promise<void>((r) => http.close(() => r()));
      await worker.stop();
    },
  };
}

function deviceOf(h: WorkerHello): DeviceInfo {
  return { mode: h.mode, reason: h.reason, gpus: h.gpus, cuda: h.cuda, nccl: h.nccl, peer: h.peer };
}

function tensorOf(d: InputDecl, b: Buffer): HostTensor {
  const copy = new Uint8Array(b).buffer;  // aligned, owned
  const data = d.dtype === 'bf16' ? new Uint16Array(copy) : d.dtype === 'f32' ? new Float32Array(copy) : new Int32Array(copy);
  return { dtype: d.dtype, shape: d.shape, data };
}
