// What each fusion buys on the current graph, in the cost model's own accounting: each pass is run
// alone on the graph, and the rewritten graph's kernel launches, HBM bytes and link bytes are
// subtracted from the graph's (rewriteSavings). A pass that finds no site saves nothing.

import type { Graph } from '../ir.ts';
import { formatBytes } from '../passes/flashinferLimits.ts';
import { PASSES, type PassName, type PassOptions, type PipelineResult } from '../passes/pipeline.ts';
import { rewriteSavings, type Algorithm } from './model.ts';
import type { HardwareProfile } from './profiles.ts';

export interface PassSaving {
  pass: PassName;
  sites: number;
  launches: number;
  hbmBytes: number;
  linkBytesPerRank: number;
  us: number;
}

export function passSavings(
  g: Graph,
  passes: readonly PassName[],
  passOpts: PassOptions,
  profile: HardwareProfile,
  costOpts: { tp: number; tokens: number; algorithm?: Algorithm },
): PassSaving[] {
  return passes.map((pass) => {
    const r = PASSES[pass](g, passOpts);
    if (r.matches.length === 0)
      return { pass, sites: 0, launches: 0, hbmBytes: 0, linkBytesPerRank: 0, us: 0 };
    const s = rewriteSavings(g, r.graph, profile, costOpts);
    return {
      pass,
      sites: r.matches.length,
      launches: s.launches,
      hbmBytes: s.hbmBytes,
      linkBytesPerRank: s.linkBytesPerRank,
      us: s.us,
    };
  });
}

/** What each stage of a pipeline run saved over the stage before it (its pass's sites only). */
export function stageSavings(
  result: PipelineResult,
  profile: HardwareProfile,
  costOpts: { tp: number; tokens: number; algorithm?: Algorithm },
): Omit<PassSaving, 'pass'>[] {
  let before = result.input;
  return result.stages.map((st) => {
    const s =
      st.matches.length === 0
        ? { launches: 0, hbmBytes: 0, linkBytesPerRank: 0, us: 0 }
        : rewriteSavings(before, st.graph, profile, costOpts);
    before = st.graph;
    const { launches, hbmBytes, linkBytesPerRank, us } = s;
    return { sites: st.matches.length, launches, hbmBytes, linkBytesPerRank, us };
  });
}

/** Bytes saved, signed: a rewrite that adds traffic (a zeroed residual, a larger collective) shows −. */
export function formatSavedBytes(b: number): string {
  return b < 0 ? `−${formatBytes(-b)}` : formatBytes(b);
}
