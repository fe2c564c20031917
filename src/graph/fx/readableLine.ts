// A node line as print_readable (and a fragment pasted from it) prints one:
// `name[: "type"] = rhs[;  a = b = None]`, where rhs is an op call (`torch.ops.aten.mm.default(a, b)`),
// `x[1]` (getitem), `a * b` / `-a` (operator calls), `self.submod_0(…)` or `self.attr`; in Dynamo's
// torch-level graph also `x.view(…)` (a method call) and `l_x_ = L_x_` (an input's alias), which
// `torchLevel.ts` maps once the graph is read.

import type { Arg, Node, ValueType } from '../ir.ts';
import { PYTHON_KEYWORDS, Tok as TokKinds, type Token } from './lexer.ts';
import { INFIX_OPERATORS, opOfTarget, PREFIX_OPERATORS } from './operators.ts';
import type { FxReader } from './reader.ts';
import { METHOD_PREFIX, TORCH_ALIAS } from './torchLevel.ts';

// A module-level copy: some transpilers turn every use of an imported binding into a getter call.
const Tok = TokKinds;

/** Reads one node line and adds its node to the graph being read. */
export function readReadableLine(r: FxReader): boolean {
  const nameTok = r.next();
  if (nameTok.kind === Tok.Name && r.isPunct(r.peek(), ',')) {
    r.fail(r.peek(), `tuple unpacking ('${nameTok.text}, …= ') is not an FX node line`, "'='");
  }
  let type: ValueType | null = null;
  if (nameTok.kind === Tok.Name && r.isPunct(r.peek(), ':')) {
    r.next();
    type = r.quotedType(nameTok.text, `'${nameTok.text}:'`);
  }
  const node = r.beginNode(nameTok, type);
  r.expectPunct('=', `after '${nameTok.text}${type ? ': "…"' : ''}'`);
  readRhs(r, node);
  // `;  a = b = None` frees values in the generated Python; the graph does not need it.
  if (r.isPunct(r.peek(), ';')) {
    while (!r.isLineEnd(r.peek()) && r.peek().kind !== Tok.Comment) r.next();
  }
  r.endStatement(`node '${node.name}'`);
  r.scope.graph.add(node);
  return false;
}

function readRhs(r: FxReader, node: Node): void {
  const t = r.peek();
  if (r.isName(t, 'self') && r.isPunct(r.peek(1), '.')) return readSelfAttribute(r, node);
  if (t.kind === Tok.Punct && t.text in PREFIX_OPERATORS && r.peek(1).kind === Tok.Name) {
    r.next();
    node.op = PREFIX_OPERATORS[t.text];
    node.args = [readOperand(r)];
    return;
  }
  if (t.kind === Tok.Name && !PYTHON_KEYWORDS.has(t.text) && readCallOrItem(r, node, t)) return;
  // `l_x_ = L_x_`: Dynamo names each input again at the top of forward.
  if (
    t.kind === Tok.Name &&
    r.scope.defines(t.text) &&
    (r.isLineEnd(r.peek(1)) || r.isPunct(r.peek(1), ';'))
  ) {
    node.op = TORCH_ALIAS;
    node.args = [r.refUse(r.next())];
    return;
  }
  // `a * b`, `2 * s0`: operator calls as FX codegen prints them.
  if (t.kind === Tok.Name || t.kind === Tok.Int || t.kind === Tok.Float || r.isPunct(t, '-')) {
    const save = r.pos;
    const left = readOperand(r);
    const op = r.peek();
    if (op.kind === Tok.Punct && op.text in INFIX_OPERATORS) {
      r.next();
      node.op = INFIX_OPERATORS[op.text];
      node.args = [left, readOperand(r)];
      return;
    }
    r.pos = save;
  }
  r.fail(
    t,
    `expected an op call like torch.ops.aten.mm.default(…), x[0] or a * b after '${node.name} =', found ${r.describe(t)}`,
    'an op call',
  );
}

