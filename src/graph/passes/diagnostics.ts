// "Why didn't it fire": for an all-reduce the fusion did not replace, the node or gate that
// stopped it and what would unblock it. Walks forward from the all-reduce the way vLLM's
// patterns would, and names the first place the graph departs from them. Norms are read through
// the matcher layer (passes/matchers), so the custom op, the vLLM IR op and the native
// decomposition are explained alike.

import type { Node } from '../ir.ts';
import { isRef } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { usersOfValue } from '../match.ts';
import { functionalizedTarget } from '../call.ts';
import { lookupOp } from '../ops.ts';
import type { Diagnostic } from './pipeline.ts';
import type { ResolvedOptions } from './options.ts';
import { diagnostic } from './options.ts';
import type { GateFailure } from './fusionGate.ts';
import { PASS, fusionGate } from './fusionGate.ts';
import { collectiveUnder, hoistRefusal } from './sliceHoist.ts';
import type { MatchRefusal, NormOccurrence } from './matchers/index.ts';
import { findNorms } from './matchers/index.ts';
import { ALL_REDUCE, FUSED_ADD_RMS_NORM, RMS_NORM, WAIT_TENSOR } from './patternOps.ts';

const describe = (n: Node) => {
  const t = functionalizedTarget(n);
  return `${n.name} (${t !== undefined ? `${n.op.slice('higher_order.'.length)} ${t}` : n.op})`;
};

const describeNorm = (o: NormOccurrence, ix: GraphIndex) => {
  const anchor = ix.byName.get(o.anchor);
  return o.form === 'native' ? `the native ${o.op} at ${o.anchor}` : anchor ? describe(anchor) : o.anchor;
};

/** The norm occurrence reading `value` as its input (not its residual), if one does. */
function normReading(ix: GraphIndex, value: string): NormOccurrence | undefined {
  return findNorms(ix).occurrences.find((o) => isRef(o.input) && o.input.name === value);
}

/** The norm occurrence one of whose nodes is `node`. */
function normContaining(ix: GraphIndex, node: string): NormOccurrence | undefined {
  return findNorms(ix).occurrences.find((o) => o.nodes.includes(node));
}

/** A would-be norm that a reader of `value` belongs to, refused by the matcher. */
function refusedNormReading(ix: GraphIndex, value: string): MatchRefusal | undefined {
  const readers = usersOfValue(ix, value);
  return findNorms(ix).refusals.find((r) => r.nodes.some((n) => readers.includes(n)));
}

/**
 * Why an all-reduce and the norm reading it cannot be replaced as a whole, though both match: a
 * value the fused kernel overwrites or drops is still needed.
 */
export function siteStructureRefusal(
  ar: Node,
  norm: NormOccurrence,
  ix: GraphIndex,
): Omit<GateFailure, 'fix'> | null {
  const others = usersOfValue(ix, ar.name).filter((u) => !norm.nodes.includes(u));
  if (norm.op === 'fused_add_rms_norm') {
    if (others.length === 0) return null;
    return {
      blocker: others[0]!,
      reason: `${ar.name} has another user, ${others.join(', ')}, that needs the reduced tensor; the fused kernel overwrites it with the normed output`,
    };
  }
  // The first layer's other readers of the all-reduce read the fused op's [1]; its output buffer
  // (often empty_like(all_reduce)) must be the norm's alone.
  const buffer = norm.buffer && isRef(norm.buffer) ? norm.buffer.name : undefined;
  if (buffer !== undefined && others.includes(buffer) && usersOfValue(ix, buffer).length !== 1) {
    return { blocker: buffer, reason: `the norm's output buffer ${buffer} is read elsewhere` };
  }
  return null;
}

