// Why a connection to the agent failed, as the client tells it: the agent's refusal (its HTTP
// status, which Node's WebSocket names) rather than a guess.

import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { AgentClient, connectFailure } from './agentClient.ts';

let server: Server | null = null;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** A server that answers every upgrade as the agent does once its connections are all taken. */
async function fullAgent(): Promise<number> {
  server = createServer();
  server.on('upgrade', (_req, socket) =>
    socket.end(
      'HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n32 connections are open; this agent takes at most 32\n',
    ),
  );
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return (server.address() as { port: number }).port;
}

describe('the agent client when the agent refuses', () => {
  it('says the agent is busy when it answered 503, not that it may be down or the token wrong', async () => {
    const port = await fullAgent();
    const url = `ws://127.0.0.1:${port}`;
    await expect(AgentClient.connect({ url, token: 't' }, { webSocket: WebSocket })).rejects.toThrow(
      `the agent at ${url} is busy: all its connections are taken (HTTP 503); try again once a client closes`,
    );
  });

  it('names a refused token and origin; without a status (a browser) keeps the general question', () => {
    expect(connectFailure('ws://a', 'Unexpected server response: 401')).toContain(
      'refused the token (HTTP 401)',
    );
    expect(connectFailure('ws://a', 'Unexpected server response: 403')).toContain(
      'origin or host (HTTP 403)',
    );
    expect(connectFailure('ws://a', undefined)).toBe(
      'cannot connect to the agent at ws://a (is it running, and is the token right?)',
    );
  });
});
