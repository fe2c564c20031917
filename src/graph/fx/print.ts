// Graph → FX text, in the form the graph came from: a print_readable module (`class …` +
// `def forward`), a bare fragment (node lines only), or str(graph). parseFx reads every form
// back to the same Graph.

import { usersOf, type Arg, type Graph, type Node, type ValueType } from '../ir.ts';
import { INFIX_OPERATORS, PREFIX_OPERATORS } from './operators.ts';
import { pyFloatRepr, pyIntRepr, pyStrRepr } from './pythonLiteral.ts';
import { printTypeAnnotation } from './typeAnnotation.ts';

const INFIX_SYMBOL = Object.fromEntries(Object.entries(INFIX_OPERATORS).map(([sym, op]) => [op, sym]));
const PREFIX_SYMBOL = Object.fromEntries(Object.entries(PREFIX_OPERATORS).map(([sym, op]) => [op, sym]));

/** Targets printed as written; every other op is a `torch.ops.` overload. */
const VERBATIM_PREFIXES = ['operator.', 'torch.', 'math.', 'builtins.', '_operator.'];

export function printFx(g: Graph): string {
  if (g.form === 'graph') return printGraphForm(g);
  const lines: string[] = [];
  if (g.form === 'fragment') printBody(g, '', lines);
  else printModule(g, '', lines);
  return lines.join('\n') + '\n';
}

function printModule(g: Graph, indent: string, lines: string[]): void {
  const inner = indent + '    ';
  lines.push(`${indent}class ${g.name}(torch.nn.Module):`);
  const params = ['self', ...g.inputs.map((i) => (i.type ? `${i.name}: ${typeString(i.type)}` : i.name))];
  lines.push(`${inner}def forward(${params.join(', ')}):`);
  printBody(g, inner + '    ', lines);
  for (const sub of Object.values(g.submodules)) {
    lines.push(inner + '    ');
    printModule(sub, inner, lines);
  }
}

function printBody(g: Graph, indent: string, lines: string[]): void {
  let file: string | undefined;
  for (const n of g.nodes) {
    if (n.meta.file !== file) {
      // As FX prints it: once per run of nodes from the same source line, after a blank line.
      lines.push(indent);
      lines.push(
        n.meta.file !== undefined
          ? `${indent} # File: ${n.meta.file}`
          : `${indent}# No stacktrace found for following nodes`,
      );
      file = n.meta.file;
    }
    const type = n.type ? `: ${typeString(n.type)}` : '';
    lines.push(`${indent}${n.name}${type} = ${nodeExpression(n)}`);
  }
  if (g.outputs) lines.push(`${indent}return ${printOutputs(g.outputs)}`);
}

export function typeString(t: ValueType): string {
  return `"${printTypeAnnotation(t)}"`;
}

/** `return (a, b)`: str(graph) names outputs without `%` too. */
export function printOutputs(outputs: Arg[]): string {
  const items = outputs.map((a) => printArg(a, false));
  return `(${items.join(', ')}${items.length === 1 ? ',' : ''})`;
}

function isOperand(a: Arg): boolean {
  if (typeof a === 'number') return true;
  return !!a && typeof a === 'object' && !Array.isArray(a) && (a.kind === 'ref' || a.kind === 'float');
}

function noKwargs(n: Node): boolean {
  for (const _ in n.kwargs) return false;
  return true;
}

function callTarget(op: string): string {
  if (!op.includes('.') || VERBATIM_PREFIXES.some((p) => op.startsWith(p))) return op;
  return `torch.ops.${op}`;
}

