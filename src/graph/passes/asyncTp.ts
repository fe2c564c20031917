// async-tp, after vLLM's AsyncTPPass (collective_fusion.py), run after sequence-parallelism:
//
//   reduce_scatter(mm(a, b), dim 0)  → symm_mem.fused_matmul_reduce_scatter(a, b, 'sum', scatter_dim = 0, group_name)
//   mm(all_gather(x, dim 0), w)      → symm_mem.fused_all_gather_matmul(x, [w], gather_dim = 0, group_name)[1][0]
//
// and the same with the FP8 GEMMs (_scaled_mm, cutlass_scaled_mm: asyncTpGemm.ts) into
// symm_mem.fused_scaled_matmul_reduce_scatter / fused_all_gather_scaled_matmul.
//
// Each fused op runs the matmul in chunks over symmetric memory, so a chunk's transfer overlaps
// the next chunk's matmul. Gates as vLLM's patterns: a collective over the TP group (the patterns
// name tp.unique_name), along dim 0 (the token dim); the all_gather or the GEMM must have no reader
// outside the pattern (vLLM's replacement returns the matmul output only, although the fused op
// also returns the gathered input); the token count divides by the world size. A biased matmul
// (addmm) is not a GEMM the patterns match: it stays, and the diagnostic says so.
//
// The reduce op is 'sum', as vLLM after #33088 (the PR's 'avg' divided the reduced sum by the
// world size, which the unfused reduce_scatter does not: DESIGN.md).