export function explainAllReduce(ar: Node, ix: GraphIndex, opts: ResolvedOptions): Diagnostic {
  const d = (reason: string, blocker?: string, fix?: string) =>
    diagnostic(PASS, ar.name, reason, blocker, fix);
  if (ar.op !== ALL_REDUCE) {
    // c10d functional collectives (training graphs, Megatron): vLLM's pattern is traced from
    // tensor_model_parallel_all_reduce, which is torch.ops.vllm.all_reduce.
    const wait = usersOfValue(ix, ar.name)
      .map((u) => ix.byName.get(u))
      .find((n) => n?.op === WAIT_TENSOR);
    const next = wait
      ? usersOfValue(ix, wait.name)
          .map((u) => ix.byName.get(u))
          .filter((n): n is Node => !!n)
      : [];
    const feeds = next.length ? `; its result feeds ${next.map(describe).join(', ')}` : '';
    return d(
      `${ar.name} is ${ar.op}, not vllm.all_reduce: vLLM's all-reduce + RMSNorm patterns match only the latter${feeds}`,
      ar.name,
    );
  }
  const users = usersOfValue(ix, ar.name);
  if (users.length === 0) return d(`${ar.name}'s result is not used`);
  // A norm called in place (fix_functionalization's output, TORCH_COMPILE_DEBUG's
  // fx_graph_transformed.py): vLLM's patterns see the norm only through auto_functionalized.
  const inPlace = users
    .map((u) => ix.byName.get(u))
    .find((n) => n && (n.op === RMS_NORM || n.op === FUSED_ADD_RMS_NORM));
  if (inPlace) {
    return d(
      `${ar.name} feeds ${describe(inPlace)}, called in place: vLLM's patterns match the norm through auto_functionalized, before fix_functionalization makes it an in-place call`,
      inPlace.name,
      "open the graph from before fix_functionalization (fx_graph_readable.py, or the dump's earlier stage)",
    );
  }
  const norm = normReading(ix, ar.name);
  if (norm) {
    const structure = siteStructureRefusal(ar, norm, ix);
    if (structure) return d(structure.reason, structure.blocker);
    const gate = fusionGate(ar, ix, norm.epsilon, opts);
    if ('blocker' in gate) return d(gate.reason, gate.blocker, gate.fix);
    return d(
      `${ar.name} → ${describeNorm(norm, ix)} matches vLLM's pattern; it fuses when allreduce-rmsnorm runs on it`,
      undefined,
      'run allreduce-rmsnorm',
    );
  }
  const refused = refusedNormReading(ix, ar.name);
  if (refused) return d(`${ar.name} feeds an RMSNorm the matcher refuses: ${refused.reason}`, refused.reader);
  if (users.length === 1) {
    const u = ix.byName.get(users[0]!);
    if (!u) return d(`${ar.name} is returned by the graph directly; no norm follows it`, 'output');
    const between = normReading(ix, u.name);
    if (between && u.op === 'aten.slice.Tensor') {
      const c = collectiveUnder(ix, u);
      const refusal = c ? hoistRefusal(ix, u, c.coll, c.wait) : null;
      if (refusal)
        return d(
          `${describe(u)} sits between ${ar.name} and the norm, and cannot be hoisted: ${refusal.reason}`,
          u.name,
        );
      return d(
        `${describe(u)} sits between ${ar.name} and the norm; run slice-hoist`,
        u.name,
        'run slice-hoist',
      );
    }
    if (between) {
      const kind = lookupOp(u.op)?.facts?.view ? 'a view no pass moves' : 'an op no pass moves';
      return d(`${describe(u)} sits between ${ar.name} and the norm (${kind})`, u.name);
    }
    const holder = normContaining(ix, u.name);
    if (holder && holder.residual && isRef(holder.residual) && holder.residual.name === ar.name) {
      return d(
        `${ar.name} reaches ${describeNorm(holder, ix)} as its residual, not its input`,
        holder.anchor,
      );
    }
    return d(
      `${ar.name} feeds ${describe(u)}, not an RMSNorm: no all-reduce + RMSNorm pattern applies`,
      u.name,
    );
  }
  const shown = users
    .slice(0, 3)
    .map((n) => ix.byName.get(n))
    .map((n) => (n ? describe(n) : 'output'))
    .join(', ');
  return d(
    `${ar.name} feeds ${users.length} nodes (${shown}${users.length > 3 ? ', …' : ''}), none of them an RMSNorm reading it as input`,
    users[0],
  );
}
