// auto_functionalized_v2: each mutated argument is a view of one of `_all_bases` (the base
// itself, `_x_slice_dim/_start/_end`, or `_x_size/_stride/_storage_offset`); the op runs on those
// views and the results are [its return, each base with the new values written in].

import type { Arg, Node } from '../../graph/ir.ts';
import { numberOf } from '../../graph/ir.ts';
import { functionalizedTarget, functionalizedView, normalizeTarget } from '../../graph/call.ts';
import { lookupOp } from '../../graph/ops.ts';
import type { View } from '../../graph/opTable.ts';
import type { PlanBuilder } from './builder.ts';
import type { Lowered, Value } from './lowering.ts';
import { lowerCall } from './table.ts';

const items = (a: Arg | undefined): Arg[] =>
  Array.isArray(a) ? a : a && typeof a === 'object' && a.kind === 'tuple' ? a.items : [];

/** The view of `base` that v2 passes as mutated argument `name` (its keys read by graph/call.ts). */
function viewOfBase(b: PlanBuilder, n: Node, name: string, base: View): View {
  const v = functionalizedView(n, name);
  if (v?.view === 'slice') {
    const dim = numberOf(v.dim) ?? 0;
    const size = base.shape[dim];
    const start = Math.min(b.symInt(n, v.start ?? 0), size);
    const end = Math.min(b.symInt(n, v.end ?? size), size);
    const shape = [...base.shape];
    shape[dim] = end - start;
    return { ...base, offset: base.offset + start * base.strides[dim], shape };
  }
  if (v?.view === 'strided') {
    const shape = items(v.size).map((d) => b.symInt(n, d));
    const strides = items(v.stride).map((d) => b.symInt(n, d));
    return { ...base, offset: base.offset + b.symInt(n, v.storageOffset ?? 0), shape, strides };
  }
  return base;
}

export function lowerFunctionalizedV2(b: PlanBuilder, n: Node): Lowered {
  const wrapped = functionalizedTarget(n);
  const target = wrapped === undefined ? null : normalizeTarget(wrapped);
  const def = target ? lookupOp(target) : undefined;
  const basesArg = n.kwargs['_all_bases'];
  if (!target || !def || !Array.isArray(basesArg)) return 'unsupported';
  const bases = basesArg.map((a, i) => b.contiguous(b.tensor(a, n, `_all_bases[${i}]`), n));
  const views = new Map<string, { base: number; view: View }>();
  for (const a of def.args.filter((x) => x.mutates)) {
    const bi = numberOf(n.kwargs[`_${a.name}_base_index`] ?? null);
    if (bi === undefined) continue;
    const base = bases[bi] ?? b.fail(n, `_${a.name}_base_index ${bi} is outside _all_bases`);
    const view = viewOfBase(b, n, a.name, base);
    b.values.set(`${n.name}.${a.name}`, { t: 'tensor', view });
    views.set(a.name, { base: bi, view });
  }
  const r = lowerCall(b, n, target, (_i, name) =>
    views.has(name) ? { kind: 'ref', name: `${n.name}.${name}` } : n.kwargs[name],
  );
  if (r === 'unsupported') return 'unsupported';
  const results = r.t === 'tuple' ? r.items : [r];
  // New bases: a copy of each, then every mutated view's result written into its box.
  const newBases = bases.map((base, i) => {
    const out = b.newStorage(`${n.name}[${i + 1}]`, base.dtype, base.shape);
    b.push(n, { kernel: 'copy', x: base, out: out.storage });
    return out;
  });
  def.args
    .filter((x) => x.mutates)
    .forEach((a, k) => {
      const v = views.get(a.name);
      const res = results[k + 1];
      if (!v || !res || res.t !== 'tensor') return;
      const base = bases[v.base];
      b.writeInto(
        n,
        { ...v.view, storage: newBases[v.base].storage, offset: v.view.offset - base.offset },
        res.view,
      );
    });
  return {
    t: 'tuple',
    items: [results[0] ?? { t: 'none' }, ...newBases.map((v): Value => ({ t: 'tensor', view: v }))],
  };
}
