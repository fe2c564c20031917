// print_readable's form: `class GraphModule(torch.nn.Module):` holding `def forward(self, a: "bf16[…]", …):`
// and nested `class submod_N` modules that `self.submod_N(…)` calls; also a `def forward` pasted
// without its class.

import { MAX_SUBMODULE_DEPTH } from '../../errors.ts';
import type { Graph, ValueType } from '../../ir.ts';
import { readBody, warnModuleCallsWithoutClass } from '../body.ts';
import { PYTHON_KEYWORDS, Tok as TokKinds, type Token } from '../lexer.ts';
import type { FxForm } from '../parse.ts';
import { readReadableLine } from '../readableLine.ts';
import type { FxReader } from '../reader.ts';
import { Scope } from '../scope.ts';

// A module-level copy: some transpilers turn every use of an imported binding into a getter call.
const Tok = TokKinds;

export const moduleForm: FxForm = {
  match: (r, at) => r.isName(r.toks.at(at), 'class') || r.isName(r.toks.at(at), 'def'),
  read(r, at) {
    r.pos = at;
    const graph = r.isName(r.peek(), 'class') ? readClass(r, 1) : readBareForward(r);
    expectOnlyCommentsLeft(r, graph.name);
    return graph;
  },
};

/** A `class …:` and what it holds; `depth` counts the classes it sits in, itself included. */
function readClass(r: FxReader, depth: number): Graph {
  const classTok = r.expectName('to start a module', 'class');
  if (depth > MAX_SUBMODULE_DEPTH)
    r.fail(classTok, `submodule classes nested deeper than ${MAX_SUBMODULE_DEPTH} levels`);
  const nameTok = r.expectName('after class');
  if (r.isPunct(r.peek(), '(')) r.skipBalanced();
  r.expectPunct(':', `after class ${nameTok.text}(…)`);
  r.endStatement(`class ${nameTok.text}`);

  const outer = r.scope;
  const scope = (r.scope = new Scope(nameTok.text, 'module'));
  let forward: Token | null = null;
  for (;;) {
    r.release();
    const t = r.peek();
    if (t.kind === Tok.Newline || t.kind === Tok.Comment) {
      r.next();
      continue;
    }
    if (t.kind === Tok.Eof || t.indent <= classTok.indent) break;
    if (r.isName(t, 'def')) {
      if (forward) r.fail(t, `class ${nameTok.text} has a second def (the first is at line ${forward.line})`);
      forward = t;
      readForward(r);
    } else if (r.isName(t, 'class')) {
      const sub = readClass(r, depth + 1);
      r.scope = scope;
      if (scope.graph.hasSubmodule(sub.name))
        r.fail(t, `duplicate submodule class ${sub.name} in ${nameTok.text}`);
      scope.graph.submodule(sub);
    } else {
      r.fail(
        t,
        `expected 'def forward(self, …):' or a nested class in class ${nameTok.text}, found ${r.describe(t)}`,
        "'def forward'",
      );
    }
  }
  if (!forward) r.fail(classTok, `class ${nameTok.text} has no 'def forward(self, …):'`, "'def forward'");
  scope.resolve(r.src);
  for (const c of scope.moduleCalls) {
    if (!scope.graph.hasSubmodule(c.node.module!)) {
      throw r.src.error(
        `node '${c.node.name}' calls self.${c.node.module}, but class ${nameTok.text} defines no submodule ${c.node.module}`,
        c.line,
        c.col,
        `class ${c.node.module}`,
      );
    }
  }
  r.scope = outer;
  return scope.graph.build();
}

/** A `def forward(...)` pasted without its class. */
function readBareForward(r: FxReader): Graph {
  const scope = (r.scope = new Scope('GraphModule', 'module'));
  readForward(r);
  scope.resolve(r.src);
  warnModuleCallsWithoutClass(r);
  return scope.graph.build();
}

/** `def forward(self, a: "bf16[…]", …):` and its body. */
function readForward(r: FxReader): void {
  const defTok = r.expectName('', 'def');
  r.expectName(`after def (print_readable prints 'def forward')`, 'forward');
  r.expectPunct('(', 'after def forward');
  let first = true;
  while (!r.isPunct(r.peek(), ')')) {
    const p = r.next();
    const type = readParameter(r, p);
    if (!(first && p.text === 'self')) r.defineInput(p, type);
    first = false;
    if (r.isPunct(r.peek(), ',')) {
      r.next();
      continue;
    }
    if (!r.isPunct(r.peek(), ')'))
      r.fail(r.peek(), `expected ',' or ')' in def forward(…), found ${r.describe(r.peek())}`, "',' or ')'");
  }
  r.next();
  if (r.isPunct(r.peek(), '->')) {
    while (!r.isPunct(r.peek(), ':') && !r.isLineEnd(r.peek())) r.next();
  }
  r.expectPunct(':', 'at the end of def forward(…)');
  r.endStatement('def forward(…):');
  readBody(r, {
    ends: (t) => t.kind === Tok.Eof || t.indent <= defTok.indent,
    afterReturn: 'end of forward',
    fileComments: true,
    nodeLine: readReadableLine,
  });
}

/** A parameter `p` of forward: its annotated type, past a default value. */
function readParameter(r: FxReader, p: Token): ValueType | null {
  if (r.isPunct(p, '*') || r.isPunct(p, '**'))
    r.fail(p, 'variadic parameters (*args) are not supported in forward()');
  if (p.kind !== Tok.Name || PYTHON_KEYWORDS.has(p.text))
    r.fail(p, `expected a parameter name in def forward(…), found ${r.describe(p)}`, 'a parameter name');
  let type: ValueType | null = null;
  if (r.isPunct(r.peek(), ':')) {
    r.next();
    type = r.quotedType(p.text, `'${p.text}:'`, false);
  }
  if (r.isPunct(r.peek(), '=')) {
    r.next();
    r.parseArg(); // a default value: not part of the graph
  }
  return type;
}

function expectOnlyCommentsLeft(r: FxReader, className: string): void {
  for (;;) {
    const t = r.next();
    if (t.kind === Tok.Eof) return;
    if (t.kind === Tok.Comment || t.kind === Tok.Newline) continue;
    r.fail(
      t,
      `unexpected ${r.describe(t)} after the end of class ${className}: expected one module per text`,
      'end of input',
    );
  }
}
