// str(graph)'s form: `graph():`, then one line a node —
// `%mm : [num_users=2] = call_function[target=torch.ops.aten.mm.default](args = (%x, %w), kwargs = {})` —
// with placeholders for inputs, an optional trailing `: "bf16[…]"`, and `return` or an output node.
// Refs carry `%`; strings are printed without quotes.

import type { Arg, Node, ValueType } from '../../ir.ts';
import { readBody } from '../body.ts';
import { Tok as TokKinds, type Token } from '../lexer.ts';
import { opOfTarget } from '../operators.ts';
import type { FxForm } from '../parse.ts';
import { outputsOf, type FxReader } from '../reader.ts';
import { INPUT_ORDER, Scope } from '../scope.ts';

// A module-level copy: some transpilers turn every use of an imported binding into a getter call.
const Tok = TokKinds;

export const strGraphForm: FxForm = {
  match: (r, at) => r.isName(r.toks.at(at), 'graph') && r.isPunct(r.toks.at(at + 1), '('),
  read(r, at) {
    r.pos = at;
    const scope = (r.scope = new Scope('graph', 'graph'));
    r.graphMode = true;
    r.expectName('', 'graph');
    r.skipBalanced();
    r.expectPunct(':', 'after graph()');
    r.endStatement('graph():');
    readBody(r, {
      ends: (t) => t.kind === Tok.Eof,
      afterReturn: 'end of input',
      fileComments: false,
      nodeLine(r, t) {
        if (!r.isPunct(t, '%'))
          r.fail(t, `expected '%name : … = …' or 'return' in graph(), found ${r.describe(t)}`, "'%'");
        return readGraphLine(r);
      },
    });
    scope.resolve(r.src);
    return scope.graph.build();
  },
};

/** One `%name : [num_users=N] = kind[target=T](args = (…), kwargs = {…})` line; true for `output`. */
function readGraphLine(r: FxReader): boolean {
  r.next();
  const nameTok = r.expectName("after '%'");
  r.expectPunct(':', `after %${nameTok.text}`);
  // An optional type name, then `[num_users=N]` (`[#users=N]` in older PyTorch).
  for (;;) {
    const t = r.peek();
    if (r.isPunct(t, '[') || r.isPunct(t, '=')) break;
    if (r.isLineEnd(t)) r.fail(t, `expected '= kind[target=…]' after %${nameTok.text} :`, "'='");
    r.next();
  }
  if (r.isPunct(r.peek(), '[')) r.skipBalanced();
  r.expectPunct('=', `after %${nameTok.text} : [num_users=…]`);
  const kindTok = r.expectName('(placeholder, call_function, …)');
  const target = readTarget(r, kindTok.text);
  switch (kindTok.text) {
    case 'placeholder':
      readPlaceholder(r, nameTok);
      return false;
    case 'output':
      readOutput(r, nameTok);
      return true;
  }
  const node = r.beginNode(nameTok, null);
  readNodeCall(r, node, kindTok, target);
  node.type = trailingType(r, nameTok.text);
  r.endStatement(`%${nameTok.text}`);
  r.scope.graph.add(node);
  return false;
}

/** `[target=T]`, T as written. */
function readTarget(r: FxReader, kind: string): string {
  r.expectPunct('[', `after ${kind}`);
  r.expectName(`in ${kind}[…]`, 'target');
  r.expectPunct('=', `after ${kind}[target`);
  const targetStart = r.peek();
  let targetEnd = targetStart;
  while (!r.isPunct(r.peek(), ']')) {
    const u = r.next();
    if (r.isLineEnd(u)) r.fail(u, `expected ']' to close ${kind}[target=…`, "']'");
    targetEnd = u;
  }
  if (targetEnd === targetStart && r.isPunct(targetStart, ']'))
    r.fail(targetStart, 'empty target', 'a target');
  const target = r.sourceBetween(targetStart, targetEnd);
  r.next();
  return target;
}

