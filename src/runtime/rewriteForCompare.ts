// The graph after the named passes, with the run's rank count as the passes' world size (the
// fusion's gates depend on it).

import type { Graph } from '../graph/ir.ts';
import { runPipeline, UnknownPassError } from '../graph/passes/pipeline.ts';
import { RunError } from './runError.ts';

export function rewriteForCompare(g: Graph, passes: string[], ranks: number): Graph {
  try {
    return runPipeline(g, passes, { worldSize: ranks }).output;
  } catch (e) {
    if (e instanceof UnknownPassError) throw new RunError('input', e.message);
    throw e;
  }
}