/** `self.submod_0(…)` (a submodule call) or `self.attr` (get_attr). */
function readSelfAttribute(r: FxReader, node: Node): void {
  r.next();
  r.next();
  const attr = r.expectName('after self.');
  if (r.isPunct(r.peek(), '(')) {
    node.op = 'call_module';
    node.module = attr.text;
    r.scope.moduleCalls.push({ node, line: attr.line, col: attr.col });
    readCallArgs(r, node, `self.${attr.text}`);
  } else {
    node.op = 'get_attr';
    node.args = [attr.text];
  }
}

/** A call target and its arguments (`torch.ops.aten.mm.default(…)`, `operator.getitem(…)`), or `x[i]`. */
function readCallOrItem(r: FxReader, node: Node, t: Token): boolean {
  let end = r.pos + 1;
  while (r.isPunct(r.toks.at(end), '.') && r.toks.at(end + 1).kind === Tok.Name) end += 2;
  // `x.view(…)` on a value read above: a method call, the value its first argument.
  if (end === r.pos + 3 && r.isPunct(r.toks.at(end), '(') && r.scope.defines(t.text)) {
    const method = r.toks.at(end - 1).text;
    node.args = [r.refUse(r.next())];
    r.pos = end;
    node.op = METHOD_PREFIX + method;
    readCallArgs(r, node, `${t.text}.${method}`);
    return true;
  }
  if (r.isPunct(r.toks.at(end), '(')) {
    const target = r.sourceBetween(t, r.toks.at(end - 1));
    r.pos = end;
    node.op = opOfTarget(target);
    readCallArgs(r, node, target);
    return true;
  }
  if (end === r.pos + 1 && r.isPunct(r.toks.at(end), '[')) {
    const base = r.refUse(r.next());
    r.next(); // '['
    const index = r.parseArg();
    r.expectPunct(']', `to close '${t.text}[…'`);
    node.op = 'getitem';
    node.args = [base, index];
    return true;
  }
  return false;
}

function readOperand(r: FxReader): Arg {
  const t = r.peek();
  if (t.kind === Tok.Name && !PYTHON_KEYWORDS.has(t.text) && t.text !== 'inf' && t.text !== 'nan') {
    r.next();
    return r.refUse(t);
  }
  if (t.kind === Tok.Int || t.kind === Tok.Float || r.isPunct(t, '-') || r.isName(t)) {
    const a = r.parseArg();
    if (
      typeof a === 'number' ||
      typeof a === 'boolean' ||
      (a && typeof a === 'object' && !Array.isArray(a) && a.kind === 'float')
    )
      return a;
  }
  r.fail(t, `expected a name or a number as an operand, found ${r.describe(t)}`, 'an operand');
}

/** `(a, b, k = v)`: positional arguments, then keywords. */
function readCallArgs(r: FxReader, node: Node, target: string): void {
  r.expectPunct('(', `after ${target}`);
  let sawKw: Token | null = null;
  while (!r.isPunct(r.peek(), ')')) {
    const t = r.peek();
    if (t.kind === Tok.Name && r.isPunct(r.peek(1), '=')) {
      r.next();
      r.next();
      if (t.text in node.kwargs) r.fail(t, `keyword argument '${t.text}' given twice to ${target}`);
      node.kwargs[t.text] = r.parseArg();
      sawKw = t;
    } else {
      if (sawKw)
        r.fail(
          t,
          `positional argument after keyword argument '${sawKw.text}' in ${target}(…)`,
          'a keyword argument',
        );
      node.args.push(r.parseArg());
    }
    const sep = r.peek();
    if (r.isPunct(sep, ',')) {
      r.next();
      continue;
    }
    if (!r.isPunct(sep, ')'))
      r.fail(
        sep,
        `expected ',' or ')' in the arguments of ${target}, found ${r.describe(sep)}`,
        "',' or ')'",
      );
  }
  r.next();
}
