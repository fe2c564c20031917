// The WebSocket handshake: who may connect. A web page the user happens to visit must not be able
// to drive the agent, so a connection needs the one-time token and, when a browser sends an
// Origin, the app's Origin; the Host header must name this loopback address (no DNS rebinding).

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export interface HandshakeRules {
  port: number;
  token: string;
  origins: Set<string>;
  /** Connections open now, and how many the agent takes. */
  open: number;
  maxConnections: number;
}

export interface Refusal {
  status: 401 | 403 | 503;
  why: string;
}

const STATUS_TEXT: Record<Refusal['status'], string> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  503: 'Service Unavailable',
};

const sha = (s: string) => createHash('sha256').update(s).digest();
/** Constant-time: both sides hashed to the same length first. */
function tokenMatches(given: string, token: string): boolean {
  return timingSafeEqual(sha(given), sha(token));
}

/** Why this upgrade request may not become a connection; null when it may. */
export function handshakeRefusal(req: IncomingMessage, rules: HandshakeRules): Refusal | null {
  const host = req.headers.host ?? '';
  if (host !== `127.0.0.1:${rules.port}` && host !== `localhost:${rules.port}`)
    return { status: 403, why: `Host '${host.slice(0, 80)}' is not this agent` };
  const origin = req.headers.origin;
  if (origin !== undefined && !rules.origins.has(origin))
    return { status: 403, why: `Origin '${origin.slice(0, 80)}' is not the app's` };
  const given = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
  if (!given || !tokenMatches(given, rules.token))
    return { status: 401, why: given ? 'wrong token' : 'no token' };
  if (rules.open >= rules.maxConnections)
    return {
      status: 503,
      why: `${rules.open} connections are open; this agent takes at most ${rules.maxConnections}`,
    };
  return null;
}

/** Answers the upgrade with the refusal's status and reason, and closes the socket. */
export function refuseUpgrade(socket: Duplex, r: Refusal): void {
  socket.end(
    `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status]}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${r.why}\n`,
  );
}

/**
 * Answers a probe (HANDSHAKE_PROBE_PATH) with what the upgrade would get now: 204 where it would be taken, else the
 * refusal's status and reason. Any page may read the answer: one from a foreign origin (or host)
 * learns only that it is refused, before its token is looked at.
 */
export function answerProbe(res: ServerResponse, r: Refusal | null): void {
  res
    .writeHead(r ? r.status : 204, {
      'content-type': 'text/plain',
      'access-control-allow-origin': '*',
      'cache-control': 'no-store',
    })
    .end(r ? `${r.why}\n` : undefined);
}
