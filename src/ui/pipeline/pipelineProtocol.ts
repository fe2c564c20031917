// The message contract between the page and the pipeline worker (sample generation, import and the
// passes). Pure types: both sides import them, neither imports the other.
//
// Graphs cross in parts of a few hundred nodes (`GraphPart`), each its own message: a 10,000-node
// graph cloned in one message costs the receiving thread a task of a few hundred milliseconds.
// Every request is answered by progress messages, graph parts, then one result or an error.

import type { Graph, Node } from '../../graph/ir.ts';
import type { Match, PassOptions } from '../../graph/passes/pipeline.ts';
import type { RewriteStep } from '../urlState.ts';
import type { Counts, GraphSource, Loaded } from './pipelineJobs.ts';
import type { TraceFrameStages } from '../../graph/artifacts/torchTrace.ts';
import type { DumpStage } from '../../graph/stageFolder.ts';
import type { TraceOutline } from './traceJobs.ts';

/** A slice of a graph's nodes; the first part of a graph carries the rest of it (`head`). */
export interface GraphPart {
  /** Which graph of the request: a stage index (0 for a loaded graph or a base sent to the worker). */
  slot: number;
  head?: Omit<Graph, 'nodes'>;
  nodes: Node[];
  last: boolean;
}

export type PipelineRequest =
  | { id: number; kind: 'load'; source: GraphSource }
  /** A graph for a later request: `key` names it as the base of replays. */
  | { id: number; kind: 'graph-part'; key: number; part: GraphPart }
  /** The stages of `steps` from the base `baseKey`, the first `have` of which the page already holds. */
  | {
      id: number;
      kind: 'replay';
      baseKey: number;
      steps: RewriteStep[];
      gates: PassOptions;
      shown: number | null;
      have: number;
    }
  /** A TORCH_TRACE log, read in chunks; the worker keeps it as `id` and answers with its outline. */
  | { id: number; kind: 'read-trace'; file: Blob; name: string }
  /** One compile of a log read before, its graphs imported in the worker. */
  | { id: number; kind: 'trace-frame'; key: number; compileId: string };

/** A compile's imported stages as they cross to the page: everything but the graphs. */
export type TraceFrameHead = Omit<TraceFrameStages, 'folder'> & {
  folder: Omit<TraceFrameStages['folder'], 'stages'> & { stages: Omit<DumpStage, 'graph'>[] };
};

/** A stage the page did not have: its graph follows as parts in the stage's slot. */
export interface StageHead {
  step: RewriteStep | null;
  matches: Match[];
}

export type PipelineReply =
  | { id: number; kind: 'progress'; label: string; fraction: number | null }
  | { id: number; kind: 'graph-part'; part: GraphPart }
  /** The graph (slot 0) came as parts; `key` names it in the worker as the base of replays. */
  | {
      id: number;
      kind: 'loaded';
      loaded: Exclude<Loaded, { kind: 'graph' }> | Omit<Extract<Loaded, { kind: 'graph' }>, 'graph'>;
      key: number;
    }
  /** Stages from `reuse` on (their graphs came as parts, slot = stage index), then the shown stage's counts. */
  | { id: number; kind: 'replayed'; reuse: number; stages: StageHead[]; error: string | null; counts: Counts }
  | { id: number; kind: 'trace-read'; outline: TraceOutline; key: number }
  /** A compile's stages, imported: stage i's graph came as parts in slot i. */
  | { id: number; kind: 'trace-frame'; frame: TraceFrameHead }
  | { id: number; kind: 'error'; error: string };
