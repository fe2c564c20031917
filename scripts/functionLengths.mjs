// How long each function of a TypeScript source is, in lines from its first token to its closing
// one (both counted), read with the TypeScript 5 compiler API of tools/lint. Nested functions are
// listed on their own as well as inside their parent's length.
import { lintTypeScript } from './lintTools.mjs';

/** A file whose header says it is generated (`// Generated … Do not edit.`, `@generated`, `*.gen.ts`). */
export function isGenerated(fileName, text) {
  if (/\.gen\.tsx?$/.test(fileName)) return true;
  const header = text.split('\n', 5).join('\n');
  return /^\s*(\/\/|\/\*|\*).*(@generated|\bgenerated\b.*\bdo not edit\b)/im.test(header);
}

/** Every function, method, accessor and constructor of `text`: `{ name, line, lines }`, `line` 1-based. */
export function functionLengths(fileName, text) {
  const ts = lintTypeScript();
  const kind = /\.tsx$/.test(fileName) ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, kind);
  const lineOf = (pos) => source.getLineAndCharacterOfPosition(pos).line;
  const found = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = lineOf(node.getStart(source));
      found.push({
        name: functionName(ts, node, source),
        line: first + 1,
        lines: lineOf(node.getEnd()) - first + 1,
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** What a reader would call the function: its own name, its class's, the binding or key it is
 *  assigned to, or the call it is handed to (`describe('…') callback`). */
function functionName(ts, node, source) {
  const owner =
    node.parent && ts.isClassLike(node.parent) && node.parent.name ? `${node.parent.name.text}.` : '';
  if (ts.isConstructorDeclaration(node)) return `${owner}constructor`;
  if (node.name) return owner + node.name.getText(source);
  const parent = node.parent;
  if (
    parent &&
    (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent))
  )
    return parent.name.getText(source);
  if (parent && ts.isCallExpression(parent)) {
    const first = parent.arguments[0];
    const label = first && ts.isStringLiteralLike(first) ? `'${first.text.slice(0, 40)}'` : '…';
    return `${parent.expression.getText(source)}(${label}) callback`;
  }
  return '<anonymous>';
}
