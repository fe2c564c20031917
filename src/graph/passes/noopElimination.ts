// noop-elimination, after vLLM's NoOpEliminationPass: reshapes whose result has the shape of
// their input (directly, or through a chain of reshapes), and slices over a dimension's full
// range, are the identity and are removed. Decided from the annotated result types.

import type { Node, TensorType, ValueType } from '../ir.ts';
import { isRef, ref } from '../ir.ts';
import { P, argOf, usersOfValue } from '../match.ts';
import type { Pass } from './pipeline.ts';
import { resolveOptions } from './options.ts';
import type { Rule } from './rules.ts';
import { runRules } from './rules.ts';

const PASS = 'noop-elimination';
const RESHAPES = ['aten.view.default', 'aten.reshape.default', 'aten._unsafe_view.default'];
/** FX prints an open slice end as INT64_MAX. */
const INT64_MAX = 9223372036854775807;

function sameShape(a: ValueType | null | undefined, b: ValueType | null | undefined): boolean {
  if (!a || !b || a.kind !== 'tensor' || b.kind !== 'tensor') return false;
  return a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}

function inputName(n: Node): string | undefined {
  const a = n.args[0];
  return a && isRef(a) ? a.name : undefined;
}

const reshapeToSameShape: Rule = {
  name: 'reshape to the same shape',
  pattern: P.node(RESHAPES, { as: 'view', where: (n, _b, ix) => {
    const src = inputName(n);
    return src !== undefined && sameShape(n.type, ix.types.get(src));
  } }),
  site: (b) => b.nodes['view']!.name,
  check: () => null,
  rewrite(b, edit) {
    const v = b.nodes['view']!;
    edit.remove(v.name);
    edit.replaceUses(v.name, ref(inputName(v)!));
    return { consumed: [v.name], produced: [] };
  },
};

/** view(view(x)) back to x's shape: both go when the inner one has no other reader. */
const reshapeChainToSameShape: Rule = {
  name: 'reshape chain back to the same shape',
  pattern: P.node(RESHAPES, { as: 'outer', args: [P.node(RESHAPES, { as: 'inner' })], where: (n, b, ix) => {
    const src = inputName(b.nodes['inner']!);
    return src !== undefined && !sameShape(n.type, b.nodes['inner']!.type) && sameShape(n.type, ix.types.get(src));
  } }),
  site: (b) => b.nodes['outer']!.name,
  check: () => null,
  rewrite(b, edit, { ix }) {
    const outer = b.nodes['outer']!, inner = b.nodes['inner']!;
    edit.remove(outer.name);
    edit.replaceUses(outer.name, ref(inputName(inner)!));
    const consumed = [outer.name];
    if (usersOfValue(ix, inner.name).length === 1) { edit.remove(inner.name); consumed.push(inner.name); }
    return { consumed, produced: [] };
  },
};

const fullRangeSlice: Rule = {
  name: 'slice over the full range',
  pattern: P.node('aten.slice.Tensor', { as: 'slice', where: (n, _b, ix) => {
    const src = inputName(n);
    if (src === undefined) return false;
    const t = ix.types.get(src);
    if (!t || t.kind !== 'tensor') return false;
    const start = argOf(n, 2, 'start'), end = argOf(n, 3, 'end'), step = argOf(n, 4, 'step');
    const dimArg = argOf(n, 1, 'dim');
    if (typeof dimArg !== 'number') return false;
    const size = (t as TensorType).shape[dimArg < 0 ? dimArg + t.shape.length : dimArg];
    const endCovers = end === null || end === INT64_MAX || (typeof end === 'number' && typeof size === 'number' && end >= size);
    return (start === null || start === 0) && (step === 1 || step === undefined) && endCovers && sameShape(n.type ?? t, t);
  } }),
  site: (b) => b.nodes['slice']!.name,
  check: () => null,
  rewrite(b, edit) {
    const s = b.nodes['slice']!;
    edit.remove(s.name);
    edit.replaceUses(s.name, ref(inputName(s)!));
    return { consumed: [s.name], produced: [] };
  },
};

export const RULES: Rule[] = [fullRangeSlice, reshapeToSameShape, reshapeChainToSameShape];

export const noopElimination: Pass = (g, opts, only) => runRules(PASS, RULES, g, resolveOptions(g, opts), only);
