// FX text → Graph. Each form FX prints is a module of forms/ behind the same small interface
// (DESIGN.md "Formats"):
//   - module.ts: print_readable modules — `class X(torch.nn.Module):` + `def forward(self, a: "bf16[…]", …):`,
//     node lines, `# File:` comments, `return (…)`, nested `class submod_N` modules;
//   - strGraph.ts: str(graph) — `graph():` + `%mm : [num_users=2] = call_function[target=…](args = (…), kwargs = {})`;
//   - fragment.ts: bare node lines; names never defined become the graph's inputs.
// Every form reads its body with one loop (body.ts) over one reader of names, types and
// arguments (reader.ts), which makes the nodes, their provenance, warnings and positioned errors.

import { checkInputSize, DEFAULT_MAX_BYTES, DEFAULT_MAX_NODES, type ImportWarning } from '../errors.ts';
import type { Graph, Node } from '../ir.ts';
import { lookupOp } from '../ops.ts';
import { fragmentForm } from './forms/fragment.ts';
import { moduleForm } from './forms/module.ts';
import { strGraphForm } from './forms/strGraph.ts';
import { checkNotBinary, SourceText, Tok, TokenStream } from './lexer.ts';
import { FxReader } from './reader.ts';
import { mapTorchLevelCalls } from './torchLevel.ts';

export interface ParseFxOptions {
  /** Inputs longer than this are refused before any work (default 16 MB). */
  maxBytes?: number;
  /** Graphs with more nodes than this are refused (default 200,000; submodules count too). */
  maxNodes?: number;
  /** Named in errors (`file:line:col`). */
  fileName?: string;
}

export interface ParseFxResult {
  graph: Graph;
  warnings: ImportWarning[];
}

export { DEFAULT_MAX_BYTES, DEFAULT_MAX_NODES } from '../errors.ts';

/** One form of FX text: whether the text's first statement (the token at `at`) starts it, and its reader. */
export interface FxForm {
  match(r: FxReader, at: number): boolean;
  read(r: FxReader, at: number): Graph;
}

/** Tried in order; a fragment is whatever else the text holds. */
const FX_FORMS: FxForm[] = [moduleForm, strGraphForm, fragmentForm];

export function parseFx(text: string, opts: ParseFxOptions = {}): ParseFxResult {
  checkInputSize(text, opts.maxBytes ?? DEFAULT_MAX_BYTES, opts.fileName);
  const src = new SourceText(text, opts.fileName);
  checkNotBinary(src);
  const r = new FxReader(src, new TokenStream(src), opts.maxNodes ?? DEFAULT_MAX_NODES);
  const at = r.firstStatement();
  const first = r.toks.at(at);
  if (first.kind === Tok.Eof)
    r.fail(
      first,
      'no graph found: expected a module (class … def forward), node lines, or str(graph) text',
      'an FX graph',
    );
  // Dynamo's torch-level calls as the registered ops they mean (a no-op on aten-level graphs).
  const graph = mapTorchLevelCalls(FX_FORMS.find((f) => f.match(r, at))!.read(r, at));
  warnUnknownOps(graph, r.warnings);
  return { graph, warnings: r.warnings };
}

/** Ops that are structure rather than computation: never reported as unknown. */
const STRUCTURAL_OPS = new Set(['call_module', 'get_attr']);

/** Each op the registry does not know, once, at its first use (submodules too). */
function warnUnknownOps(g: Graph, warnings: ImportWarning[]): void {
  const seen = new Set<string>();
  const check = (op: string, n: Node): void => {
    if (seen.has(op) || STRUCTURAL_OPS.has(op)) return;
    seen.add(op);
    if (lookupOp(op)) return;
    warnings.push({
      line: n.meta.line ?? 1,
      node: n.name,
      message: `unknown op '${op}' (first used by '${n.name}' at line ${n.meta.line}): imported as an opaque node`,
    });
  };
  const visit = (graph: Graph): void => {
    for (const n of graph.nodes) {
      check(n.op, n);
      // The op that auto_functionalized runs counts too.
      for (const a of n.args)
        if (a && typeof a === 'object' && !Array.isArray(a) && a.kind === 'op') check(a.target, n);
    }
    for (const s of Object.values(graph.submodules)) visit(s);
  };
  visit(g);
}
