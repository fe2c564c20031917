// What the agent does with each client message: schema-checked JSON (small messages parsed here,
// large ones in the preparation thread, so no client's message holds up another's) or a run's
// input tensors as binary messages.

import {
  INLINE_PARSE_BYTES,
  parseMessage,
  type ParsedMessage,
  type PreparationThread,
} from '../preparation.ts';
import { PROTOCOL_VERSION, type AgentLimits } from '../../src/runtime/agentProtocol.ts';
import {
  allowMessage,
  send,
  sendError,
  sendReply,
  type Connection,
  type MessageHandler,
} from './connection.ts';
import { receiveTensorBytes } from './inputTensors.ts';
import { deviceOf, type RunQueue } from './runQueue.ts';

export const AGENT_VERSION = 'fusionlab-agent 0.1.0';

export interface MessageContext {
  limits: AgentLimits;
  thread: PreparationThread;
  runs: RunQueue;
  /** The open connections: a message parsed after its client left admits nothing. */
  conns: Set<Connection>;
  /** Accept `debug` messages (tests make the worker abort at a node with them). */
  debug: boolean;
}

/** The handler of every connection's messages; returns a promise while one is parsed in the thread. */
export function messageHandler(ctx: MessageContext): MessageHandler {
  return (c, data, isBinary) => {
    // Tensors a run announced were admitted with it; everything else is rate-limited.
    if (!(isBinary && c.receiving) && !allowMessage(c, ctx.limits)) return;
    if (isBinary) return onTensorBytes(ctx, c, data);
    if (data.length <= INLINE_PARSE_BYTES) {
      const m = parseMessage(data, ctx.limits);
      if ('code' in m) return sendReply(c, m);
      if (m.type !== 'run') return onParsed(ctx, c, m);
      const { graph, plan, ...rest } = m;
      return onParsed(ctx, c, { ...rest, body: { graph, plan } });
    }
    return ctx.thread.parse(data, ctx.limits).then(
      (m) => ('code' in m ? sendReply(c, m) : onParsed(ctx, c, m)),
      (e: Error) => sendError(c, 'bad-message', e.message),
    );
  };
}

/** A binary message: the next tensor of the run receiving them, whole or in chunks. */
function onTensorBytes(ctx: MessageContext, c: Connection, data: Buffer) {
  const j = c.receiving;
  if (!j) return sendError(c, 'protocol', 'a binary message arrived with no run waiting for tensors');
  const receipt = receiveTensorBytes(j, data, ctx.limits.maxMessageBytes);
  if (receipt.kind === 'refused') {
    ctx.runs.release(j);
    c.receiving = null;
    c.jobs.delete(j);
    j.cancelled = true;
    return sendError(c, 'input', receipt.message, { id: j.id });
  }
  if (receipt.kind === 'complete') {
    c.receiving = null;
    ctx.runs.enqueue(j);
  }
}

function onParsed(ctx: MessageContext, c: Connection, m: ParsedMessage) {
  // The client may have left while its message was parsed in the thread: admit nothing for it.
  if (!ctx.conns.has(c)) {
    if (m.type === 'run') ctx.thread.drop(m.body);
    return;
  }
  switch (m.type) {
    case 'hello':
      return send(c, {
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        agent: AGENT_VERSION,
        device: deviceOf(ctx.runs.hello),
        limits: ctx.limits,
      });
    case 'cancel': {
      for (const j of [...c.jobs]) if (j.id === m.id) ctx.runs.cancel(j, 'cancelled by the client');
      return;
    }
    case 'debug':
      if (!ctx.debug) return sendError(c, 'unknown-type', "unknown message type 'debug'");
      c.debug = { abortAt: m.abortAt, stepDelayMs: m.stepDelayMs };
      return;
    case 'run': {
      const j = ctx.runs.admit(c, m);
      if ('code' in j) {
        ctx.thread.drop(m.body);
        return sendError(c, j.code, j.why, { id: m.id });
      }
      if (m.inputs.length) c.receiving = j;
      else ctx.runs.enqueue(j);
      return;
    }
  }
}
