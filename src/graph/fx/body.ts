// The one loop over a graph's body that every FX form shares: blank lines, `# File:` comments
// (the provenance of the nodes below them), one statement a line, `return`, and nothing after the
// return. A form says where its body ends and how it reads a node line.

import type { Token } from './lexer.ts';
import { Tok as TokKinds } from './lexer.ts';
import type { FxReader } from './reader.ts';

// A module-level copy: some transpilers turn every use of an imported binding into a getter call.
const Tok = TokKinds;

export interface BodySyntax {
  /** Whether `t` is past the body (the end of the text, or a line indented no deeper than `def`). */
  ends(t: Token): boolean;
  /** What may follow the return, as errors name it. */
  afterReturn: string;
  /** Whether `# File:` comments give the nodes below them their source (str(graph) has none). */
  fileComments: boolean;
  /** Lines read before anything else, such as a fragment's imports; true when `t`'s line was one. */
  skip?(r: FxReader, t: Token): boolean;
  /** Reads the node line at `t`; true when it was the graph's output (str(graph)'s output node). */
  nodeLine(r: FxReader, t: Token): boolean;
}

export function readBody(r: FxReader, syntax: BodySyntax): void {
  let returned: Token | null = null;
  for (;;) {
    r.release();
    const t = r.peek();
    if (t.kind === Tok.Newline) {
      r.next();
      continue;
    }
    if (t.kind === Tok.Comment) {
      if (syntax.fileComments) readComment(r);
      else r.next();
      continue;
    }
    if (syntax.ends(t)) break;
    if (syntax.skip?.(r, t)) continue;
    if (returned)
      r.fail(t, `unexpected statement after the return at line ${returned.line}`, syntax.afterReturn);
    if (r.isName(t, 'return')) {
      returned = t;
      readReturn(r);
    } else if (syntax.nodeLine(r, t)) {
      returned = t;
    }
  }
}

function readComment(r: FxReader): void {
  const text = r.next().text.trimStart();
  if (text.startsWith('File: ')) r.scope.file = text.slice(6);
  else if (text.startsWith('No stacktrace found')) r.scope.file = undefined;
}

function readReturn(r: FxReader): void {
  const t = r.next();
  if (r.scope.graph.hasOutputs) r.fail(t, 'a second return');
  r.scope.graph.setOutputs(r.returnedValues());
  r.endStatement('return');
}

/** `self.submod_N(…)` where the text holds no class submod_N: a fragment or a pasted forward. */
export function warnModuleCallsWithoutClass(r: FxReader): void {
  for (const c of r.scope.moduleCalls)
    r.warnings.push({
      line: c.line,
      node: c.node.name,
      message: `calls self.${c.node.module}, whose class is not in the text`,
    });
}
