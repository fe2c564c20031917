// One client's WebSocket: the runs it has announced, its message rate, and the messages waiting
// their turn (a connection's messages are handled one at a time, in order).

import type { RawData, WebSocket } from 'ws';
import type { ErrorReplyFields, ParsedMessage } from '../preparation.ts';
import type { AgentLimits, AgentMessage, ErrorCode } from '../../src/runtime/agentProtocol.ts';

export type RunMessage = Extract<ParsedMessage, { type: 'run' }>;

export interface Job {
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

export interface Connection {
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

/** Handles one message; a promise while it is being parsed in the thread. */
export type MessageHandler = (c: Connection, data: Buffer, isBinary: boolean) => Promise<void> | void;

/** A new connection over `ws`: its messages go to `handle` in order, and `onClose` runs when it closes. */
export function openConnection(
  ws: WebSocket,
  limits: AgentLimits,
  handle: MessageHandler,
  onClose: (c: Connection) => void,
): Connection {
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
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    c.inbox.push({ data: buf, isBinary });
    void drain(c, handle);
  });
  ws.on('error', () => {});
  ws.on('close', () => {
    c.inbox.length = 0;
    onClose(c);
  });
  return c;
}

/** Handles a connection's messages in order; while one waits on the thread the socket is paused. */
async function drain(c: Connection, handle: MessageHandler) {
  if (c.busy) return;
  c.busy = true;
  try {
    while (c.inbox.length) {
      const { data, isBinary } = c.inbox.shift()!;
      try {
        const wait = handle(c, data, isBinary);
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

export function send(c: Connection, m: AgentMessage) {
  if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(m));
}

export function sendError(
  c: Connection,
  code: ErrorCode,
  message: string,
  extra: { id?: string; node?: string; op?: string } = {},
) {
  send(c, { type: 'error', code, message, ...extra });
}

export const sendReply = (c: Connection, e: ErrorReplyFields) =>
  sendError(c, e.code, e.message, { id: e.id, node: e.node, op: e.op });

/** Token bucket: `messagesPerSecond` sustained, twice that in a burst. */
export function allowMessage(c: Connection, limits: AgentLimits): boolean {
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
