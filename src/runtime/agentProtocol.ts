// The agent's wire protocol (version 1): JSON text messages, each checked here by hand before
// anything acts on it, and binary messages that carry tensors, in the order the JSON message
// announced them, right after it. A tensor larger than `limits.maxMessageBytes` arrives as several
// binary messages in a row (its bytes in order, each message at most that size), so no single
// message costs the agent's event loop more than a bounded copy.
//
// client → agent
//   {type:'hello', protocol:1}
//   {type:'run', id, graph: fusionlab.graph/1, options, inputs: [{name, dtype, shape}]}   (the agent plans)
//   {type:'run', id, plan: PlanJson, options, inputs}                                     (the runtime planned)
//   {type:'cancel', id}
//   {type:'debug', abortAt?: node, stepDelayMs?}   only when the agent was started with debugging on (tests)
// agent → client
//   {type:'hello', protocol:1, agent, device, limits}
//   {type:'progress', id, done, total}
//   {type:'result', id, outputs: [{rank, name, dtype, shape}], trace} then one binary message per output
//   {type:'error', id?, code, message, node?, op?}

import type { Trace } from './backend.ts';

export const PROTOCOL_VERSION = 1;

export type ErrorCode =
  | 'bad-message'
  | 'unknown-type'
  | 'protocol'
  | 'rate-limit'
  | 'busy'
  | 'limits'
  | 'input'
  | 'unsupported-ops'
  | 'validation'
  | 'device-lost'
  | 'worker'
  | 'cancelled';

export interface AgentLimits {
  /** One WebSocket message, text or binary (a larger tensor comes in several). */
  maxMessageBytes: number;
  maxGraphNodes: number;
  maxInputs: number;
  maxRanks: number;
  messagesPerSecond: number;
  maxQueuedRuns: number;
  maxDeviceBytes: number;
  /** Open connections at once. */
  maxConnections: number;
  /** Host memory one run's inputs may take (see `inputHostBytes`). */
  maxRunHostBytes: number;
  /** Host memory the inputs of all admitted runs may take together, and a CPU worker's buffers. */
  maxHostBytes: number;
}

export interface DeviceInfo {
  mode: 'cuda' | 'cpu';
  reason?: string;
  gpus: { name: string; memoryBytes: number; computeCapability: string }[];
  cuda: string | null;
  nccl: string | null;
  peer: boolean[][];
}

export interface HelloReply {
  type: 'hello';
  protocol: number;
  agent: string;
  device: DeviceInfo;
  limits: AgentLimits;
}

export interface RunOptionsWire {
  preset: 'tiny' | 'layer';
  dtype: 'bf16' | 'f32';
  /** The TP group's size. */
  ranks: number;
  /** The data-parallel size (default 1): the run has dp × ranks ranks. */
  dp?: number;
  tokens?: number;
  seed?: number;
  /** Take NCCL + the add/norm kernel for fused all-reduce + norm even where peers can be read. */
  forceFallback?: boolean;
}

export interface InputDecl {
  name: string;
  dtype: 'bf16' | 'f32' | 'i32';
  shape: number[];
}

export type ClientMessage =
  | { type: 'hello'; protocol: number }
  | { type: 'run'; id: string; graph?: unknown; plan?: unknown; options: RunOptionsWire; inputs: InputDecl[] }
  | { type: 'cancel'; id: string }
  | { type: 'debug'; abortAt?: string; stepDelayMs?: number };

export interface OutputDecl {
  rank: number;
  name: string;
  dtype: 'bf16' | 'f32' | 'i32';
  shape: number[];
}
export interface ResultReply {
  type: 'result';
  id: string;
  outputs: OutputDecl[];
  trace: Trace;
}
export interface ErrorReply {
  type: 'error';
  id?: string;
  code: ErrorCode;
  message: string;
  node?: string;
  op?: string;
}
export interface ProgressReply {
  type: 'progress';
  id: string;
  done: number;
  total: number;
}
export type AgentMessage = HelloReply | ResultReply | ErrorReply | ProgressReply;

/** A message that fails its schema: the path says where (`options.ranks`). */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly id?: string,
  ) {
    super(message);
  }
}

const ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const NAME_MAX = 512;

type Obj = Record<string, unknown>;
export function isObj(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
function bad(path: string, what: string, id?: string): never {
  throw new ProtocolError('bad-message', `${path}: ${what}`, id);
}
function onlyKeys(o: Obj, allowed: string[], path: string, id?: string) {
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) bad(path, `unknown field '${k.slice(0, 40)}'`, id);
}
export function int(x: unknown, path: string, lo: number, hi: number, id?: string): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < lo || x > hi)
    bad(path, `must be an integer in [${lo}, ${hi}]`, id);
  return x as number;
}
export function str(x: unknown, path: string, max = NAME_MAX, id?: string): string {
  if (typeof x !== 'string' || x.length === 0 || x.length > max)
    bad(path, `must be a string of 1..${max} characters`, id);
  return x as string;
}
function oneOf<T extends string>(x: unknown, path: string, options: readonly T[], id?: string): T {
  if (typeof x !== 'string' || !options.includes(x as T))
    bad(path, `must be one of ${options.join(', ')}`, id);
  return x as T;
}

