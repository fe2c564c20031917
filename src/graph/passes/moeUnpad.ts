// moe-unpad, after vLLM #30647 (the fix that replaced the reverted PR #28841): GPT-OSS's MoE
// kernel wants the hidden size aligned to its tile (2880 → 3072), so vLLM padded the input and
// sliced the output back, and the slice sat between the all-reduce and the norm. The re-land
// folds the pad into the MoE's input alignment and the slice into its output shape: the MoE
// reads [T, 2880] and writes [T, 2880] (its weights stay padded), so
//
//   slice(all_reduce(moe_forward(constant_pad_nd(h, [0, P−H]))[0]), −1, 0, H)   (the original)
//   all_reduce(slice(moe_forward(constant_pad_nd(h, [0, P−H]))[0], −1, 0, H))   (after slice-hoist)
//       → all_reduce(moe_forward(h)[0])
//
// Legal because the pad adds zero columns, which add exact zeros to every product the MoE sums,
// and the slice drops exactly the columns the pad added: the kept columns are the same values
// summed in the same order. Refused when the pad is not a zero pad of the last dim's high end, the
// slice does not keep exactly the unpadded columns, or a padded value has another reader.

import type { Arg, Node } from '../ir.ts';
import { isRef, numberOf, ref } from '../ir.ts';
import type { Bindings, GraphIndex } from '../match.ts';
import { P, argOf, tensorOf, usersOfValue } from '../match.ts';
import { AUTO_FUNCTIONALIZED, callForm, functionalizedTarget } from '../call.ts';
import type { Diagnostic, Pass } from './pipeline.ts';
import { diagnostic, resolveOptions } from './options.ts';
import type { Rule } from './rules.ts';
import { runRules } from './rules.ts';
import { ALL_REDUCE, CONSTANT_PAD, MOE_FORWARD, SLICE } from './patternOps.ts';

export const PASS = 'moe-unpad';

/** The MoE's output getitem [0] and the pad it reads, or null when its input is not a pad. */
function moeSite(ix: GraphIndex, out: Node): { moe: Node; pad: Node } | null {
  if (out.op !== 'getitem' || out.args[1] !== 0 || !isRef(out.args[0] as Arg)) return null;
  const moe = ix.byName.get((out.args[0] as { name: string }).name);
  if (!moe || callForm(moe) !== 'functionalized' || functionalizedTarget(moe) !== MOE_FORWARD) return null;
  const hs = moe.kwargs['hidden_states'];
  const pad = hs && isRef(hs) ? ix.byName.get(hs.name) : undefined;
  return pad && pad.op === CONSTANT_PAD ? { moe, pad } : null;
}

/** Why the pad + slice around this MoE cannot fold into it, or null. */
function unpadRefusal(
  ix: GraphIndex,
  pad: Node,
  moe: Node,
  out: Node,
  slice: Node,
  between: Node[],
): Diagnostic | null {
  const d = (reason: string, blocker: string) => diagnostic(PASS, moe.name, reason, blocker);
  const inT = tensorOf(ix, pad.args[0]);
  const padT = tensorOf(ix, ref(pad.name));
  if (!inT || !padT) return d(`${pad.name}'s shapes are unknown, so the pad cannot be checked`, pad.name);
  const amounts = argOf(pad, 1, 'pad');
  const value = numberOf(argOf(pad, 2, 'value') ?? 0);
  if (
    !Array.isArray(amounts) ||
    amounts.length !== 2 ||
    amounts[0] !== 0 ||
    typeof amounts[1] !== 'number' ||
    amounts[1] <= 0
  ) {
    return d(
      `${pad.name} pads ${JSON.stringify(amounts)}: only a pad of the last dim's high end ([0, n]) folds into the MoE's alignment`,
      pad.name,
    );
  }
  if (value !== 0)
    return d(
      `${pad.name} pads with ${value}, not 0: the padded columns would change the MoE's sums`,
      pad.name,
    );
  const rank = inT.shape.length;
  const hidden = inT.shape[rank - 1];
  const dimArg = argOf(slice, 1, 'dim'),
    start = argOf(slice, 2, 'start') ?? 0,
    end = argOf(slice, 3, 'end'),
    step = argOf(slice, 4, 'step') ?? 1;
  const dim = typeof dimArg === 'number' && dimArg < 0 ? dimArg + rank : dimArg;
  if (dim !== rank - 1 || start !== 0 || step !== 1 || end !== hidden) {
    return d(
      `${slice.name} takes [${String(start)}:${String(end)}:${String(step)}] of dim ${String(dimArg)}, not exactly the ${String(hidden)} unpadded columns`,
      slice.name,
    );
  }
  for (const [n, only] of [
    [pad, moe.name],
    [out, between[0]?.name ?? slice.name],
    ...between.map((b) => [b, slice.name] as const),
  ] as const) {
    const others = usersOfValue(ix, n.name).filter((u) => u !== only);
    if (others.length > 0)
      return d(`${n.name} is also read by ${others.join(', ')}, which needs the padded columns`, others[0]!);
  }
  return null;
}

