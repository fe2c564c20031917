// Reading, planning and answering runs off the agent's event loop. A large text message (a graph
// of 100,000 nodes is tens of MB of JSON) takes seconds to parse, check, plan and lower, and its
// result's trace as long to build; done on the event loop it would stall every other client,
// their handshakes included. So the server parses only small messages itself and hands large
// ones, and for every run the planning, lowering, the worker request's JSON and the result
// message, to one worker thread, which keeps each lowered run (its steps) until the run ends.
// Tensors travel to the thread and the worker's payload back by transfer, never by copy, so the
// bytes the agent admitted are held once.

import { parentPort, Worker, workerData } from 'node:worker_threads';
import { graphFromJson } from '../src/graph/json.ts';
import { planGraph } from '../src/runtime/index.ts';
import { RunError } from '../src/runtime/runError.ts';
import { DEFAULT_SEED, type Trace, type TraceEvent } from '../src/runtime/backend.ts';
import type { Plan } from '../src/runtime/plan.ts';
import type { HostTensor } from '../src/runtime/hostTensor.ts';
import { lowerPlan, type LoweredProgram } from './program.ts';
import { planFromWire } from './planWire.ts';
import {
  ProtocolError,
  checkClientMessage,
  type AgentLimits,
  type ClientMessage,
  type DeviceInfo,
  type ErrorCode,
  type InputDecl,
  type OutputDecl,
  type ResultReply,
  type RunOptionsWire,
} from '../src/runtime/agentProtocol.ts';

/** Text messages up to this size are parsed on the event loop (a hello, a cancel, a small run). */
export const INLINE_PARSE_BYTES = 64 * 1024;

export interface ErrorReplyFields {
  code: ErrorCode;
  message: string;
  id?: string;
  node?: string;
  op?: string;
}

/** A checked message; a run's graph or plan stays where it was parsed, named by `body`. */
export type ParsedMessage =
  | Exclude<ClientMessage, { type: 'run' }>
  | (Omit<Extract<ClientMessage, { type: 'run' }>, 'graph' | 'plan'> & { body: RunBody });

/** The run's graph or plan: the value itself (parsed on the event loop) or a key into the thread's store. */
export type RunBody = { graph?: unknown; plan?: unknown } | { key: number };

export interface PrepareRequest {
  id: string;
  body: RunBody;
  options: RunOptionsWire;
  inputs: InputDecl[];
  /** One per declared input, transferred. */
  tensors: ArrayBuffer[];
  limits: AgentLimits;
  /** Test hooks for the worker (a `debug` message), set on this run's program. */
  debug?: { abortAt?: string; stepDelayMs?: number };
}

export interface Prepared {
  lowered: LoweredProgram;
  ranks: number;
  fed: string[];
}

/** What the server needs of a prepared run; the rest (its steps) stays in the thread under `key`. */
export interface PreparedRun {
  key: number;
  /** The worker request (the program) as JSON bytes. */
  request: Uint8Array;
  payload: Buffer[];
  steps: number;
  world: number;
  /** Elements of all the program's slots on one rank. */
  slotElements: number;
}

/** The result message (JSON bytes) and, in its order, where each output lies in the worker's payload. */
export interface Delivery {
  message: Uint8Array;
  frames: [offset: number, bytes: number][];
}

/** Bytes → a checked message, or the error reply naming the field. Runs anywhere. */
export function parseMessage(bytes: Uint8Array, limits: AgentLimits): ClientMessage | ErrorReplyFields {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    return { code: 'bad-message', message: `not JSON: ${(e as Error).message.split('\n')[0].slice(0, 120)}` };
  }
  try {
    return checkClientMessage(parsed, limits);
  } catch (e) {
    if (e instanceof ProtocolError)
      return { code: e.code, message: e.message, ...(e.id ? { id: e.id } : {}) };
    throw e;
  }
}

const RUN_ERROR_CODES: Record<RunError['kind'], ErrorCode> = {
  input: 'input',
  limits: 'limits',
  'unsupported-ops': 'unsupported-ops',
  validation: 'validation',
  'device-lost': 'validation',
};

function errorReply(e: unknown, id: string): ErrorReplyFields {
  if (e instanceof RunError)
    return { code: RUN_ERROR_CODES[e.kind], message: e.message, id, node: e.node, op: e.op };
  if (e instanceof ProtocolError) return { code: e.code, message: e.message, id };
  // A RangeError from a hostile shape, or a bug: still one reply, never a dead agent.
  return { code: 'validation', message: e instanceof Error ? e.message.split('\n')[0] : String(e), id };
}

