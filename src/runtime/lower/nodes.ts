// The node loop's one step: a node is a getitem, or a call in one of the forms graph/call.ts
// reads (plain, auto_functionalized v1 or v2, an in-place call); each form unwraps to the op's
// lowering. A node no kernel computes is fed from its annotated types, or reported.

import type { Node, ValueType } from '../../graph/ir.ts';
import { isRef, numberOf } from '../../graph/ir.ts';
import {
  callArg,
  callForm,
  forEachInput,
  functionalizedTarget,
  isInPlace,
  normalizeTarget,
} from '../../graph/call.ts';
import { lookupOp } from '../../graph/ops.ts';
import { RunError } from '../runError.ts';
import type { PlanBuilder } from './builder.ts';
import { lowerFunctionalizedV2 } from './functionalizedV2.ts';
import { NONE, type Value } from './lowering.ts';
import { lowerCall } from './table.ts';

export function lowerNode(b: PlanBuilder, n: Node): void {
  let result: Value | null;
  try {
    result = lowerForm(b, n);
  } catch (e) {
    // Only a consequence of an unsupported op passes quietly (the op is reported at the end): a
    // node that fails on an input an unsupported node left without a value. Any other input
    // error is the graph's own and surfaces.
    if (e instanceof RunError && e.kind === 'input' && readsLost(b, n)) {
      b.lost.add(n.name);
      b.values.set(n.name, NONE);
      return;
    }
    throw e;
  }
  if (result && result.t === 'tensor' && n.type?.kind === 'tensor') {
    const want = b.mapType(n.type, n.name).shape;
    // An int32 buffer of byte values (vLLM's swizzled NVFP4 block scales, four e4m3 a word) is held
    // a value a byte: four times its last dim.
    if (n.type.dtype === 'i32' && result.view.dtype !== 'i32' && want.length > 0)
      want[want.length - 1] = 4 * want[want.length - 1]!;
    if (want.join() !== result.view.shape.join())
      b.fail(
        n,
        `computed shape [${result.view.shape}] but the graph says [${want}] (after the preset's sizes)`,
      );
  }
  b.values.set(n.name, result ?? NONE);
}

function lowerForm(b: PlanBuilder, n: Node): Value | null {
  if (n.op === 'getitem') return lowerGetitem(b, n);
  switch (callForm(n)) {
    case 'functionalized_v2': {
      const r = lowerFunctionalizedV2(b, n);
      return r === 'unsupported' ? unsupported(b, n, n.op) : r;
    }
    case 'functionalized':
      return lowerFunctionalized(b, n);
    case 'plain':
      return lowerPlain(b, n);
  }
}

/** Recorded for the report at the end; the node's value is nothing, and lost to its readers. */
function unsupported(b: PlanBuilder, n: Node, op: string): Value {
  b.unsupported.push(`${n.name} (${op})`);
  b.lost.add(n.name);
  return NONE;
}

/** Whether the node reads a value an unsupported op left missing. */
function readsLost(b: PlanBuilder, n: Node): boolean {
  let lost = false;
  forEachInput(n, (name) => (lost ||= b.lost.has(name)));
  return lost;
}

function lowerGetitem(b: PlanBuilder, n: Node): Value {
  const src = b.resolve(n.args[0], n);
  const idx = numberOf(n.args[1]) ?? -1;
  if ((!src || src.t !== 'tuple') && readsLost(b, n)) {
    b.lost.add(n.name);
    return NONE;
  }
  if (!src || src.t !== 'tuple' || !src.items[idx]) {
    const from = isRef(n.args[0]) ? n.args[0].name : String(n.args[0]);
    return b.fail(n, `item ${idx} of '${from}' does not exist`);
  }
  return src.items[idx];
}

/** auto_functionalized: every argument a keyword; results [the op's return, its mutated arguments…]. */
function lowerFunctionalized(b: PlanBuilder, n: Node): Value | null {
  const wrapped = functionalizedTarget(n);
  if (wrapped === undefined) return b.fail(n, 'the first argument must be the op to run');
  const target = normalizeTarget(wrapped);
  const r = lowerCall(b, n, target, (_i, name) => n.kwargs[name]);
  if (r !== 'unsupported') return r.t === 'tuple' ? r : { t: 'tuple', items: [r] };
  const def = lookupOp(target);
  // The functionalized results are [return, mutated args…]: their types are the mutated args' types.
  const types: (ValueType | null)[] | null = def
    ? [
        null,
        ...def.args
          .filter((a) => a.mutates)
          .map((a) => {
            const v = n.kwargs[a.name];
            return v !== null && v !== undefined && isRef(v) ? b.typeOf(v.name) : null;
          }),
      ]
    : null;
  // An op outside the registry: its results are typed by the getitem nodes that read them.
  const known = types && types.slice(1).some((t) => t) ? types : (b.itemTypes(n.name) ?? null);
  return (known && b.feed(n, known)) || unsupported(b, n, target);
}

/** A plain call; an in-place one (after decompose_auto_functionalized) writes its new values back into its arguments. */
function lowerPlain(b: PlanBuilder, n: Node): Value | null {
  const op = normalizeTarget(n.op);
  const get = (i: number, name: string) => callArg(n, i, name);
  const r = lowerCall(b, n, op, get);
  if (r === 'unsupported')
    return (n.type && n.type.kind === 'tensor' ? b.feed(n, [n.type]) : null) || unsupported(b, n, n.op);
  if (r.t !== 'tuple' || !isInPlace(n)) return r;
  const specs = lookupOp(op)!.args;
  specs
    .filter((a) => a.mutates)
    .forEach((a, k) => {
      const item = r.items[k + 1];
      const target = get(specs.indexOf(a), a.name);
      if (item?.t === 'tensor' && target && isRef(target))
        b.writeInto(n, b.tensor(target, n, a.name), item.view);
    });
  return NONE;
}