function rewriteUnpad(b: Bindings, edit: Parameters<Rule['rewrite']>[1], hoisted: boolean) {
  const slice = b.nodes['slice']!,
    out = b.nodes['out']!,
    moe = b.nodes['moe']!,
    pad = b.nodes['pad']!;
  const ar = b.nodes['ar'];
  const sliceT = slice.type;
  const from = [pad.name, moe.name];
  const newMoe = edit.make(
    moe.name,
    AUTO_FUNCTIONALIZED,
    moe.args,
    { ...moe.kwargs, hidden_states: pad.args[0] as Arg },
    from,
    null,
  );
  const newOut = edit.make(out.name, 'getitem', [ref(newMoe.name), 0], {}, [out.name, slice.name], sliceT);
  const made = [newMoe, newOut];
  const consumed = [pad.name, moe.name, out.name, slice.name];
  if (ar) {
    const newAr = edit.make(
      ar.name,
      ALL_REDUCE,
      [ref(newOut.name), ...ar.args.slice(1)],
      ar.kwargs,
      [ar.name],
      sliceT,
    );
    made.push(newAr);
    consumed.push(ar.name);
    // Readers of the slice (original) or of the all-reduce (hoisted) read the unpadded reduction.
    edit.replaceUses(hoisted ? ar.name : slice.name, ref(newAr.name));
  } else {
    edit.replaceUses(slice.name, ref(newOut.name));
  }
  edit.insertBefore(moe.name, ...made);
  edit.remove(...consumed);
  return { consumed, produced: made.map((n) => n.name) };
}

const outPat = () =>
  P.node('getitem', {
    as: 'out',
    where: (n, b, ix) => {
      const s = moeSite(ix, n);
      if (!s) return false;
      b.nodes['moe'] = s.moe;
      b.nodes['pad'] = s.pad;
      return true;
    },
  });

/** slice(all_reduce(moe(pad(h))[0])): the original GPT-OSS graph. */
const sliceAfterReduce: Rule = {
  name: 'pad → MoE → all_reduce → slice',
  pattern: P.node(SLICE, { as: 'slice', args: [P.node(ALL_REDUCE, { as: 'ar', args: [outPat()] })] }),
  site: (b) => b.nodes['moe']!.name,
  check(b, { ix }) {
    return unpadRefusal(ix, b.nodes['pad']!, b.nodes['moe']!, b.nodes['out']!, b.nodes['slice']!, [
      b.nodes['ar']!,
    ]);
  },
  rewrite: (b, edit) => rewriteUnpad(b, edit, false),
};

/** all_reduce(slice(moe(pad(h))[0])): after slice-hoist (PR #28841's graph); also no all-reduce at TP 1. */
const sliceBeforeReduce: Rule = {
  name: 'pad → MoE → slice (→ all_reduce)',
  pattern: P.node(SLICE, { as: 'slice', args: [outPat()] }),
  site: (b) => b.nodes['moe']!.name,
  check(b, { ix }) {
    return unpadRefusal(ix, b.nodes['pad']!, b.nodes['moe']!, b.nodes['out']!, b.nodes['slice']!, []);
  },
  rewrite(b, edit, { ix }) {
    const slice = b.nodes['slice']!;
    const users = usersOfValue(ix, slice.name).map((u) => ix.byName.get(u));
    const ar = users.length === 1 && users[0]?.op === ALL_REDUCE ? users[0] : undefined;
    if (ar) b.nodes['ar'] = ar;
    return rewriteUnpad(b, edit, true);
  },
};

export const RULES: Rule[] = [sliceAfterReduce, sliceBeforeReduce];

export const moeUnpad: Pass = (g, opts, only) => runRules(PASS, RULES, g, resolveOptions(g, opts), only);