function planFor(body: { graph?: unknown; plan?: unknown }, o: RunOptionsWire, limits: AgentLimits): Plan {
  if (body.plan !== undefined) {
    const p = planFromWire(body.plan, {
      maxSteps: limits.maxGraphNodes * 4,
      maxStorages: limits.maxGraphNodes * 4,
      maxRanks: limits.maxRanks,
      maxElements: 2 ** 34,
    });
    if (p.mesh.tp !== o.ranks || p.mesh.dp !== (o.dp ?? 1) || p.dtype !== o.dtype)
      throw new ProtocolError(
        'bad-message',
        `plan.mesh/dtype (tp ${p.mesh.tp}, dp ${p.mesh.dp}, ${p.dtype}) differ from options (tp ${o.ranks}, dp ${o.dp ?? 1}, ${o.dtype})`,
      );
    return p;
  }
  let g;
  try {
    g = graphFromJson(body.graph, { maxNodes: limits.maxGraphNodes });
  } catch (e) {
    throw new ProtocolError(
      /limit|at most/i.test((e as Error).message) ? 'limits' : 'bad-message',
      `run.graph: ${(e as Error).message}`,
    );
  }
  return planGraph(g, {
    preset: o.preset,
    dtype: o.dtype,
    ranks: o.ranks,
    dp: o.dp,
    tokens: o.tokens,
    backend: 'agent',
  });
}

/** A received tensor as the runtime's HostTensor: a view of the transferred bytes, not a copy. */
function tensorOf(d: InputDecl, b: ArrayBuffer): HostTensor {
  const data =
    d.dtype === 'bf16' ? new Uint16Array(b) : d.dtype === 'f32' ? new Float32Array(b) : new Int32Array(b);
  return { dtype: d.dtype, shape: d.shape, data };
}

/** Plans and lowers a run. Runs anywhere; the server calls it through the thread. */
export function prepareRun(
  req: Omit<PrepareRequest, 'body'> & { body: { graph?: unknown; plan?: unknown } },
): Prepared {
  const plan = planFor(req.body, req.options, req.limits);
  const inputs = new Map<string, HostTensor>();
  req.inputs.forEach((d, k) => inputs.set(d.name, tensorOf(d, req.tensors[k])));
  const lowered = lowerPlan(plan, {
    id: req.id,
    seed: req.options.seed ?? DEFAULT_SEED,
    inputs,
    maxDeviceBytes: req.limits.maxDeviceBytes,
  });
  return { lowered, ranks: plan.ranks, fed: plan.fed };
}

/** The worker's result header → the client's result message (outputs, trace) and the frames to send. */
export function resultMessage(
  id: string,
  run: Prepared,
  h: Record<string, unknown>,
  dev: DeviceInfo,
): Delivery {
  const { lowered } = run;
  const mode = h.mode === 'cuda' ? 'cuda' : 'cpu';
  const timing: TraceEvent['timing'] = mode === 'cuda' ? 'cuda-event' : 'host';
  const events: TraceEvent[] = [];
  const notes = new Set<string>();
  for (const t of h.trace as {
    rank: number;
    step: number;
    start_us: number;
    dur_us: number;
    note?: string;
  }[]) {
    const s = lowered.steps[t.step];
    if (!s) continue;
    events.push({
      rank: t.rank,
      node: s.node,
      op: s.op,
      kind: s.kind,
      start_us: t.start_us,
      dur_us: t.dur_us,
      bytesRead: s.bytesRead,
      bytesWritten: s.bytesWritten,
      timing,
    });
    if (t.note && t.note !== 'nccl') notes.add(`${s.node}: ${t.note}`);
  }
  const device =
    mode === 'cuda' && dev.gpus.length
      ? `${run.ranks}× ${dev.gpus[0].name} (CUDA ${dev.cuda}, NCCL ${dev.nccl})`
      : `CPU (agent worker${dev.reason ? `: ${dev.reason}` : ''})`;
  const trace: Trace = {
    backend: 'agent',
    device,
    ranks: run.ranks,
    events,
    fed: run.fed,
    notes: [...notes],
  };
  const bySlot = new Map(lowered.outputs.map((o) => [o.slot, o]));
  const outputs: OutputDecl[] = [];
  const frames: Delivery['frames'] = [];
  for (const o of h.outputs as { slot: number; rank: number; offset: number; bytes: number }[]) {
    const meta = bySlot.get(o.slot);
    if (!meta) continue;
    outputs.push({ rank: o.rank, name: meta.name, dtype: meta.dtype, shape: meta.shape });
    frames.push([o.offset, o.bytes]);
  }
  const reply: ResultReply = { type: 'result', id, outputs, trace };
  return { message: new TextEncoder().encode(JSON.stringify(reply)), frames };
}

