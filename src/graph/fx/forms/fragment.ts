// Node lines with no `def forward`, as pasted from a PR or an issue: names used but never
// defined become the graph's inputs, in order of first use, typed where their uses say how.

import type { Arg, Graph, Input, Node, ValueType } from '../../ir.ts';
import { isRef } from '../../ir.ts';
import { callForm, functionalizedTarget } from '../../call.ts';
import { lookupOp } from '../../ops.ts';
import { readBody, warnModuleCallsWithoutClass } from '../body.ts';
import { Tok as TokKinds } from '../lexer.ts';
import type { FxForm } from '../parse.ts';
import { readReadableLine } from '../readableLine.ts';
import { copyType } from '../reader.ts';
import { Scope } from '../scope.ts';

// A module-level copy: some transpilers turn every use of an imported binding into a getter call.
const Tok = TokKinds;

export const fragmentForm: FxForm = {
  match: () => true,
  read(r) {
    const scope = (r.scope = new Scope('fragment', 'fragment'));
    // From the top: a `# File:` comment above the first line is that line's source.
    r.pos = 0;
    readBody(r, {
      ends: (t) => t.kind === Tok.Eof,
      afterReturn: 'end of input',
      fileComments: true,
      skip(r, t) {
        if (r.isImportAt(r.pos) || r.isDeclarationAt(r.pos)) {
          r.skipToEndOfLine();
          return true;
        }
        if (r.isName(t, 'class') || r.isName(t, 'def')) {
          r.fail(
            t,
            `'${t.text}' after node lines: a text is either a module or a fragment of node lines`,
            'a node line',
          );
        }
        return false;
      },
      nodeLine: readReadableLine,
    });
    scope.resolve(r.src);
    const graph = scope.graph.build();
    inferInputTypes(graph);
    warnModuleCallsWithoutClass(r);
    return graph;
  },
};

/** Stands for an input's unknown type while asking the registry where a result's type comes from. */
const PROBE: ValueType = { kind: 'sym', expr: '<probe>' };

/**
 * A fragment's implicit inputs have no annotation; some types still follow from the text:
 * - the registry says the result has an argument's type (`all_reduce(x)`, `clone(x)`): probe each
 *   input argument and see whether the rule hands it back;
 * - `auto_functionalized(op, …)[k]`, k ≥ 1, is op's k-th mutated argument after the write, so
 *   that argument had the item's type.
 */
function inferInputTypes(g: Graph): void {
  const open = new Map<string, Input>();
  for (const i of g.inputs) if (i.type === null) open.set(i.name, i);
  if (open.size === 0) return;
  const byName = new Map<string, Node>();
  for (const n of g.nodes) byName.set(n.name, n);
  const learn = (a: Arg | undefined, t: ValueType): void => {
    if (a === undefined || !isRef(a)) return;
    const input = open.get(a.name);
    if (!input) return;
    input.type = copyType(t);
    open.delete(a.name);
  };
  for (const n of g.nodes) {
    if (!n.type || open.size === 0) continue;
    for (const a of [...n.args, ...Object.values(n.kwargs)])
      if (isRef(a) && open.has(a.name) && passesTypeThrough(n, a.name)) learn(a, n.type);
    const [base, index] = n.args;
    if (n.op === 'getitem' && base !== undefined && isRef(base) && typeof index === 'number' && index >= 1) {
      const af = byName.get(base.name);
      const target = af && callForm(af) === 'functionalized' ? functionalizedTarget(af) : undefined;
      if (!af || target === undefined) continue;
      const spec = lookupOp(target)?.args.filter((x) => x.mutates)[index - 1];
      if (spec) learn(af.kwargs[spec.name], n.type);
    }
  }
}

/** Whether the registry gives `n`'s result the type of its argument `name`. */
function passesTypeThrough(n: Node, name: string): boolean {
  const infer = lookupOp(n.op)?.infer;
  if (!infer) return false;
  try {
    return infer(n, (x) => (isRef(x) && x.name === name ? PROBE : undefined)) === PROBE;
  } catch {
    // A rule that needs real shapes cannot answer the probe.
    return false;
  }
}
