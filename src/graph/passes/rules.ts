// Passes as data: a pass is a list of rules, each a pattern, a legality check that explains a
// refusal, and a rewrite. One engine runs them: index once, match each rule's root op, skip
// sites an earlier match already claimed, commit every edit in one sweep.

import type { Graph, Node } from '../ir.ts';
import type { Bindings, GraphIndex, NodePat } from '../match.ts';
import { findAll, indexGraph } from '../match.ts';
import { GraphEdit } from './graphEdit.ts';
import type { ResolvedOptions } from './options.ts';
import type { Diagnostic, PassResult } from './pipeline.ts';

export interface RuleContext {
  ix: GraphIndex;
  opts: ResolvedOptions;
}

/** What a rule matched: at least every node it binds, which the match claims when it fires. */
export interface Claims {
  nodes: Record<string, Node>;
}

export interface Rule<M extends Claims = Bindings> {
  name: string;
  /** A pattern, whose bindings are the matches; or a recognizer's sites (passes/matchers). */
  pattern: NodePat | ((ix: GraphIndex) => M[]);
  /** The anchor node reported as the match's site (the all_reduce). */
  site(b: M): string;
  /** Null when the rewrite is legal, else why not. */
  check(b: M, ctx: RuleContext): Diagnostic | null;
  /** Records the rewrite; returns the names of nodes consumed and produced. */
  rewrite(
    b: M,
    edit: GraphEdit,
    ctx: RuleContext,
  ): { consumed: string[]; produced: string[]; unevaluated?: string[] };
}

export function runRules<M extends Claims = Bindings>(
  pass: string,
  rules: Rule<M>[],
  g: Graph,
  opts: ResolvedOptions,
  only?: (site: string) => boolean,
  finalDiagnostics?: (out: Graph, edit: GraphEdit) => Diagnostic[],
): PassResult {
  const ix = indexGraph(g);
  const edit = new GraphEdit(ix, pass);
  const ctx: RuleContext = { ix, opts };
  const matches: PassResult['matches'] = [];
  const diagnostics: Diagnostic[] = [];
  for (const rule of rules) {
    const p = rule.pattern;
    // A pattern's rule matches Bindings (M's default).
    const found = typeof p === 'function' ? p(ix) : findAll(p, ix).map((m) => m.bindings as Claims as M);
    for (const bindings of found) {
      const site = rule.site(bindings);
      if (only && !only(site)) continue;
      const bound = Object.values(bindings.nodes).map((n) => n.name);
      if (bound.some((n) => edit.claimed.has(n))) continue;
      const refusal = rule.check(bindings, ctx);
      if (refusal) {
        diagnostics.push(refusal);
        continue;
      }
      edit.claim(...bound);
      const { consumed, produced, unevaluated } = rule.rewrite(bindings, edit, ctx);
      matches.push(
        unevaluated?.length
          ? { pass, site, consumed, produced, unevaluated }
          : { pass, site, consumed, produced },
      );
    }
  }
  // Report in graph order whatever rule found them, so the UI walks sites top to bottom.
  const at = (m: { site: string }) => ix.pos.get(m.site) ?? -1;
  matches.sort((a, b) => at(a) - at(b));
  const graph = edit.commit();
  return { graph, matches, diagnostics: finalDiagnostics ? finalDiagnostics(graph, edit) : diagnostics };
}
