// The companion agent: a WebSocket server on 127.0.0.1 that runs graphs on this machine's GPUs
// through the native worker. A web page the user happens to visit must not be able to drive
// it, so every connection needs the one-time token and, when a browser sends an Origin, the
// app's Origin; the Host header must name this loopback address (no DNS rebinding). Messages
// are bounded in size and rate, connections and runs in number, the host memory runs' inputs
// take is admitted when they are announced, and every message is schema-checked. Large messages
// are parsed, and every run planned, in a worker thread, so no client's message holds up another's.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { totalmem } from 'node:os';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { WorkerProcess, WorkerFailure, type WorkerHello } from './workerProcess.ts';
import {
  INLINE_PARSE_BYTES,
  PreparationThread,
  ownBuffer,
  parseMessage,
  type ErrorReplyFields,
  type ParsedMessage,
  type PreparedRun,
} from './preparation.ts';
import {
  PROTOCOL_VERSION,
  inputHostBytes,
  tensorBytes,
  type AgentLimits,
  type AgentMessage,
  type DeviceInfo,
  type ErrorCode,
} from '../src/runtime/agentProtocol.ts';

export const AGENT_VERSION = 'fusionlab-agent 0.1.0';

/** The app's dev and preview origins. */
export const DEFAULT_ORIGINS = [
  'http://127.0.0.1:5173',
  'http://127.0.0.1:4173',
  'http://localhost:5173',
  'http://localhost:4173',
];

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

/** Half of this host's memory for what runs hold on the host: the rest is the system's and the GPUs' staging. */
const HOST_SHARE = 0.5;

export const DEFAULT_LIMITS: AgentLimits = {
  // Copying and unmasking one message blocks the event loop; 16 MiB keeps that to a few ms.
  maxMessageBytes: 16 * 2 ** 20,
  maxGraphNodes: 200_000,
  maxInputs: 4096,
  maxRanks: 8,
  messagesPerSecond: 200,
  maxQueuedRuns: 8,
  maxDeviceBytes: 64 * 2 ** 30,
  maxConnections: 32,
  maxRunHostBytes: Math.floor((totalmem() * HOST_SHARE) / 2),
  maxHostBytes: Math.floor(totalmem() * HOST_SHARE),
};

export interface RunningAgent {
  port: number;
  token: string;
  limits: AgentLimits;
  /** ws://127.0.0.1:PORT/?token=… */
  wsUrl: string;
  /** The app URL that selects this agent: `${appOrigin}/?agent=ws://127.0.0.1:PORT#token=…`. */
  appUrl(appOrigin?: string): string;
  device(): Promise<DeviceInfo>;
  close(): Promise<void>;
}

type RunMessage = Extract<ParsedMessage, { type: 'run' }>;

interface Job {
  conn: Connection;
  id: string;
  msg: RunMessage;
  /** One per announced input, each whole; `partial` is the one being filled chunk by chunk. */
  tensors: ArrayBuffer[];
  partial: { bytes: Uint8Array; filled: number } | null;
  /** Host bytes admitted for this run (released when it ends, however it ends). */
  admitted: number;
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
  /** Messages that arrived while an earlier one was being parsed in the thread; the socket is paused meanwhile. */
  inbox: { data: Buffer; isBinary: boolean }[];
  busy: boolean;
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
  const worker = new WorkerProcess({
    path: cfg.workerPath,
    env: cfg.workerEnv,
    onLog: (l) => log(`worker: ${l}`),
    maxReplyBytes: limits.maxHostBytes,
  });
  let hello: WorkerHello = await worker.start();
  const thread = new PreparationThread(log);
  const queue: Job[] = [];
  let active: Job | null = null;
  const conns = new Set<Connection>();
  /** Host bytes admitted for the inputs of every run not yet ended. */
  let admittedBytes = 0;

