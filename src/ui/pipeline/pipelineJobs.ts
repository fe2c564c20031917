// The work behind loading a graph and replaying rewrite steps, as plain functions: the pipeline
// worker runs them for big graphs, the page runs the same functions for small ones (and where
// workers are unavailable). No DOM, no store.

import type { Graph } from '../../graph/ir.ts';
import { importGraph } from '../../graph/formats.ts';
import { GraphImportError, type ImportWarning } from '../../graph/errors.ts';
import {
  PASSES,
  diagnose,
  type Diagnostic,
  type Match,
  type Pass,
  type PassOptions,
} from '../../graph/passes/pipeline.ts';
import { groupNodes } from '../../graph/groups.ts';
import { drawnNodeCount } from '../graph/scene.ts';
import { findSample } from '../samples.ts';
import type { RewriteStep } from '../urlState.ts';

export type GraphSource = { sample: string } | { text: string; name: string };

/** What went wrong importing, with the place in the text when the importer knows it. */
export interface ImportProblem {
  message: string;
  line?: number;
  col?: number;
  /** The text that failed, so the editor shows it even though the graph was not replaced. */
  text: string;
}

/** The graph after some number of rewrite steps, with what the last step did. */
export interface Stage {
  graph: Graph;
  step: RewriteStep | null;
  matches: Match[];
}

/** Reports a phase of the work and how far it is (0..1, null while unknown). */
export type OnWorkProgress = (label: string, fraction: number | null) => void;

/** Graphs with more boxes than this open with every layer folded. */
export const FOLD_ABOVE_NODES = 2000;

/** The layer groups a graph opens with folded: all of them past FOLD_ABOVE_NODES boxes, else none. */
export function foldedOnOpen(g: Graph): string[] {
  return drawnNodeCount(g) > FOLD_ABOVE_NODES ? groupNodes(g).groups.map((grp) => grp.id) : [];
}

export type Loaded =
  | {
      kind: 'graph';
      name: string;
      text: string;
      graph: Graph;
      format: string;
      warnings: string[];
      tp: number | undefined;
      folded: string[];
    }
  | { kind: 'import-error'; error: ImportProblem }
  | { kind: 'notice'; message: string };

/** Generates (for a sample) and imports the graph a source names. */
export function loadSource(source: GraphSource, onProgress: OnWorkProgress = () => {}): Loaded {
  let text: string, name: string, tp: number | undefined;
  if ('sample' in source) {
    const sample = findSample(source.sample);
    if (!sample) return { kind: 'notice', message: `No built-in sample "${source.sample}"` };
    onProgress(`generating ${sample.label}`, null);
    try {
      text = sample.load();
    } catch (e) {
      return {
        kind: 'notice',
        message: `Sample "${sample.label}" could not be generated: ${(e as Error).message}`,
      };
    }
    name = sample.label;
    tp = sample.tp;
  } else {
    ({ text, name } = source);
  }
  onProgress(`importing ${name}`, null);
  try {
    const r = importGraph(text);
    const warnings = r.warnings.map((w: ImportWarning) => `line ${w.line}: ${w.message}`);
    // A module whose forward() never returns imports with no outputs: say so rather than run a guess.
    const forward = text.search(/^\s*def forward\(/m);
    if (forward >= 0 && r.graph.outputs === null) {
      warnings.push(
        `line ${text.slice(0, forward).split('\n').length}: forward() has no return statement: the graph has no declared outputs, so its last values are taken as outputs`,
      );
    }
    return {
      kind: 'graph',
      name,
      text,
      graph: r.graph,
      format: r.format,
      warnings,
      tp,
      folded: foldedOnOpen(r.graph),
    };
  } catch (e) {
    if (e instanceof GraphImportError)
      return { kind: 'import-error', error: { message: e.detail, line: e.line, col: e.col, text } };
    return {
      kind: 'import-error',
      error: { message: `Import failed: ${(e as Error).message ?? String(e)}`, text },
    };
  }
}

/** Runs one step; a site restricts the pass to the match anchored there. */
export function applyStep(g: Graph, step: RewriteStep, gates: PassOptions) {
  const pass = (PASSES as Record<string, Pass | undefined>)[step.pass];
  if (!pass) throw new Error(`Unknown pass "${step.pass}" (known: ${Object.keys(PASSES).join(', ')})`);
  const site = step.site;
  return site === undefined ? pass(g, gates) : pass(g, gates, (s) => s === site);
}

export interface Replayed {
  stages: Stage[];
  error: string | null;
}

/**
 * The stages of `steps` from `base`; `known` are stages already computed for a prefix of the same
 * steps under the same gates (at least the base's), which are kept rather than recomputed.
 */
export function replay(
  known: Stage[],
  steps: RewriteStep[],
  gates: PassOptions,
  onProgress: OnWorkProgress = () => {},
): Replayed {
  const stages = known.slice(0, Math.min(known.length, steps.length + 1));
  for (let i = stages.length - 1; i < steps.length; i++) {
    const step = steps[i];
    onProgress(
      `step ${i + 1}/${steps.length}: ${step.pass}${step.site ? ` at ${step.site}` : ''}`,
      i / steps.length,
    );
    try {
      const r = applyStep(stages[stages.length - 1].graph, step, gates);
      stages.push({ graph: r.graph, step, matches: r.matches });
    } catch (e) {
      return {
        stages,
        error: `Step ${i + 1} (${step.pass}${step.site ? ` at ${step.site}` : ''}) failed: ${(e as Error).message}`,
      };
    }
  }
  return { stages, error: null };
}

export interface Counts {
  /** The sites (anchor node names) each pass would rewrite in the shown graph. */
  sites: Record<string, string[]>;
  /** Why each near-miss did not fire, in the shown graph. */
  diagnostics: Diagnostic[];
  /** Per pass, what it refused in the shown graph and why. */
  passWhy: Record<string, Diagnostic[]>;
}

/** What every pass would do to `g`, and why its near-misses did not fire. */
export function recount(g: Graph, gates: PassOptions, onProgress: OnWorkProgress = () => {}): Counts {
  const sites: Record<string, string[]> = {};
  const passWhy: Record<string, Diagnostic[]> = {};
  const names = Object.keys(PASSES);
  for (const [i, name] of names.entries()) {
    onProgress(`counting sites: ${name}`, i / (names.length + 1));
    const r = applyStep(g, { pass: name }, gates);
    sites[name] = r.matches.map((m) => m.site);
    passWhy[name] = r.diagnostics;
  }
  onProgress('diagnosing near-misses', names.length / (names.length + 1));
  return { sites, diagnostics: diagnose(g, gates), passWhy };
}

/** How many leading stages of `stages` (made under `gates`) also belong to `steps` under `nextGates`. */
export function reusableStages(
  stages: readonly Stage[],
  gates: PassOptions,
  steps: readonly RewriteStep[],
  nextGates: PassOptions,
): number {
  if (stages.length === 0) return 0;
  if (JSON.stringify(gates) !== JSON.stringify(nextGates)) return 1;
  let n = 1;
  while (n < stages.length && n <= steps.length && sameStep(stages[n].step, steps[n - 1])) n++;
  return n;
}

const sameStep = (a: RewriteStep | null, b: RewriteStep) => !!a && a.pass === b.pass && a.site === b.site;