/** The right-hand side of a node line: `torch.ops.aten.mm.default(a, b)`, `x[0]`, `a * b`. */
export function nodeExpression(n: Node): string {
  if (n.op === 'call_module') return `self.${n.module}(${callArgs(n, false)})`;
  if (n.op === 'get_attr' && n.args.length === 1 && typeof n.args[0] === 'string' && noKwargs(n))
    return `self.${n.args[0]}`;
  const base = n.args[0];
  if (
    n.op === 'getitem' &&
    n.args.length === 2 &&
    noKwargs(n) &&
    base &&
    typeof base === 'object' &&
    !Array.isArray(base) &&
    base.kind === 'ref'
  ) {
    return `${base.name}[${printArg(n.args[1], false)}]`;
  }
  if (n.op in INFIX_SYMBOL && n.args.length === 2 && noKwargs(n) && n.args.every(isOperand)) {
    return `${printArg(n.args[0], false)} ${INFIX_SYMBOL[n.op]} ${printArg(n.args[1], false)}`;
  }
  if (
    n.op in PREFIX_SYMBOL &&
    n.args.length === 1 &&
    noKwargs(n) &&
    isOperand(n.args[0]) &&
    typeof n.args[0] === 'object'
  ) {
    const a = n.args[0];
    if (a && !Array.isArray(a) && a.kind === 'ref') return `${PREFIX_SYMBOL[n.op]}${a.name}`;
  }
  const target = n.op === 'getitem' ? 'operator.getitem' : callTarget(n.op);
  return `${target}(${callArgs(n, false)})`;
}

function callArgs(n: Node, graphForm: boolean): string {
  const parts = n.args.map((a) => printArg(a, graphForm));
  for (const k in n.kwargs) parts.push(`${k} = ${printArg(n.kwargs[k], graphForm)}`);
  return parts.join(', ');
}

export function printArg(a: Arg, graphForm: boolean): string {
  if (a === null) return 'None';
  if (a === true) return 'True';
  if (a === false) return 'False';
  if (typeof a === 'number') return pyIntRepr(a);
  if (typeof a === 'string') return pyStrRepr(a);
  if (Array.isArray(a)) return `[${a.map((x) => printArg(x, graphForm)).join(', ')}]`;
  switch (a.kind) {
    case 'ref':
      return graphForm ? `%${a.name}` : a.name;
    case 'float':
      return pyFloatRepr(a.value);
    case 'op':
      return `torch.ops.${a.target}`;
    case 'expr':
      return a.text;
    case 'tuple': {
      const items = a.items.map((x) => printArg(x, graphForm));
      return `(${items.join(', ')}${items.length === 1 ? ',' : ''})`;
    }
  }
}

// --- str(graph) ----------------------------------------------------------------------------

function printGraphForm(g: Graph): string {
  const users = usersOf(g);
  const lines = ['graph():'];
  const head = (name: string) => `    %${name} : [num_users=${users.get(name)?.length ?? 0}] = `;
  const trailing = (t: ValueType | null) => (t ? ` : ${typeString(t)}` : '');
  for (const i of g.inputs) lines.push(`${head(i.name)}placeholder[target=${i.name}]${trailing(i.type)}`);
  for (const n of g.nodes) {
    let call: string;
    if (n.op === 'get_attr' && n.args.length === 1 && typeof n.args[0] === 'string' && noKwargs(n)) {
      lines.push(`${head(n.name)}get_attr[target=${n.args[0]}]${trailing(n.type)}`);
      continue;
    }
    if (n.op === 'call_module') call = `call_module[target=${n.module}]`;
    else if (n.op.startsWith('Tensor.')) call = `call_method[target=${n.op.slice('Tensor.'.length)}]`;
    else if (n.op === 'getitem') call = 'call_function[target=operator.getitem]';
    else call = `call_function[target=${callTarget(n.op)}]`;
    const args = n.args.map((a) => printArg(a, true));
    const argTuple = `(${args.join(', ')}${args.length === 1 ? ',' : ''})`;
    const kwargs = Object.entries(n.kwargs)
      .map(([k, v]) => `${k}: ${printArg(v, true)}`)
      .join(', ');
    lines.push(`${head(n.name)}${call}(args = ${argTuple}, kwargs = {${kwargs}})${trailing(n.type)}`);
  }
  if (g.outputs) lines.push(`    return ${printOutputs(g.outputs)}`);
  return lines.join('\n') + '\n';
}