function readPlaceholder(r: FxReader, nameTok: Token): void {
  if (r.isPunct(r.peek(), '(')) r.skipBalanced(); // `(default=…)`
  // The name is claimed before the type is read: a duplicate is reported first.
  r.scope.define(r.src, nameTok, INPUT_ORDER);
  r.scope.graph.input(nameTok.text, trailingType(r, nameTok.text), { line: nameTok.line });
  r.endStatement(`%${nameTok.text}`);
}

function readOutput(r: FxReader, nameTok: Token): void {
  const { args } = readCallArgs(r, 'output');
  r.scope.graph.setOutputs(outputsOf(args[0] ?? null));
  // The refs were recorded as uses of a node; outputs may use anything defined.
  r.scope.usesAreReturns(r.scope.graph.nodeCount);
  trailingType(r, nameTok.text);
  r.endStatement('output');
}

function readNodeCall(r: FxReader, node: Node, kindTok: Token, target: string): void {
  const kind = kindTok.text;
  if (kind === 'get_attr') {
    node.op = 'get_attr';
    node.args = [target];
  } else if (kind === 'call_function' || kind === 'call_method' || kind === 'call_module') {
    const { args, kwargs } = readCallArgs(r, kind);
    node.args = args;
    node.kwargs = kwargs;
    if (kind === 'call_module') {
      node.op = 'call_module';
      node.module = target;
    } else {
      node.op = kind === 'call_method' ? `Tensor.${target}` : opOfTarget(target);
    }
  } else {
    r.fail(
      kindTok,
      `unknown node kind '${kind}': expected placeholder, get_attr, call_function, call_method, call_module or output`,
      'a node kind',
    );
  }
}

/** `(args = (…), kwargs = {…})` */
function readCallArgs(r: FxReader, kind: string): { args: Arg[]; kwargs: Record<string, Arg> } {
  r.expectPunct('(', `after ${kind}[target=…]`);
  r.expectName(`in ${kind}(…)`, 'args');
  r.expectPunct('=', 'after args');
  const at = r.peek();
  if (!r.isPunct(at, '(')) r.fail(at, `expected a tuple after 'args =', found ${r.describe(at)}`, "'('");
  r.next();
  const args = r.isPunct(r.peek(), ')') ? (r.next(), []) : r.parseSequence(')', 'tuple');
  const kwargs: Record<string, Arg> = {};
  if (r.isPunct(r.peek(), ',')) {
    r.next();
    r.expectName(`in ${kind}(…)`, 'kwargs');
    r.expectPunct('=', 'after kwargs');
    r.expectPunct('{', "after 'kwargs ='");
    readKwargs(r, kwargs);
  }
  r.expectPunct(')', `to close ${kind}(args = …, kwargs = …)`);
  return { args, kwargs };
}

/** `k: v, …}` after the `{`. */
function readKwargs(r: FxReader, kwargs: Record<string, Arg>): void {
  while (!r.isPunct(r.peek(), '}')) {
    const k = r.next();
    if (k.kind !== Tok.Name && k.kind !== Tok.Str)
      r.fail(k, `expected a keyword name in kwargs, found ${r.describe(k)}`, 'a keyword');
    if (k.text in kwargs) r.fail(k, `keyword '${k.text}' given twice`);
    r.expectPunct(':', `after keyword '${k.text}'`);
    kwargs[k.text] = r.parseArg();
    const sep = r.peek();
    if (r.isPunct(sep, ',')) {
      r.next();
      continue;
    }
    if (!r.isPunct(sep, '}'))
      r.fail(sep, `expected ',' or '}' in kwargs, found ${r.describe(sep)}`, "',' or '}'");
  }
  r.next();
}

/** The `: "bf16[…]"` some dumps append to a str(graph) line. */
function trailingType(r: FxReader, owner: string): ValueType | null {
  if (!r.isPunct(r.peek(), ':')) return null;
  r.next();
  return r.quotedType(owner, "':'");
}
