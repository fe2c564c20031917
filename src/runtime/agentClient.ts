// The `agent` backend: runs a plan on the companion agent's native worker (CUDA GPUs, or its
// CPU mode) over a WebSocket, and returns outputs and a trace in the same shapes as the
// WebGPU and CPU backends, so tables and timelines show the runs side by side.
// Works in the browser (global WebSocket) and in Node (npm `ws`, loaded on demand).

import type { Graph } from '../graph/ir.ts';
import { graphToJson } from '../graph/json.ts';
import type { Backend, RunOptions, RunResult } from './backend.ts';
import type { Plan } from './plan.ts';
import type { HostTensor } from './hostTensor.ts';
import { RunError } from './runError.ts';
import {
  HANDSHAKE_PROBE_PATH,
  type AgentMessage,
  type HelloReply,
  type InputDecl,
  type OutputDecl,
  type RunOptionsWire,
} from './agentProtocol.ts';

export interface AgentAddress {
  url: string;
  token: string;
}

/** `?agent=ws://127.0.0.1:PORT#token=…` in the app's address, as `npm run agent` prints it. */
export function agentAddressFromLocation(href: string): AgentAddress | null {
  const u = new URL(href);
  const agent = u.searchParams.get('agent');
  const token = new URLSearchParams(u.hash.replace(/^#/, '')).get('token');
  if (!agent || !token) return null;
  if (!/^ws:\/\/(127\.0\.0\.1|localhost):\d{1,5}\/?$/.test(agent)) return null; // loopback only
  return { url: agent.replace(/\/$/, ''), token };
}

/** The plan in JSON: Maps become lists; the preset goes by name. */
export function planToWire(plan: Plan): object {
  return {
    graph: plan.graph,
    preset: plan.preset.name,
    dtype: plan.dtype,
    ranks: plan.ranks,
    mesh: plan.mesh,
    tokens: plan.tokens,
    storages: [...plan.storages.values()],
    steps: plan.steps,
    outputs: plan.outputs,
    fed: plan.fed,
  };
}

type Socket = {
  binaryType: string;
  readyState: number;
  send(d: string | ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  addEventListener(
    t: string,
    f: (ev: { data?: unknown; code?: number; reason?: string; message?: string }) => void,
  ): void;
};

/**
 * What the agent's refusal of the handshake means (agent/server/handshake.ts). Node's `ws` names
 * the HTTP status in its error ("Unexpected server response: 503"); a browser's WebSocket hides
 * it, so there the client asks the agent again over HTTP (probeFailure).
 */
const REFUSALS: Record<401 | 403 | 503, string> = {
  401: 'refused the token (HTTP 401): use the link `npm run agent` printed for this run of the agent',
  403: "refused this page's origin or host (HTTP 403)",
  503: 'is busy: all its connections are taken (HTTP 503); try again once a client closes',
};

const isRefusal = (status: number): status is keyof typeof REFUSALS =>
  status === 401 || status === 403 || status === 503;

/** The reason a handshake failed, from the error's text where it names the agent's status. */
export function connectFailure(url: string, errorText: string | undefined): string {
  const status = Number(/Unexpected server response: (\d{3})/.exec(errorText ?? '')?.[1]);
  if (isRefusal(status)) return `the agent at ${url} ${REFUSALS[status]}`;
  return `cannot connect to the agent at ${url} (is it running, and is the token right?)`;
}

/** How long the probe after a failed handshake may take: the agent answers it at once. */
const PROBE_TIMEOUT_MS = 3_000;

/**
 * Why a handshake whose status the WebSocket hid (a browser's) failed: the agent is asked again
 * over HTTP (HANDSHAKE_PROBE_PATH). Nothing answering means nothing listens there.
 */
export async function probeFailure(addr: AgentAddress): Promise<string> {
  const http = addr.url.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/+$/, '');
  let status: number;
  try {
    const res = await fetch(`${http}${HANDSHAKE_PROBE_PATH}?token=${encodeURIComponent(addr.token)}`, {
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      cache: 'no-store',
    });
    status = res.status;
  } catch {
    return `cannot connect to the agent at ${addr.url}: nothing answers there (is \`npm run agent\` running, on this port?)`;
  }
  if (isRefusal(status)) return `the agent at ${addr.url} ${REFUSALS[status]}`;
  // Answered, and would take a connection now: the refusal was momentary (a client closed since).
  return `cannot connect to the agent at ${addr.url}: its WebSocket failed, though it answers and would take a connection now; try again`;
}

interface PendingRun {
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
  onProgress?: RunOptions['onProgress'];
  result?: Extract<AgentMessage, { type: 'result' }>;
  frames: ArrayBuffer[];
}

export class AgentClient {
  private runs = new Map<string, PendingRun>();
  /** The run whose output tensors are arriving (binary messages follow its result). */
  private receiving: string | null = null;
  private seq = 0;
  private closed: Error | null = null;

  private constructor(
    private readonly ws: Socket,
    readonly hello: HelloReply,
  ) {}

  /** `webSocket`: a Node WebSocket class (npm `ws`) to use instead of loading one (bundles pass theirs). */
  static async connect(
    addr: AgentAddress,
    opts: { origin?: string; timeoutMs?: number; webSocket?: unknown } = {},
  ): Promise<AgentClient> {
    const url = `${addr.url}/?token=${encodeURIComponent(addr.token)}`;
    const WS = (globalThis as { WebSocket?: new (u: string) => Socket }).WebSocket;
    let ws: Socket;
    if (opts.webSocket)
      ws = new (opts.webSocket as new (u: string, o: object) => Socket)(url, {
        origin: opts.origin,
        maxPayload: 2 ** 31,
      });
    else if (WS && typeof window !== 'undefined') ws = new WS(url);
    else {
      const mod = 'ws'; // a variable, so bundlers leave Node's WebSocket out of the app
      const { default: NodeWS } = (await import(/* @vite-ignore */ mod)) as {
        default: new (u: string, o: object) => Socket;
      };
      ws = new NodeWS(url, { origin: opts.origin, maxPayload: 2 ** 31 });
    }
    ws.binaryType = 'arraybuffer';
    const hello = await new Promise<HelloReply>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new RunError('device-lost', `the agent at ${addr.url} did not answer`)),
        opts.timeoutMs ?? 10_000,
      );
      ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'hello', protocol: 1 })));
      ws.addEventListener('message', (ev) => {
        if (typeof ev.data !== 'string') return;
        const m = JSON.parse(ev.data) as AgentMessage;
        clearTimeout(timer);
        if (m.type === 'hello') resolve(m);
        else
          reject(
            new RunError(
              'device-lost',
              `the agent refused the handshake: ${m.type === 'error' ? m.message : m.type}`,
            ),
          );
      });
      ws.addEventListener('error', (ev) => {
        clearTimeout(timer);
        // Node's WebSocket names the agent's status; a browser's says nothing: ask the agent why.
        const named = /Unexpected server response/.test(ev.message ?? '');
        if (named || typeof fetch !== 'function')
          reject(new RunError('device-lost', connectFailure(addr.url, ev.message)));
        else void probeFailure(addr).then((why) => reject(new RunError('device-lost', why)));
      });
    });
    const client = new AgentClient(ws, hello);
    ws.addEventListener('message', (ev) => client.onMessage(ev.data));
    ws.addEventListener('close', (ev) => client.onClose(ev.code ?? 0, ev.reason ?? ''));
    return client;
  }

  /** The agent plans the graph itself (the same planner as the runtime's). */
  runGraph(
    g: Graph,
    opts: Pick<RunOptions, 'preset' | 'dtype' | 'ranks' | 'tokens' | 'seed' | 'inputs' | 'onProgress'> & {
      forceFallback?: boolean;
    },
  ): Promise<RunResult> {
    return this.start({ graph: graphToJson(g) }, opts);
  }

  /** Runs a plan the runtime already made (the Backend path). */
  runPlan(
    plan: Plan,
    opts: Pick<RunOptions, 'seed' | 'inputs' | 'onProgress'> & { forceFallback?: boolean },
  ): Promise<RunResult> {
    return this.start(
      { plan: planToWire(plan) },
      {
        ...opts,
        preset: plan.preset.name,
        dtype: plan.dtype,
        ranks: plan.mesh.tp,
        dp: plan.mesh.dp,
        tokens: plan.tokens,
      },
    );
  }

  /** Cancels a run by id (the agent stops its worker, which frees the run's memory). */
  cancel(id: string): void {
    this.ws.send(JSON.stringify({ type: 'cancel', id }));
  }

  close(): void {
    this.ws.close(1000, 'done');
  }

  private start(
    body: object,
    opts: Pick<
      RunOptions,
      'preset' | 'dtype' | 'ranks' | 'dp' | 'tokens' | 'seed' | 'inputs' | 'onProgress'
    > & {
      forceFallback?: boolean;
    },
  ): Promise<RunResult> {
    if (this.closed) return Promise.reject(this.closed);
    if (opts.dtype !== 'bf16' && opts.dtype !== 'f32')
      return Promise.reject(new RunError('input', `the agent runs bf16 and f32, not ${opts.dtype}`));
    const id = `run-${++this.seq}`;
    const options: RunOptionsWire = { preset: opts.preset, dtype: opts.dtype, ranks: opts.ranks };
    if ((opts.dp ?? 1) !== 1) options.dp = opts.dp;
    if (opts.tokens !== undefined) options.tokens = opts.tokens;
    if (opts.seed !== undefined) options.seed = opts.seed >>> 0;
    if (opts.forceFallback) options.forceFallback = true;
    const inputs: InputDecl[] = [];
    const frames: ArrayBufferView[] = [];
    for (const [name, t] of opts.inputs ?? []) {
      if (t.dtype !== 'bf16' && t.dtype !== 'f32' && t.dtype !== 'i32')
        return Promise.reject(
          new RunError('input', `input '${name}': the agent takes bf16, f32 and i32 tensors, not ${t.dtype}`),
        );
      inputs.push({ name, dtype: t.dtype, shape: t.shape });
      frames.push(t.data as ArrayBufferView);
    }
    const text = JSON.stringify({ type: 'run', id, ...body, options, inputs });
    // The agent closes a connection on a message over its limit; say so here instead, and keep the connection.
    const limit = this.hello.limits.maxMessageBytes;
    if (text.length > limit || (text.length * 3 > limit && new TextEncoder().encode(text).length > limit)) {
      return Promise.reject(
        new RunError(
          'limits',
          `the run's graph is ${(text.length / 2 ** 20).toFixed(1)} MiB of JSON; the agent takes messages of at most ${(limit / 2 ** 20).toFixed(0)} MiB`,
        ),
      );
    }
    return new Promise<RunResult>((resolve, reject) => {
      this.runs.set(id, { resolve, reject, onProgress: opts.onProgress, frames: [] });
      this.ws.send(text);
      // A tensor over the agent's message size goes in full-size chunks and a last shorter one.
      const chunk = this.hello.limits.maxMessageBytes;
      for (const f of frames) {
        const bytes = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
        if (bytes.length <= chunk) this.ws.send(bytes);
        else for (let at = 0; at < bytes.length; at += chunk) this.ws.send(bytes.subarray(at, at + chunk));
      }
    });
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') {
      const run = this.receiving ? this.runs.get(this.receiving) : undefined;
      if (!run || !run.result) return;
      run.frames.push(data as ArrayBuffer);
      if (run.frames.length === run.result.outputs.length) this.finish(this.receiving!, run);
      return;
    }
    const m = JSON.parse(data) as AgentMessage;
    if (m.type === 'hello') return;
    const id = 'id' in m ? m.id : undefined;
    const run = id ? this.runs.get(id) : undefined;
    if (m.type === 'progress') {
      run?.onProgress?.({ phase: 'run', done: m.done, total: m.total });
      return;
    }
    if (m.type === 'error') {
      if (!run) return; // an error about no run in particular (rate limit): the next reply still comes
      this.runs.delete(id!);
      run.reject(
        new RunError(
          m.code === 'input'
            ? 'input'
            : m.code === 'limits'
              ? 'limits'
              : m.code === 'unsupported-ops'
                ? 'unsupported-ops'
                : m.code === 'worker'
                  ? 'device-lost'
                  : 'validation',
          `agent: ${m.message}`,
          { node: m.node, op: m.op },
        ),
      );
      return;
    }
    if (m.type === 'result' && run) {
      run.result = m;
      this.receiving = m.id;
      if (m.outputs.length === 0) this.finish(m.id, run);
    }
  }

  private finish(id: string, run: PendingRun): void {
    this.receiving = null;
    this.runs.delete(id);
    const r = run.result!;
    const ranks = r.trace.ranks;
    const outputs: Map<string, HostTensor>[] = Array.from({ length: ranks }, () => new Map());
    r.outputs.forEach((o: OutputDecl, k) => outputs[o.rank].set(o.name, tensorOf(o, run.frames[k])));
    run.resolve({ outputs, trace: r.trace });
  }

  private onClose(code: number, reason: string): void {
    this.closed = new RunError(
      'device-lost',
      `the agent closed the connection (${code}${reason ? `: ${reason}` : ''})`,
    );
    for (const [, run] of this.runs) run.reject(this.closed);
    this.runs.clear();
  }
}

function tensorOf(o: OutputDecl, buf: ArrayBuffer): HostTensor {
  const b = buf.slice(0);
  const data =
    o.dtype === 'bf16' ? new Uint16Array(b) : o.dtype === 'f32' ? new Float32Array(b) : new Int32Array(b);
  return { dtype: o.dtype, shape: o.shape, data };
}

/** The runtime's Backend over a connected agent. */
export function agentBackend(client: AgentClient): Backend {
  return {
    name: 'agent',
    run: (plan: Plan, opts: RunOptions) =>
      opts.fusedNormRounding === 'as-unfused'
        ? // The native worker's fused kernel rounds the norm once; it has no unfused-rounding mode.
          Promise.reject(
            new RunError(
              'input',
              "the agent backend runs the fused all-reduce + norm only as fused (fusedNormRounding 'once'), not 'as-unfused'",
            ),
          )
        : client.runPlan(plan, { seed: opts.seed, inputs: opts.inputs, onProgress: opts.onProgress }),
  };
}