import type { Arg, Node, TensorType } from '../ir.ts';
import { isRef, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { P, indexGraph, usersOfValue, tensorOf } from '../match.ts';
import { calledOp } from '../call.ts';
import type { ResolvedOptions } from './options.ts';
import { diagnostic, resolveOptions } from './options.ts';
import type { Diagnostic, Pass } from './pipeline.ts';
import type { Rule } from './rules.ts';
import { runRules } from './rules.ts';
import { TOKEN_DIM, splitRefusal } from './sequenceParallelGate.ts';
import { reduceGroup, tpGroupGate } from './fusionGate.ts';
import type { Gemm } from './asyncTpGemm.ts';
import {
  fusedAllGatherGemm,
  fusedGemmReduceScatter,
  gatheredOperand,
  gemmAt,
  gemmNodes,
  unmatchedGemm,
} from './asyncTpGemm.ts';
import { ALL_GATHER, ALL_REDUCE, CUTLASS_SCALED_MM, MM, REDUCE_SCATTER, SCALED_MM } from './patternOps.ts';

export const PASS = 'async-tp';

const describe = (n: Node) => `${n.name} (${n.op})`;
const kw = (n: Node, name: string, index: number): Arg | undefined => n.kwargs[name] ?? n.args[index];
const GROUP_WHY =
  "vLLM's async-TP patterns name the TP group's reduce_scatter / all_gather, and symmetric memory is enabled for the TP group only";

/** Why a reduce_scatter / all_gather is not a token-dim collective over the TP group and world size, or null. */
export function collectiveRefusal(
  coll: Node,
  opts: ResolvedOptions,
  full: TensorType | undefined,
): Diagnostic | null {
  const d = (reason: string, fix?: string, blocker = coll.name) =>
    diagnostic(PASS, coll.name, reason, blocker, fix);
  const notTp = tpGroupGate(coll, kw(coll, 'group_name', 3), opts, GROUP_WHY);
  if (notTp) return d(notTp.reason, notTp.fix, notTp.blocker);
  const dim = kw(coll, 'dim', 1);
  if (dim !== TOKEN_DIM) {
    return d(
      `${describe(coll)} works along dim ${JSON.stringify(dim ?? null)}, not the token dim ${TOKEN_DIM}: vLLM's async-TP patterns fuse token-dim collectives only`,
    );
  }
  const ws = kw(coll, 'world_size', 2);
  if (typeof ws === 'number' && ws !== opts.worldSize) {
    return d(
      `${describe(coll)} is over ${ws} ranks but the pass runs at world size ${opts.worldSize} (${opts.worldSizeFrom})`,
      `--world-size ${ws}`,
    );
  }
  const split = splitRefusal(
    full,
    typeof ws === 'number' ? ws : opts.worldSize,
    coll.op === REDUCE_SCATTER ? `${coll.name}'s input` : `${coll.name}'s output`,
  );
  if (split) return d(split);
  return null;
}

/**
 * A site's gates: the collective's own on `inner` (the whole token-dim tensor: the product it
 * scatters, or the input it gathers), the GEMM form's own, then no reader of `inner` but `outer`,
 * the pattern's other node (the fused op does not hand `inner` out); `why` says what they lose.
 */
function siteRefusal(
  ix: GraphIndex,
  opts: ResolvedOptions,
  coll: Node,
  gemm: Gemm,
  inner: Node,
  outer: Node,
  why: (others: string[]) => string,
): Diagnostic | null {
  const refusal = collectiveRefusal(coll, opts, tensorOf(ix, ref(inner.name)));
  if (refusal) return refusal;
  if (gemm.refusal) return diagnostic(PASS, coll.name, gemm.refusal, gemm.call.name);
  const others = usersOfValue(ix, inner.name).filter((u) => u !== outer.name);
  if (others.length > 0) return diagnostic(PASS, coll.name, why(others), others[0]);
  // cutlass_scaled_mm: its output buffer and the call go with the product; nothing else may read them.
  const extra = gemmNodes(gemm)
    .filter((n) => n !== gemm.product.name)
    .flatMap((n) => usersOfValue(ix, n).filter((u) => !gemmNodes(gemm).includes(u)));
  if (extra.length > 0)
    return diagnostic(
      PASS,
      coll.name,
      `${gemm.call.name}'s output is also read by ${extra.join(', ')}: the fused op replaces the call`,
      extra[0],
    );
  return null;
}

const productAlsoRead = (product: Node, others: string[]) =>
  `${product.name} is also read by ${others.join(', ')}: the fused op never materialises the whole matmul output`;

function group(coll: Node): Arg {
  return (kw(coll, 'group_name', 3) ?? 'tp:0') as Arg;
}

const GEMM_OPS = [MM, SCALED_MM, 'getitem'];

const gemmReduceScatter: Rule = {
  name: 'GEMM → reduce_scatter',
  pattern: P.node(REDUCE_SCATTER, {
    as: 'rs',
    args: [
      P.node(GEMM_OPS, {
        as: 'product',
        where: (n, _b, ix) => gemmAt(ix, n) !== null,
      }),
    ],
  }),
  site: (b) => b.nodes['rs']!.name,
  check(b, { ix, opts }) {
    const rs = b.nodes['rs']!,
      gemm = gemmAt(ix, b.nodes['product']!)!;
    return siteRefusal(ix, opts, rs, gemm, gemm.product, rs, (others) =>
      productAlsoRead(gemm.product, others),
    );
  },
  rewrite(b, edit, { ix }) {
    const rs = b.nodes['rs']!,
      gemm = gemmAt(ix, b.nodes['product']!)!;
    const consumed = [...gemmNodes(gemm), rs.name];
    const fused = fusedGemmReduceScatter(edit, gemm, group(rs), consumed, rs.type);
    edit.insertBefore(rs.name, fused);
    edit.remove(...consumed);
    edit.replaceUses(rs.name, ref(fused.name));
    return { consumed, produced: [fused.name] };
  },
};

const allGatherGemm: Rule = {
  name: 'all_gather → GEMM',
  pattern: P.node(GEMM_OPS, {
    as: 'product',
    where: (n, b, ix) => {
      const gemm = gemmAt(ix, n);
      const ag = gemm && gatheredOperand(ix, gemm);
      if (!ag || ag.op !== ALL_GATHER) return false;
      b.nodes['ag'] = ag;
      b.nodes['call'] = gemm.call;
      return true;
    },
  }),
  site: (b) => b.nodes['ag']!.name,
  check(b, { ix, opts }) {
    const ag = b.nodes['ag']!,
      gemm = gemmAt(ix, b.nodes['product']!)!;
    return siteRefusal(ix, opts, ag, gemm, ag, gemm.call, (others) => {
      const shown = others
        .map((u) => ix.byName.get(u))
        .map((n) => (n ? describe(n) : 'output'))
        .join(', ');
      return `${ag.name} also feeds ${shown}: vLLM's pattern returns only the matmul output of the fused op (it computes the gathered input too, but the pattern does not hand it out)`;
    });
  },
  rewrite(b, edit, { ix }) {
    const ag = b.nodes['ag']!,
      gemm = gemmAt(ix, b.nodes['product']!)!;
    const consumed = [ag.name, ...gemmNodes(gemm)];
    const made = fusedAllGatherGemm(edit, gemm, ag.args[0] as Arg, group(ag), consumed);
    edit.insertBefore(gemm.call.name, ...made);
    edit.remove(...consumed);
    edit.replaceUses(gemm.product.name, ref(made[made.length - 1]!.name));
    return { consumed, produced: made.map((n) => n.name) };
  },
};

export const RULES: Rule[] = [gemmReduceScatter, allGatherGemm];

const GEMMS_MATCHED =
  "vLLM's GEMM + reduce-scatter patterns match aten.mm, _scaled_mm and cutlass_scaled_mm only";

/** Why a reduce_scatter or all_gather left in `g` was not fused with a matmul. */
function explainCollective(n: Node, ix: GraphIndex, opts: ResolvedOptions): Diagnostic {
  const d = (reason: string, blocker?: string, fix?: string) =>
    diagnostic(PASS, n.name, reason, blocker, fix);
  if (n.op === ALL_REDUCE) {
    const notTp = tpGroupGate(n, reduceGroup(n), opts, GROUP_WHY);
    if (notTp) return d(notTp.reason, notTp.blocker, notTp.fix);
    return d(
      `${n.name} is an all-reduce: run sequence-parallelism first, which turns all_reduce → norm into reduce_scatter → norm → all_gather`,
      'sequence-parallelism',
      'run sequence-parallelism',
    );
  }
  const full = n.op === REDUCE_SCATTER ? tensorOf(ix, n.args[0] as Arg) : tensorOf(ix, ref(n.name));
  const refusal = collectiveRefusal(n, opts, full);
  if (refusal) return refusal;
  if (n.op === REDUCE_SCATTER) {
    const src = isRef(n.args[0] as Arg) ? ix.byName.get((n.args[0] as { name: string }).name) : undefined;
    if (!src) return d(`${n.name} reduces a graph input, not a matmul`);
    const gemm = gemmAt(ix, src);
    if (gemm?.refusal) return d(gemm.refusal, gemm.call.name);
    if (gemm) {
      const others = usersOfValue(ix, src.name).filter((u) => u !== n.name);
      return d(productAlsoRead(src, others), others[0]);
    }
    const unmatched = unmatchedGemm(src);
    if (unmatched) return d(unmatched, src.name);
    return d(`${n.name} reduces ${describe(src)}, not a matmul: ${GEMMS_MATCHED}`, src.name);
  }
  const users = usersOfValue(ix, n.name).map((u) => ix.byName.get(u));
  const gemmCall = (u: Node | undefined) =>
    u && (u.op === MM || u.op === SCALED_MM || calledOp(u) === CUTLASS_SCALED_MM);
  const mm = users.find(gemmCall);
  if (mm && users.length > 1) {
    const shown = users
      .filter((u) => u !== mm)
      .map((u) => (u ? describe(u) : 'output'))
      .join(', ');
    return d(
      `${n.name} feeds ${describe(mm)} and also ${shown}: vLLM's pattern returns only the matmul output of the fused op`,
      users.find((u) => u !== mm)?.name,
    );
  }
  const biased = users.map((u) => (u ? unmatchedGemm(u) : null)).find((r) => r !== null);
  if (biased) return d(biased, users.find((u) => u && unmatchedGemm(u))?.name);
  const first = users[0];
  return d(
    `${n.name} feeds ${first ? describe(first) : 'the graph output'}, not a matmul: no all-gather + GEMM pattern applies`,
    first?.name,
  );
}

export const asyncTp: Pass = (g, options, only) => {
  const opts = resolveOptions(g, options);
  return runRules(PASS, RULES, g, opts, only, (out) => {
    const ix = indexGraph(out);
    return out.nodes
      .filter((n) => n.op === REDUCE_SCATTER || n.op === ALL_GATHER || n.op === ALL_REDUCE)
      .map((n) => explainCollective(n, ix, opts));
  });
};
