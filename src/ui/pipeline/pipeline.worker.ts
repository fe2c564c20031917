// The pipeline worker: generates samples, imports them, replays rewrite steps and counts sites, so
// none of it blocks the page. It keeps the last base graph and its stages, so a new step costs one
// pass, and graphs cross only once.

import type { Graph } from '../../graph/ir.ts';
import type { PassOptions } from '../../graph/passes/pipeline.ts';
import { GraphAssembler, graphParts } from './graphParts.ts';
import { loadSource, recount, replay, reusableStages, type Stage } from './pipelineJobs.ts';
import type { PipelineReply, PipelineRequest } from './pipelineProtocol.ts';
import type { TorchTrace } from '../../graph/artifacts/torchTrace.ts';
import { readTraceBlob, traceFrameStages, traceOutline } from './traceJobs.ts';

const post = (reply: PipelineReply) => (self as unknown as Worker).postMessage(reply);

/** Graphs the page sent or this worker made, by key; only the latest few are kept. */
const graphs = new Map<number, Graph>();
const incoming = new Map<number, GraphAssembler>();
/** The stages of the last replay, and what they were made from. */
let cache: { baseKey: number; gates: PassOptions; stages: Stage[] } | null = null;
/** The last TORCH_TRACE log read, by its request id: its graphs go to the page a frame at a time. */
let trace: { key: number; trace: TorchTrace } | null = null;

function keep(key: number, g: Graph) {
  graphs.set(key, g);
  // Only the latest base is in use; one more covers a load racing a replay.
  while (graphs.size > 2) graphs.delete(graphs.keys().next().value!);
}

function need(key: number): Graph {
  const g = graphs.get(key);
  if (!g) throw new Error(`graph ${key} is not in the worker (it was restarted); send it again`);
  return g;
}

async function handle(req: PipelineRequest): Promise<void> {
  const { id } = req;
  const progress = (label: string, fraction: number | null) =>
    post({ id, kind: 'progress', label, fraction });
  switch (req.kind) {
    case 'graph-part': {
      let a = incoming.get(req.key);
      if (!a) incoming.set(req.key, (a = new GraphAssembler()));
      a.add(req.part);
      if (req.part.last) {
        keep(req.key, a.take(req.part.slot));
        incoming.delete(req.key);
      }
      return;
    }
    case 'load': {
      const loaded = loadSource(req.source, progress);
      if (loaded.kind !== 'graph') {
        post({ id, kind: 'loaded', loaded, key: id });
        return;
      }
      const { graph, ...rest } = loaded;
      keep(id, graph);
      progress('sending the graph to the page', null);
      for (const part of graphParts(graph, 0)) post({ id, kind: 'graph-part', part });
      post({ id, kind: 'loaded', loaded: rest, key: id });
      return;
    }
    case 'read-trace': {
      trace = null;
      const read = await readTraceBlob(req.file, req.name, progress);
      trace = { key: id, trace: read };
      post({ id, kind: 'trace-read', outline: traceOutline(read, req.file.size), key: id });
      return;
    }
    case 'trace-frame': {
      if (trace?.key !== req.key)
        throw new Error('the log is no longer in the worker (it was restarted): open it again');
      progress(`importing compile ${req.compileId}`, null);
      const { folder, ...rest } = traceFrameStages(trace.trace, req.compileId);
      const stages = folder.stages.map(({ graph, ...head }, i) => {
        for (const part of graphParts(graph, i)) post({ id, kind: 'graph-part', part });
        return head;
      });
      post({ id, kind: 'trace-frame', frame: { ...rest, folder: { ...folder, stages } } });
      return;
    }
    case 'replay': {
      const base = need(req.baseKey);
      const known =
        cache && cache.baseKey === req.baseKey && cache.stages[0].graph === base
          ? cache.stages.slice(0, reusableStages(cache.stages, cache.gates, req.steps, req.gates))
          : [{ graph: base, step: null, matches: [] }];
      const { stages, error } = replay(known, req.steps, req.gates, progress);
      cache = { baseKey: req.baseKey, gates: req.gates, stages };
      // The page's stages are the same passes over the same graph: what it has is not sent again.
      const reuse = Math.min(req.have, stages.length);
      const shown = req.shown === null ? stages.length - 1 : Math.min(req.shown, stages.length - 1);
      const counts = recount(stages[shown].graph, req.gates, progress);
      progress('sending the rewritten graphs to the page', null);
      for (let i = reuse; i < stages.length; i++) {
        for (const part of graphParts(stages[i].graph, i)) post({ id, kind: 'graph-part', part });
      }
      post({
        id,
        kind: 'replayed',
        reuse,
        stages: stages.slice(reuse).map(({ step, matches }) => ({ step, matches })),
        error,
        counts,
      });
      return;
    }
  }
}

// Requests are handled one at a time, in order: a replay may need the graph parts sent before it.
let queue: Promise<void> = Promise.resolve();
self.onmessage = (ev: MessageEvent<PipelineRequest>) => {
  const req = ev.data;
  queue = queue
    .then(() => handle(req))
    .catch((e: unknown) => {
      post({ id: req.id, kind: 'error', error: e instanceof Error ? e.message : String(e) });
    });
};
