// The page's side of the pipeline worker. Cancel terminates the worker — the only way to stop a
// synchronous pass mid-way — and the next request starts a fresh one (the base it held is sent
// again). Where workers are unavailable (Node, a blocked script) callers run the same
// jobs on the page (`offThread` is false).

import type { Graph } from '../../graph/ir.ts';
import type { PassOptions } from '../../graph/passes/pipeline.ts';
import type { RewriteStep } from '../urlState.ts';
import { GraphAssembler, graphParts } from './graphParts.ts';
import type { Counts, GraphSource, Loaded, Stage } from './pipelineJobs.ts';
import type { PipelineReply, PipelineRequest } from './pipelineProtocol.ts';
import type { TraceFrameStages } from '../../graph/artifacts/torchTrace.ts';
import type { TraceOutline } from './traceJobs.ts';

export type OnProgress = (label: string, fraction: number | null) => void;

/** The work was cancelled: its result will never come. */
export class WorkCancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

type Request = PipelineRequest extends infer R ? (R extends PipelineRequest ? Omit<R, 'id'> : never) : never;

interface Pending {
  resolve(r: PipelineReply): void;
  reject(e: Error): void;
  onProgress: OnProgress;
  parts: GraphAssembler;
}

class WorkerChannel {
  private worker: Worker | null = null;
  private pending = new Map<number, Pending>();
  /** The graphs the running worker holds, and their keys there. */
  private held = new WeakMap<Graph, number>();
  private nextId = 1;

  get available(): boolean {
    return typeof Worker !== 'undefined';
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./pipeline.worker.ts', import.meta.url), { type: 'module' });
    w.onmessage = (ev: MessageEvent<PipelineReply>) => this.receive(ev.data);
    w.onerror = (ev) => {
      ev.preventDefault();
      this.stop(new Error(`the pipeline worker failed: ${ev.message || 'it could not load'}`));
    };
    this.worker = w;
    return w;
  }

  private receive(reply: PipelineReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    if (reply.kind === 'progress') p.onProgress(reply.label, reply.fraction);
    else if (reply.kind === 'graph-part') p.parts.add(reply.part);
    else {
      this.pending.delete(reply.id);
      if (reply.kind === 'error') p.reject(new Error(reply.error));
      else p.resolve(reply);
    }
  }

  /** Sends `req`; resolves with its result, its graphs in `parts`. */
  request(req: Request, onProgress: OnProgress): Promise<{ reply: PipelineReply; parts: GraphAssembler }> {
    const w = this.start();
    const id = this.nextId++;
    const parts = new GraphAssembler();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: (reply) => resolve({ reply, parts }), reject, onProgress, parts });
      w.postMessage({ ...req, id } as PipelineRequest);
    });
  }

  /** The key of `g` in the worker, sending it first (in parts) when the worker lacks it. */
  hold(g: Graph): number {
    const had = this.held.get(g);
    if (had !== undefined) return had;
    const w = this.start();
    const key = this.nextId++;
    for (const part of graphParts(g, 0))
      w.postMessage({ id: key, kind: 'graph-part', key, part } satisfies PipelineRequest);
    this.held.set(g, key);
    return key;
  }

  /** Records that the worker made `g` and holds it as `key`. */
  made(g: Graph, key: number): void {
    this.held.set(g, key);
  }

  /** Terminates the worker; whatever it was doing is rejected with `reason`. */
  stop(reason: Error = new WorkCancelled()): void {
    this.worker?.terminate();
    this.worker = null;
    this.held = new WeakMap();
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(reason);
  }
}

const pipeline = new WorkerChannel();

/** Whether work can leave the page's thread here. */
export const offThread = (): boolean => pipeline.available;

export async function loadOffThread(source: GraphSource, onProgress: OnProgress): Promise<Loaded> {
  const { reply, parts } = await pipeline.request({ kind: 'load', source }, onProgress);
  if (reply.kind !== 'loaded') throw new Error(`pipeline worker answered a load with '${reply.kind}'`);
  if (reply.loaded.kind !== 'graph') return reply.loaded;
  const graph = parts.take(0);
  pipeline.made(graph, reply.key);
  return { ...reply.loaded, graph };
}

export interface ReplayResult {
  stages: Stage[];
  error: string | null;
  counts: Counts;
}

/**
 * Replays `steps` from `known[0]` (the base) in the worker; `known` are stages the page holds for a
 * prefix of them, kept as they are.
 */
export async function replayOffThread(
  known: Stage[],
  steps: RewriteStep[],
  gates: PassOptions,
  shown: number | null,
  onProgress: OnProgress,
): Promise<ReplayResult> {
  const baseKey = pipeline.hold(known[0].graph);
  const req = { kind: 'replay' as const, baseKey, steps, gates, shown, have: known.length };
  const { reply, parts } = await pipeline.request(req, onProgress);
  if (reply.kind !== 'replayed') throw new Error(`pipeline worker answered a replay with '${reply.kind}'`);
  const stages = known.slice(0, reply.reuse);
  for (const [i, head] of reply.stages.entries())
    stages.push({ ...head, graph: parts.take(reply.reuse + i) });
  return { stages, error: reply.error, counts: reply.counts };
}

/** Reads a TORCH_TRACE log in the worker; the worker keeps it as `key` for `traceFrameOffThread`. */
export async function readTraceOffThread(
  file: Blob,
  name: string,
  onProgress: OnProgress,
): Promise<{ outline: TraceOutline; key: number }> {
  const { reply } = await pipeline.request({ kind: 'read-trace', file, name }, onProgress);
  if (reply.kind !== 'trace-read') throw new Error(`pipeline worker answered a log with '${reply.kind}'`);
  return { outline: reply.outline, key: reply.key };
}

/** One compile of the log the worker read as `key`, its graphs imported there. */
export async function traceFrameOffThread(
  key: number,
  compileId: string,
  onProgress: OnProgress,
): Promise<TraceFrameStages> {
  const { reply, parts } = await pipeline.request({ kind: 'trace-frame', key, compileId }, onProgress);
  if (reply.kind !== 'trace-frame') throw new Error(`pipeline worker answered a frame with '${reply.kind}'`);
  const { folder, ...rest } = reply.frame;
  return {
    ...rest,
    folder: { ...folder, stages: folder.stages.map((st, i) => ({ ...st, graph: parts.take(i) })) },
  };
}

/** Stops loading and rewriting mid-way. */
export const cancelPipeline = (): void => pipeline.stop();
