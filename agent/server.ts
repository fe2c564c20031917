// The companion agent: a WebSocket server on 127.0.0.1 that runs graphs on this machine's GPUs
// through the native worker. A web page the user happens to visit must not be able to drive
// it, so every connection needs the one-time token and, when a browser sends an Origin, the
// app's Origin; the Host header must name this loopback address (no DNS rebinding). Messages
// are bounded in size and rate, connections and runs in number, the host memory runs' inputs
// take is admitted when they are announced, and every message is schema-checked. Large messages
// are parsed, and every run planned, in a worker thread, so no client's message holds up another's.
// The parts are in agent/server/: the handshake, a connection, its messages, the run queue.

import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { totalmem } from 'node:os';
import { WebSocketServer } from 'ws';
import { WorkerProcess } from './workerProcess.ts';
import { PreparationThread } from './preparation.ts';
import { HANDSHAKE_PROBE_PATH, type AgentLimits, type DeviceInfo } from '../src/runtime/agentProtocol.ts';
import { openConnection, type Connection } from './server/connection.ts';
import { answerProbe, handshakeRefusal, refuseUpgrade } from './server/handshake.ts';
import { messageHandler } from './server/messages.ts';
import { RunQueue } from './server/runQueue.ts';

export { AGENT_VERSION } from './server/messages.ts';

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
  const hello = await worker.start();
  const thread = new PreparationThread(log);
  const runs = new RunQueue(worker, hello, thread, limits, log);
  const conns = new Set<Connection>();
  const handle = messageHandler({ limits, thread, runs, conns, debug: cfg.debug ?? false });

  // The port is known once listening; the probe is answered only after that.
  let port = 0;
  const rules = () => ({ port, token, origins, open: conns.size, maxConnections: limits.maxConnections });
  const http: Server = createServer((req, res) => {
    if (req.method === 'GET' && new URL(req.url ?? '/', 'http://x').pathname === HANDSHAKE_PROBE_PATH)
      return answerProbe(res, handshakeRefusal(req, rules()));
    res.writeHead(426, { 'content-type': 'text/plain' }).end('fusionlab agent: connect with a WebSocket\n');
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxMessageBytes });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(cfg.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (http.address() as { port: number }).port;

  http.on('upgrade', (req, socket, head) => {
    socket.on('error', () => {});
    const refusal = handshakeRefusal(req, rules());
    if (refusal) {
      log(`refused a connection: ${refusal.why}`);
      return refuseUpgrade(socket, refusal);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const c = openConnection(ws, limits, handle, () => {
        conns.delete(c);
        for (const j of [...c.jobs]) runs.cancel(j, 'the client disconnected');
      });
      conns.add(c);
    });
  });

  return {
    port,
    token,
    limits,
    wsUrl: `ws://127.0.0.1:${port}/?token=${token}`,
    appUrl: (appOrigin = 'http://127.0.0.1:5173') =>
      `${appOrigin}/?agent=ws://127.0.0.1:${port}#token=${token}`,
    device: () => runs.device(),
    async close() {
      for (const c of conns) c.ws.terminate();
      wss.close();
      await new Promise<void>((r) => http.close(() => r()));
      await thread.close();
      await worker.stop();
    },
  };
}