// ---- the thread ------------------------------------------------------------------------------

type ToThread =
  | { op: 'parse'; seq: number; bytes: Uint8Array; limits: AgentLimits }
  | { op: 'prepare'; seq: number; req: PrepareRequest }
  | { op: 'deliver'; seq: number; key: number; id: string; header: Uint8Array; device: DeviceInfo }
  | { op: 'where'; seq: number; key: number; step?: number; node?: string }
  | { op: 'drop'; key: number }
  | { op: 'forget'; key: number };
type FromThread =
  | { seq: number; message: ParsedMessage }
  | { seq: number; error: ErrorReplyFields }
  | { seq: number; prepared: Omit<PreparedRun, 'payload'> & { payload: Uint8Array[] } }
  | { seq: number; delivery: Delivery }
  | { seq: number; where: { node?: string; op?: string } };

/** The thread's side: graphs and plans parsed here wait under their key until their run is prepared; prepared runs until they end. */
function serveThread(port: NonNullable<typeof parentPort>): void {
  const bodies = new Map<number, { graph?: unknown; plan?: unknown }>();
  const runs = new Map<number, Prepared>();
  const reply = (r: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(r, transfer);
  port.on('message', (m: ToThread) => {
    switch (m.op) {
      case 'drop':
        bodies.delete(m.key);
        return;
      case 'forget':
        runs.delete(m.key);
        return;
      case 'parse': {
        try {
          const r = parseMessage(m.bytes, m.limits);
          if ('code' in r) return reply({ seq: m.seq, error: r });
          if (r.type !== 'run') return reply({ seq: m.seq, message: r });
          const { graph, plan, ...rest } = r;
          bodies.set(m.seq, { graph, plan });
          return reply({ seq: m.seq, message: { ...rest, body: { key: m.seq } } });
        } catch (e) {
          return reply({
            seq: m.seq,
            error: {
              code: 'bad-message',
              message: e instanceof Error ? e.message.split('\n')[0] : String(e),
            },
          });
        }
      }
      case 'prepare': {
        const { req } = m;
        let body: { graph?: unknown; plan?: unknown } | undefined;
        if ('key' in req.body) {
          body = bodies.get(req.body.key);
          bodies.delete(req.body.key);
        } else body = req.body;
        try {
          if (!body) throw new ProtocolError('protocol', `run '${req.id}': its graph is no longer held`);
          const prepared = prepareRun({ ...req, body });
          const { program, payload } = prepared.lowered;
          if (req.debug?.abortAt) program.abortAt = req.debug.abortAt;
          if (req.debug?.stepDelayMs) program.stepDelayMs = req.debug.stepDelayMs;
          if (req.options.forceFallback) program.forceFallback = true;
          const request = new TextEncoder().encode(JSON.stringify(program));
          prepared.lowered.payload = [];
          runs.set(m.seq, prepared);
          const transfer = [request.buffer, ...payload.map((b) => b.buffer as ArrayBuffer)].filter(
            (b, k, all) => all.indexOf(b) === k,
          );
          return reply(
            {
              seq: m.seq,
              prepared: {
                key: m.seq,
                request,
                payload,
                steps: prepared.lowered.steps.length,
                world: program.world,
                slotElements: program.slots.reduce((a, n) => a + n, 0),
              },
            },
            transfer,
          );
        } catch (e) {
          return reply({ seq: m.seq, error: errorReply(e, req.id) });
        }
      }
      case 'deliver': {
        const run = runs.get(m.key);
        try {
          if (!run) throw new Error(`run '${m.id}' is no longer held`);
          const header = JSON.parse(
            Buffer.from(m.header.buffer, m.header.byteOffset, m.header.byteLength).toString(),
          ) as Record<string, unknown>;
          const delivery = resultMessage(m.id, run, header, m.device);
          return reply({ seq: m.seq, delivery }, [delivery.message.buffer as ArrayBuffer]);
        } catch (e) {
          return reply({
            seq: m.seq,
            error: {
              code: 'worker',
              message: `the worker's result could not be read: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
              id: m.id,
            },
          });
        }
      }
      case 'where': {
        const steps = runs.get(m.key)?.lowered.steps;
        const s = m.step !== undefined ? steps?.[m.step] : steps?.find((x) => x.node === m.node);
        return reply({ seq: m.seq, where: s ? { node: s.node, op: s.op } : { node: m.node } });
      }
    }
  });
}

// Only in the thread the server started (a test runner's own worker threads import this module too).
const THREAD_MARK = 'fusionlab-preparation';
if (parentPort && (workerData as { role?: string } | null)?.role === THREAD_MARK) serveThread(parentPort);

// ---- the server's side -----------------------------------------------------------------------

/** The buffer of `b` when `b` spans all of it (then it can be transferred); otherwise a copy's. */
export function ownBuffer(b: Uint8Array): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer)
    return b.buffer;
  return new Uint8Array(b).buffer as ArrayBuffer;
}

export class PreparationThread {
  private worker: Worker | null = null;
  private seq = 0;
  private pending = new Map<number, { resolve: (r: FromThread) => void; reject: (e: Error) => void }>();
  private closing = false;

  constructor(private readonly log: (line: string) => void) {}

  private thread(): Worker {
    if (this.worker) return this.worker;
    // In the source tree a small .mjs registers the TypeScript loader first; the bundle for the GPU
    // host builds the same file name from this module.
    const w = new Worker(new URL('./preparationThread.mjs', import.meta.url), {
      workerData: { role: THREAD_MARK },
    });
    w.on('message', (r: FromThread) => {
      const p = this.pending.get(r.seq);
      if (!p) return;
      this.pending.delete(r.seq);
      p.resolve(r);
    });
    const fail = (why: string) => {
      if (this.worker !== w) return;
      this.worker = null;
      if (!this.closing) this.log(`preparation thread ${why}; starting another`);
      for (const [, p] of this.pending) p.reject(new Error(`the preparation thread ${why}`));
      this.pending.clear();
    };
    w.on('error', (e: unknown) =>
      fail(`failed: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`),
    );
    w.on('exit', (code) => fail(`exited with code ${code}`));
    w.unref();
    this.worker = w;
    return w;
  }

  private call(m: ToThread & { seq: number }, transfer: ArrayBuffer[] = []): Promise<FromThread> {
    return new Promise((resolve, reject) => {
      this.pending.set(m.seq, { resolve, reject });
      this.thread().postMessage(m, transfer);
    });
  }

  /** Parses and checks a large text message in the thread (the bytes are transferred). */
  async parse(bytes: Uint8Array, limits: AgentLimits): Promise<ParsedMessage | ErrorReplyFields> {
    const seq = ++this.seq;
    const buf = ownBuffer(bytes);
    const r = await this.call({ op: 'parse', seq, bytes: new Uint8Array(buf), limits }, [buf]);
    return 'error' in r
      ? r.error
      : 'message' in r
        ? r.message
        : { code: 'bad-message', message: 'unexpected reply' };
  }

  /** Plans and lowers a run in the thread; its tensors are transferred (the caller no longer holds them). */
  async prepare(req: PrepareRequest): Promise<PreparedRun | ErrorReplyFields> {
    const seq = ++this.seq;
    const r = await this.call({ op: 'prepare', seq, req }, req.tensors);
    if ('error' in r) return r.error;
    if (!('prepared' in r)) return { code: 'validation', message: 'unexpected reply', id: req.id };
    // Transferred payloads arrive as Uint8Arrays; the worker protocol writes Buffers.
    const p = r.prepared;
    return { ...p, payload: p.payload.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)) };
  }

  /** The result message for a run's worker reply (its header bytes are handed over). */
  async deliver(
    key: number,
    id: string,
    header: Buffer,
    device: DeviceInfo,
  ): Promise<Delivery | ErrorReplyFields> {
    const seq = ++this.seq;
    const buf = ownBuffer(header);
    const r = await this.call({ op: 'deliver', seq, key, id, header: new Uint8Array(buf), device }, [buf]);
    return 'error' in r
      ? r.error
      : 'delivery' in r
        ? r.delivery
        : { code: 'worker', message: 'unexpected reply', id };
  }

  /** The node (and its op) of a prepared run's step, by index or node name, for error messages. */
  async where(key: number, at: { step?: number; node?: string }): Promise<{ node?: string; op?: string }> {
    const seq = ++this.seq;
    const r = await this.call({ op: 'where', seq, key, ...at }).catch(() => null);
    return r && 'where' in r ? r.where : { node: at.node };
  }

  /** Ends what the thread holds of a prepared run. */
  forget(key: number): void {
    this.worker?.postMessage({ op: 'forget', key } satisfies ToThread);
  }

  /** Forgets a run body the thread holds (its run was cancelled before it was prepared). */
  drop(body: RunBody): void {
    if ('key' in body && this.worker)
      this.worker.postMessage({ op: 'drop', key: body.key } satisfies ToThread);
  }

  async close(): Promise<void> {
    this.closing = true;
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}
