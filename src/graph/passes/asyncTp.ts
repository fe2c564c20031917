// async-tp, after vLLM's AsyncTPPass (collective_fusion.py), run after sequence-parallelism:
//
//   reduce_scatter(mm(a, b), dim 0)  → symm_mem.fused_matmul_reduce_scatter(a, b, 'sum', scatter_dim = 0, group_name)
//   mm(all_gather(x, dim 0), w)      → symm_mem.fused_all_gather_matmul(x, [w], gather_dim = 0, group_name)[1][0]
//
// Each fused op runs the matmul in chunks over symmetric memory, so a chunk's transfer overlaps
// the next chunk's matmul. Gates as vLLM's patterns: dim 0 (the token dim) only; the all_gather
// or the mm must have no reader outside the pattern (vLLM's replacement returns the matmul output
// only, although the fused op also returns the gathered input); the token count divides by the
// world size. A bias matmul after an all_gather (addmm: GPT-OSS's qkv projection) takes the
// fused op and a separate bias add: symm_mem's op has no bias argument.

import type { Arg, Node, TensorType } from '../ir.ts';
import { isRef, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { P, indexGraph, usersOfValue, tensorOf } from '../match.ts';
import type { ResolvedOptions } from './options.ts';
import { diagnostic, resolveOptions } from './options.ts';
import type { Diagnostic, Pass } from './pipeline.ts';
import type { Rule } from './rules.ts';
import { runRules } from './rules.ts';
import { TOKEN_DIM, splitRefusal } from './sequenceParallelGate.ts';
import {
  ADDMM,
  ALL_GATHER,
  ALL_REDUCE,
  FUSED_ALL_GATHER_MATMUL,
  FUSED_MATMUL_REDUCE_SCATTER,
  MM,
  REDUCE_SCATTER,
} from './patternOps.ts';

export const PASS = 'async-tp';

const describe = (n: Node) => `${n.name} (${n.op})`;
const kw = (n: Node, name: string, index: number): Arg | undefined => n.kwargs[name] ?? n.args[index];

/** Why a reduce_scatter / all_gather is not a token-dim collective over the world size, or null. */
export function collectiveRefusal(
  coll: Node,
  opts: ResolvedOptions,
  full: TensorType | undefined,
): Diagnostic | null {
  const d = (reason: string, fix?: string) => diagnostic(PASS, coll.name, reason, coll.name, fix);
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
 * A site's gates: the collective's own on `inner` (the whole token-dim tensor: the matmul output
 * it scatters, or the input it gathers), then no reader of `inner` but `outer`, the pattern's
 * other node (the fused op does not hand `inner` out); `why` says what the other readers lose.
 */
function siteRefusal(
  ix: GraphIndex,
  opts: ResolvedOptions,
  coll: Node,
  inner: Node,
  outer: Node,
  why: (others: string[]) => string,
): Diagnostic | null {
  const refusal = collectiveRefusal(coll, opts, tensorOf(ix, ref(inner.name)));
  if (refusal) return refusal;
  const others = usersOfValue(ix, inner.name).filter((u) => u !== outer.name);
  return others.length > 0 ? diagnostic(PASS, coll.name, why(others), others[0]) : null;
}

const mmAlsoRead = (mm: Node, others: string[]) =>
  `${mm.name} is also read by ${others.join(', ')}: the fused op never materialises the whole matmul output`;

function group(coll: Node): Arg {
  return (kw(coll, 'group_name', 3) ?? 'tp:0') as Arg;
}

const gemmReduceScatter: Rule = {
  name: 'mm → reduce_scatter',
  pattern: P.node(REDUCE_SCATTER, {
    as: 'rs',
    args: [P.node(MM, { as: 'mm', args: [P.any('a'), P.any('b')] })],
  }),
  site: (b) => b.nodes['rs']!.name,
  check(b, { ix, opts }) {
    const rs = b.nodes['rs']!,
      mm = b.nodes['mm']!;
    return siteRefusal(ix, opts, rs, mm, rs, (others) => mmAlsoRead(mm, others));
  },
  rewrite(b, edit) {
    const rs = b.nodes['rs']!,
      mm = b.nodes['mm']!;
    const fused = edit.make(
      edit.fresh('fused_matmul_reduce_scatter'),
      FUSED_MATMUL_REDUCE_SCATTER,
      [b.values['a']!, b.values['b']!, 'sum'],
      { scatter_dim: TOKEN_DIM, group_name: group(rs) },
      [mm.name, rs.name],
      rs.type,
    );
    edit.insertBefore(rs.name, fused);
    edit.remove(mm.name, rs.name);
    edit.replaceUses(rs.name, ref(fused.name));
    return { consumed: [mm.name, rs.name], produced: [fused.name] };
  },
};

const allGatherGemm: Rule = {
  name: 'all_gather → mm',
  pattern: P.node([MM, ADDMM], {
    as: 'mm',
    where: (n, b, ix) => {
      const x = n.op === ADDMM ? n.args[1] : n.args[0];
      const ag = x && isRef(x) ? ix.byName.get(x.name) : undefined;
      if (!ag || ag.op !== ALL_GATHER) return false;
      b.nodes['ag'] = ag;
      return true;
    },
  }),
  site: (b) => b.nodes['ag']!.name,
  check(b, { ix, opts }) {
    const ag = b.nodes['ag']!,
      mm = b.nodes['mm']!;
    return siteRefusal(ix, opts, ag, ag, mm, (others) => {
      const shown = others
        .map((u) => ix.byName.get(u))
        .map((n) => (n ? describe(n) : 'output'))
        .join(', ');
      return `${ag.name} also feeds ${shown}: vLLM's pattern returns only the matmul output of the fused op (it computes the gathered input too, but the pattern does not hand it out)`;
    });
  },
  rewrite(b, edit) {
    const ag = b.nodes['ag']!,
      mm = b.nodes['mm']!;
    const w = (mm.op === ADDMM ? mm.args[2] : mm.args[1]) as Arg;
    const from = [ag.name, mm.name];
    const fused = edit.make(
      edit.fresh('fused_all_gather_matmul'),
      FUSED_ALL_GATHER_MATMUL,
      [ag.args[0] as Arg, [w]],
      { gather_dim: TOKEN_DIM, group_name: group(ag) },
      from,
      null,
    );
    const outs = edit.make(edit.fresh('getitem'), 'getitem', [ref(fused.name), 1], {}, from, null);
    const out = edit.make(edit.fresh('getitem'), 'getitem', [ref(outs.name), 0], {}, from, mm.type);
    const made = [fused, outs, out];
    let last = out;
    if (mm.op === ADDMM) {
      last = edit.make(
        edit.fresh('add'),
        'aten.add.Tensor',
        [ref(out.name), mm.args[0] as Arg],
        {},
        from,
        mm.type,
      );
      made.push(last);
    }
    edit.insertBefore(mm.name, ...made);
    edit.remove(ag.name, mm.name);
    edit.replaceUses(mm.name, ref(last.name));
    return { consumed: [ag.name, mm.name], produced: made.map((n) => n.name) };
  },
};

export const RULES: Rule[] = [gemmReduceScatter, allGatherGemm];

/** Why a reduce_scatter or all_gather left in `g` was not fused with a matmul. */
function explainCollective(n: Node, ix: GraphIndex, opts: ResolvedOptions): Diagnostic {
  const d = (reason: string, blocker?: string) => diagnostic(PASS, n.name, reason, blocker);
  if (n.op === ALL_REDUCE)
    return d(
      `${n.name} is an all-reduce: run sequence-parallelism first, which turns all_reduce → norm into reduce_scatter → norm → all_gather`,
      'sequence-parallelism',
    );
  const full = n.op === REDUCE_SCATTER ? tensorOf(ix, n.args[0] as Arg) : tensorOf(ix, ref(n.name));
  const refusal = collectiveRefusal(n, opts, full);
  if (refusal) return refusal;
  if (n.op === REDUCE_SCATTER) {
    const src = isRef(n.args[0] as Arg) ? ix.byName.get((n.args[0] as { name: string }).name) : undefined;
    if (!src) return d(`${n.name} reduces a graph input, not a matmul`);
    if (src.op === MM) {
      const others = usersOfValue(ix, src.name).filter((u) => u !== n.name);
      return d(mmAlsoRead(src, others), others[0]);
    }
    return d(
      `${n.name} reduces ${describe(src)}, not a matmul: vLLM's GEMM + reduce-scatter patterns match aten.mm (and scaled matmuls) only`,
      src.name,
    );
  }
  const users = usersOfValue(ix, n.name).map((u) => ix.byName.get(u));
  const mm = users.find((u) => u && (u.op === MM || u.op === ADDMM));
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