/** Checks a parsed text message; throws ProtocolError naming the field. */
export function checkClientMessage(x: unknown, limits: AgentLimits): ClientMessage {
  if (!isObj(x)) bad('message', 'must be a JSON object');
  const type = x.type;
  const id = typeof x.id === 'string' && ID_RE.test(x.id) ? x.id : undefined;
  switch (type) {
    case 'hello':
      onlyKeys(x, ['type', 'protocol'], 'hello');
      if (x.protocol !== PROTOCOL_VERSION)
        throw new ProtocolError(
          'protocol',
          `protocol ${String(x.protocol).slice(0, 20)} is not supported; this agent speaks ${PROTOCOL_VERSION}`,
        );
      return { type, protocol: PROTOCOL_VERSION };
    case 'cancel':
      onlyKeys(x, ['type', 'id'], 'cancel');
      if (typeof x.id !== 'string' || !ID_RE.test(x.id)) bad('cancel.id', 'must match [A-Za-z0-9_.:-]{1,64}');
      return { type, id: x.id };
    case 'debug':
      onlyKeys(x, ['type', 'abortAt', 'stepDelayMs'], 'debug');
      return {
        type,
        abortAt: x.abortAt === undefined ? undefined : str(x.abortAt, 'debug.abortAt'),
        stepDelayMs:
          x.stepDelayMs === undefined ? undefined : int(x.stepDelayMs, 'debug.stepDelayMs', 0, 1000),
      };
    case 'run': {
      onlyKeys(x, ['type', 'id', 'graph', 'plan', 'options', 'inputs'], 'run', id);
      if (!id) bad('run.id', 'must match [A-Za-z0-9_.:-]{1,64}');
      if ((x.graph === undefined) === (x.plan === undefined))
        bad('run', 'give exactly one of graph and plan', id);
      const o = x.options;
      if (!isObj(o)) bad('run.options', 'must be an object', id);
      onlyKeys(o, ['preset', 'dtype', 'ranks', 'dp', 'tokens', 'seed', 'forceFallback'], 'run.options', id);
      const options: RunOptionsWire = {
        preset: oneOf(o.preset, 'run.options.preset', ['tiny', 'layer'] as const, id),
        dtype: oneOf(o.dtype, 'run.options.dtype', ['bf16', 'f32'] as const, id),
        ranks: int(o.ranks, 'run.options.ranks', 1, limits.maxRanks, id),
      };
      if (o.dp !== undefined) {
        options.dp = int(o.dp, 'run.options.dp', 1, limits.maxRanks, id);
        if (options.dp * options.ranks > limits.maxRanks)
          bad('run.options.dp', `dp × ranks is over the agent's ${limits.maxRanks} ranks`, id);
      }
      if (o.tokens !== undefined) options.tokens = int(o.tokens, 'run.options.tokens', 1, 1 << 20, id);
      if (o.seed !== undefined) options.seed = int(o.seed, 'run.options.seed', 0, 0xffffffff, id);
      if (o.forceFallback !== undefined) {
        if (typeof o.forceFallback !== 'boolean') bad('run.options.forceFallback', 'must be a boolean', id);
        options.forceFallback = o.forceFallback as boolean;
      }
      const ins = x.inputs ?? [];
      if (!Array.isArray(ins) || ins.length > limits.maxInputs)
        bad('run.inputs', `must be a list of at most ${limits.maxInputs} tensors`, id);
      const inputs = (ins as unknown[]).map((d, k): InputDecl => {
        const p = `run.inputs[${k}]`;
        if (!isObj(d)) bad(p, 'must be an object', id);
        onlyKeys(d, ['name', 'dtype', 'shape'], p, id);
        const shape = d.shape;
        if (!Array.isArray(shape) || shape.length > 8)
          bad(`${p}.shape`, 'must be a list of at most 8 dims', id);
        return {
          name: str(d.name, `${p}.name`, NAME_MAX, id),
          dtype: oneOf(d.dtype, `${p}.dtype`, ['bf16', 'f32', 'i32'] as const, id),
          shape: (shape as unknown[]).map((s, j) => int(s, `${p}.shape[${j}]`, 0, 2 ** 31 - 1, id)),
        };
      });
      if (x.graph !== undefined) {
        if (!isObj(x.graph) || !isObj(x.graph.graph))
          bad('run.graph', 'must be a fusionlab.graph/1 object ({schema, graph})', id);
        // The count as sent ({schema, graph: {nodes}}), before anything walks the graph.
        const nodes = ((x.graph as Obj).graph as Obj).nodes;
        // Counted before anything walks the graph, so a huge one costs nothing more.
        if (Array.isArray(nodes) && nodes.length > limits.maxGraphNodes) {
          throw new ProtocolError(
            'limits',
            `the graph has ${nodes.length} nodes; this agent takes at most ${limits.maxGraphNodes}`,
            id,
          );
        }
      }
      return { type: 'run', id, graph: x.graph, plan: x.plan, options, inputs };
    }
    default:
      throw new ProtocolError('unknown-type', `unknown message type '${String(type).slice(0, 40)}'`, id);
  }
}

export function elemBytes(dtype: 'bf16' | 'f32' | 'i32'): number {
  return dtype === 'bf16' ? 2 : 4;
}

/** Bytes of one announced tensor as it is sent. */
export function tensorBytes(d: InputDecl): number {
  return d.shape.reduce((a, b) => a * b, 1) * elemBytes(d.dtype);
}

/**
 * Host memory a run's announced inputs take: the bytes the agent holds as they arrive, plus the
 * worker's copy, which the CPU worker keeps as f32 (4 bytes an element, twice a bf16 tensor).
 */
export function inputHostBytes(inputs: InputDecl[]): number {
  return inputs.reduce((a, d) => a + tensorBytes(d) + d.shape.reduce((x, y) => x * y, 1) * 4, 0);
}

/**
 * The path a client asks, over plain HTTP, why its WebSocket handshake failed (same token query):
 * a browser's WebSocket hides the refusal's status, so the app asks again here and reads it.
 * 204 where a connection would be taken now, else 401 / 403 / 503 with the reason.
 */
export const HANDSHAKE_PROBE_PATH = '/handshake';