  const http: Server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('fusionlab agent: connect with a WebSocket\n');
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxMessageBytes });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(cfg.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (http.address() as { port: number }).port;

  const STATUS_TEXT: Record<401 | 403 | 503, string> = {
    401: 'Unauthorized',
    403: 'Forbidden',
    503: 'Service Unavailable',
  };
  const refuse = (socket: Duplex, status: 401 | 403 | 503, why: string) => {
    log(`refused a connection: ${why}`);
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${why}\n`,
    );
  };
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const host = req.headers.host ?? '';
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`)
      return refuse(socket, 403, `Host '${host.slice(0, 80)}' is not this agent`);
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.has(origin))
      return refuse(socket, 403, `Origin '${origin.slice(0, 80)}' is not the app's`);
    const given = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
    if (!given || !tokenMatches(given, token)) return refuse(socket, 401, given ? 'wrong token' : 'no token');
    if (conns.size >= limits.maxConnections)
      return refuse(
        socket,
        503,
        `${conns.size} connections are open; this agent takes at most ${limits.maxConnections}`,
      );
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
  });

  function send(c: Connection, m: AgentMessage) {
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(m));
  }
  function sendError(
    c: Connection,
    code: ErrorCode,
    message: string,
    extra: { id?: string; node?: string; op?: string } = {},
  ) {
    send(c, { type: 'error', code, message, ...extra });
  }
  const sendReply = (c: Connection, e: ErrorReplyFields) =>
    sendError(c, e.code, e.message, { id: e.id, node: e.node, op: e.op });

  /** Token bucket: `messagesPerSecond` sustained, twice that in a burst. */
  function allow(c: Connection): boolean {
    const now = Date.now();
    const cap = limits.messagesPerSecond * 2;
    c.bucket = Math.min(cap, c.bucket + ((now - c.lastRefill) / 1000) * limits.messagesPerSecond);
    c.lastRefill = now;
    if (c.bucket >= 1) {
      c.bucket -= 1;
      return true;
    }
    c.dropped++;
    if (now - c.lastRateError > 1000) {
      c.lastRateError = now;
      sendError(
        c,
        'rate-limit',
        `more than ${limits.messagesPerSecond} messages a second; ${c.dropped} dropped`,
      );
    }
    // A client that keeps flooding is cut off rather than served.
    if (c.dropped > limits.messagesPerSecond * 20) c.ws.close(1008, 'rate limit');
    return false;
  }

  function onConnection(ws: WebSocket) {
    const c: Connection = {
      ws,
      bucket: limits.messagesPerSecond * 2,
      lastRefill: Date.now(),
      lastRateError: 0,
      dropped: 0,
      receiving: null,
      jobs: new Set(),
      debug: null,
      inbox: [],
      busy: false,
    };
    conns.add(c);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      c.inbox.push({ data: buf, isBinary });
      void drain(c);
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      conns.delete(c);
      c.inbox.length = 0;
      for (const j of [...c.jobs]) cancel(j, 'the client disconnected');
    });
  }

  /** Handles a connection's messages in order; while one waits on the thread the socket is paused. */
  async function drain(c: Connection) {
    if (c.busy) return;
    c.busy = true;
    try {
      while (c.inbox.length) {
        const { data, isBinary } = c.inbox.shift()!;
        try {
          const wait = onMessage(c, data, isBinary);
          if (wait) {
            c.ws.pause();
            await wait;
            c.ws.resume();
          }
        } catch (e) {
          // Never let one message take the agent down.
          sendError(c, 'bad-message', e instanceof Error ? e.message.split('\n')[0] : String(e));
        }
      }
    } finally {
      c.busy = false;
    }
  }

  /** Returns a promise when the message is being parsed in the thread. */
  function onMessage(c: Connection, data: Buffer, isBinary: boolean): Promise<void> | void {
    // Tensors a run announced were admitted with it; everything else is rate-limited.
    if (!(isBinary && c.receiving) && !allow(c)) return;
    if (isBinary) return onTensorBytes(c, data);
    if (data.length <= INLINE_PARSE_BYTES) {
      const m = parseMessage(data, limits);
      if ('code' in m) return sendReply(c, m);
      if (m.type !== 'run') return onParsed(c, m);
      const { graph, plan, ...rest } = m;
      return onParsed(c, { ...rest, body: { graph, plan } });
    }
    return thread.parse(data, limits).then(
      (m) => ('code' in m ? sendReply(c, m) : onParsed(c, m)),
      (e: Error) => sendError(c, 'bad-message', e.message),
    );
  }

  /** A binary message: the next tensor of the run receiving them, whole or in chunks. */
  function onTensorBytes(c: Connection, data: Buffer) {
    const j = c.receiving;
    if (!j) return sendError(c, 'protocol', 'a binary message arrived with no run waiting for tensors');
    const decl = j.msg.inputs[j.tensors.length];
    const want = tensorBytes(decl);
    const refuse = (why: string) => {
      release(j);
      c.receiving = null;
      c.jobs.delete(j);
      j.cancelled = true;
      sendError(c, 'input', `input '${decl.name}': ${why}`, { id: j.id });
    };
    if (!j.partial && data.length === want) {
      j.tensors.push(ownBuffer(data));
    } else {
      if (!j.partial) {
        if (data.length !== limits.maxMessageBytes || data.length > want) {
          return refuse(
            `${data.length} bytes, but ${decl.dtype}[${decl.shape}] needs ${want}${want > limits.maxMessageBytes ? ` (sent in messages of ${limits.maxMessageBytes} bytes but the last)` : ''}`,
          );
        }
        // Allocated at the announced size, which was admitted: pages are touched only as bytes arrive.
        j.partial = { bytes: new Uint8Array(want), filled: 0 };
      }
      const p = j.partial;
      const last = p.filled + data.length === want;
      if (p.filled + data.length > want || (!last && data.length !== limits.maxMessageBytes)) {
        return refuse(
          `a chunk of ${data.length} bytes after ${p.filled} of ${want}; chunks are ${limits.maxMessageBytes} bytes but the last`,
        );
      }
      p.bytes.set(data, p.filled);
      p.filled += data.length;
      if (!last) return;
      j.tensors.push(p.bytes.buffer as ArrayBuffer);
      j.partial = null;
    }
    if (j.tensors.length === j.msg.inputs.length) {
      c.receiving = null;
      enqueue(j);
    }
  }

  function onParsed(c: Connection, m: ParsedMessage) {
    // The client may have left while its message was parsed in the thread: admit nothing for it.
    if (!conns.has(c)) {
      if (m.type === 'run') thread.drop(m.body);
      return;
    }
    switch (m.type) {
      case 'hello':
        return send(c, {
          type: 'hello',
          protocol: PROTOCOL_VERSION,
          agent: AGENT_VERSION,
          device: deviceOf(hello),
          limits,
        });
      case 'cancel': {
        for (const j of [...c.jobs]) if (j.id === m.id) cancel(j, 'cancelled by the client');
        return;
      }
      case 'debug':
        if (!cfg.debug) return sendError(c, 'unknown-type', "unknown message type 'debug'");
        c.debug = { abortAt: m.abortAt, stepDelayMs: m.stepDelayMs };
        return;
      case 'run': {
        const refuse = (code: ErrorCode, why: string) => {
          thread.drop(m.body);
          sendError(c, code, why, { id: m.id });
        };
        if (c.receiving)
          return refuse(
            'protocol',
            `run '${c.receiving.id}' is still waiting for ${c.receiving.msg.inputs.length - c.receiving.tensors.length} tensors`,
          );
        if ([...c.jobs].some((j) => j.id === m.id))
          return refuse('protocol', `run '${m.id}' is already in progress`);
        const waiting = queue.length + (active ? 1 : 0);
        if (waiting >= limits.maxQueuedRuns)
          return refuse(
            'busy',
            `${waiting} runs are queued or running; the agent takes at most ${limits.maxQueuedRuns}`,
          );
        if (c.jobs.size >= 2) return refuse('busy', 'this connection already has 2 runs queued or running');
        // Admitted now, before any of its bytes is buffered.
        const need = inputHostBytes(m.inputs);
        const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
        if (need > limits.maxRunHostBytes) {
          return refuse(
            'limits',
            `the run's inputs need ${mib(need)} of host memory (the bytes sent and the worker's f32 copy); this agent takes at most ${mib(limits.maxRunHostBytes)} a run`,
          );
        }
        if (admittedBytes + need > limits.maxHostBytes) {
          return refuse(
            'busy',
            `the run's inputs need ${mib(need)} of host memory and other runs hold ${mib(admittedBytes)} of the ${mib(limits.maxHostBytes)} this agent admits; try again when they end`,
          );
        }
        admittedBytes += need;
        const j: Job = {
          conn: c,
          id: m.id,
          msg: m,
          tensors: [],
          partial: null,
          admitted: need,
          cancelled: false,
        };
        c.jobs.add(j);
        if (m.inputs.length) c.receiving = j;
        else enqueue(j);
        return;
      }
    }
  }

  /** Gives back a run's admitted bytes and drops what it holds (once). */
  function release(j: Job) {
    admittedBytes -= j.admitted;
    j.admitted = 0;
    j.tensors = [];
    j.partial = null;
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
    if (q >= 0) {
      queue.splice(q, 1);
      thread.drop(j.msg.body);
    }
    if (active !== j) release(j);
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
    } catch (e) {
      log(`run ${j.id} failed: ${e instanceof Error ? e.message : String(e)}`);
      sendError(
        j.conn,
        'worker',
        `the run failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
        { id: j.id },
      );
    } finally {
      active = null;
      release(j);
      j.conn.jobs.delete(j);
      void pump();
    }
  }

  async function execute(j: Job) {
    const c = j.conn;
    const tensors = j.tensors;
    j.tensors = []; // transferred to the thread: the agent holds each input once
    // Applies to the next run only; the worker ignores it unless started with FUSIONLAB_WORKER_DEBUG.
    const debug = c.debug ?? undefined;
    c.debug = null;
    const prepared = await thread
      .prepare({
        id: j.id,
        body: j.msg.body,
        options: j.msg.options,
        inputs: j.msg.inputs,
        tensors,
        limits,
        debug,
      })
      .catch((e: Error): ErrorReplyFields => ({ code: 'validation', message: e.message, id: j.id }));
    if ('code' in prepared) return sendReply(c, prepared);
    try {
      await runPrepared(j, prepared);
    } finally {
      thread.forget(prepared.key);
    }
  }

  async function runPrepared(j: Job, p: PreparedRun) {
    const c = j.conn;
    if (j.cancelled) return;
    if (hello?.mode === 'cpu') {
      // The CPU worker keeps every buffer in host memory, as f32.
      const slotBytes = p.slotElements * 4 * p.world;
      if (admittedBytes + slotBytes > limits.maxHostBytes) {
        return sendError(
          c,
          'limits',
          `the run needs ${(slotBytes / 2 ** 20).toFixed(1)} MiB of host memory for the CPU worker's f32 buffers over ${p.world} ranks; with the inputs of admitted runs (${(admittedBytes / 2 ** 20).toFixed(1)} MiB) that is over the ${(limits.maxHostBytes / 2 ** 20).toFixed(0)} MiB this agent admits`,
          { id: j.id },
        );
      }
      // Held while it runs, so runs announced meanwhile are admitted against what is left.
      admittedBytes += slotBytes;
      j.admitted += slotBytes;
    }
    if (p.world > Math.max(1, hello?.gpus.length ?? 0) && hello?.mode === 'cuda') {
      return sendError(
        c,
        'limits',
        `the run asks for ${p.world} ranks; this host has ${hello.gpus.length} GPUs`,
        { id: j.id },
      );
    }
    let lastProgress = 0;
    try {
      hello = await worker.start();
      const reply = await worker.request(p.request, p.payload, (i) => {
        const now = Date.now();
        if (now - lastProgress > 100) {
          lastProgress = now;
          send(c, { type: 'progress', id: j.id, done: i, total: p.steps });
        }
      });
      if (j.cancelled) return;
      const h = reply.header;
      if (h.type === 'error') {
        const node = typeof h.node === 'string' ? h.node : undefined;
        const op = node ? (await thread.where(p.key, { node })).op : undefined;
        // A CUDA error ends the worker (its context may be poisoned): start a clean one.
        const restarted = h.fatal === true;
        if (restarted)
          await worker
            .stop()
            .then(() => worker.start())
            .then(
              (w) => {
                hello = w;
              },
              (e) => log(`worker restart failed: ${e}`),
            );
        return sendError(
          c,
          'worker',
          `${node ? `node ${node}${op ? ` (${op})` : ''}: ` : ''}${String(h.message)}${restarted ? '; the worker was restarted' : ''}`,
          { id: j.id, node, op },
        );
      }
      // The result message (its trace has an event per step and rank) is built in the thread.
      const d = await thread.deliver(p.key, j.id, reply.rawHeader, deviceOf(hello));
      if ('code' in d) return sendReply(c, d);
      if (j.cancelled || c.ws.readyState !== c.ws.OPEN) return;
      c.ws.send(d.message, { binary: false });
      for (const [offset, bytes] of d.frames)
        if (c.ws.readyState === c.ws.OPEN)
          c.ws.send(reply.payload.subarray(offset, offset + bytes), { binary: true });
    } catch (e) {
      if (!(e instanceof WorkerFailure)) throw e;
      // The process died: name the node it was running, start a fresh one for the next run.
      const step = e.step !== null ? await thread.where(p.key, { step: e.step }) : {};
      void worker.start().then(
        (w) => {
          hello = w;
          log('worker restarted');
        },
        (err) => log(`worker restart failed: ${err}`),
      );
      if (j.cancelled) return;
      sendError(
        c,
        'worker',
        `${step.node ? `node ${step.node} (${step.op}): ` : ''}${e.message} while running it; the worker was restarted`,
        { id: j.id, node: step.node, op: step.op },
      );
    }
  }

  return {
    port,
    token,
    limits,
    wsUrl: `ws://127.0.0.1:${port}/?token=${token}`,
    appUrl: (appOrigin = 'http://127.0.0.1:5173') =>
      `${appOrigin}/?agent=ws://127.0.0.1:${port}#token=${token}`,
    device: async () => deviceOf(hello ?? (await worker.start())),
    async close() {
      for (const c of conns) c.ws.terminate();
      wss.close();
      await new Promise<void>((r) => http.close(() => r()));
      await thread.close();
      await worker.stop();
    },
  };
}

function deviceOf(h: WorkerHello): DeviceInfo {
  return { mode: h.mode, reason: h.reason, gpus: h.gpus, cuda: h.cuda, nccl: h.nccl, peer: h.peer };
}
