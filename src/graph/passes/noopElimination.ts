// noop-elimination, after vLLM's NoOpEliminationPass: reshapes whose result has the shape of
// their input (directly, or through a chain of reshapes), and slices over a dimension's full
// range, are the identity and are removed. Decided from the annotated result types.
//
// View clean-up of functionalization's write-backs: when an op mutates a view in place
// (fused_add_rms_norm on `slice(all_reduce)`), functionalization writes the result back with
// `slice_scatter(base, y, d, a, b)` and later readers read `slice(slice_scatter(…), d, a, b)`,
// which is `y` itself. Folding it, and dropping a scatter nobody reads, leaves the all-reduce
// with its slice as the only reader, so slice-hoist can move it (issue 16).

import type { Arg, Node, TensorType, ValueType } from '../ir.ts';
import { isRef, ref } from '../ir.ts';
import type { GraphIndex } from '../match.ts';
import { P, argOf, usersOfValue } from '../match.ts';
import type { Pass } from './pipeline.ts';
import { resolveOptions } from './options.ts';
import type { Rule } from './rules.ts';
import type { GraphEdit } from './graphEdit.ts';
import { runRules } from './rules.ts';
import { SLICE, SLICE_SCATTER } from './patternOps.ts';

const PASS = 'noop-elimination';
const RESHAPES = ['aten.view.default', 'aten.reshape.default', 'aten._unsafe_view.default'];
/** FX prints an open slice end as INT64_MAX. */
const INT64_MAX = 9223372036854775807;

function sameShape(a: ValueType | null | undefined, b: ValueType | null | undefined): boolean {
  if (!a || !b || a.kind !== 'tensor' || b.kind !== 'tensor') return false;
  return (
    a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i])
  );
}

function inputName(n: Node): string | undefined {
  const a = n.args[0];
  return a && isRef(a) ? a.name : undefined;
}

/**
 * Drops `n`, its readers reading `by` instead; `source` (the node `n` read through) goes too
 * when `sourceGoes`, i.e. `n` was its last reader.
 */
function bypass(edit: GraphEdit, n: Node, by: Arg, source?: Node, sourceGoes = false) {
  edit.remove(n.name);
  edit.replaceUses(n.name, by);
  const consumed = [n.name];
  if (source && sourceGoes) {
    edit.remove(source.name);
    consumed.push(source.name);
  }
  return { consumed, produced: [] };
}

const reshapeToSameShape: Rule = {
  name: 'reshape to the same shape',
  pattern: P.node(RESHAPES, {
    as: 'view',
    where: (n, _b, ix) => {
      const src = inputName(n);
      return src !== undefined && sameShape(n.type, ix.types.get(src));
    },
  }),
  site: (b) => b.nodes['view']!.name,
  check: () => null,
  rewrite(b, edit) {
    const v = b.nodes['view']!;
    return bypass(edit, v, ref(inputName(v)!));
  },
};

/** view(view(x)) back to x's shape: both go when the inner one has no other reader. */
const reshapeChainToSameShape: Rule = {
  name: 'reshape chain back to the same shape',
  pattern: P.node(RESHAPES, {
    as: 'outer',
    args: [P.node(RESHAPES, { as: 'inner' })],
    where: (n, b, ix) => {
      const src = inputName(b.nodes['inner']!);
      return (
        src !== undefined &&
        !sameShape(n.type, b.nodes['inner']!.type) &&
        sameShape(n.type, ix.types.get(src))
      );
    },
  }),
  site: (b) => b.nodes['outer']!.name,
  check: () => null,
  rewrite(b, edit, { ix }) {
    const outer = b.nodes['outer']!,
      inner = b.nodes['inner']!;
    return bypass(edit, outer, ref(inputName(inner)!), inner, usersOfValue(ix, inner.name).length === 1);
  },
};

const fullRangeSlice: Rule = {
  name: 'slice over the full range',
  pattern: P.node('aten.slice.Tensor', {
    as: 'slice',
    where: (n, _b, ix) => {
      const src = inputName(n);
      if (src === undefined) return false;
      const t = ix.types.get(src);
      if (!t || t.kind !== 'tensor') return false;
      const start = argOf(n, 2, 'start'),
        end = argOf(n, 3, 'end'),
        step = argOf(n, 4, 'step');
      const dimArg = argOf(n, 1, 'dim');
      if (typeof dimArg !== 'number') return false;
      const size = (t as TensorType).shape[dimArg < 0 ? dimArg + t.shape.length : dimArg];
      const endCovers =
        end === null ||
        end === INT64_MAX ||
        (typeof end === 'number' && typeof size === 'number' && end >= size);
      return (
        (start === null || start === 0) &&
        (step === 1 || step === undefined) &&
        endCovers &&
        sameShape(n.type ?? t, t)
      );
    },
  }),
  site: (b) => b.nodes['slice']!.name,
  check: () => null,
  rewrite(b, edit) {
    const s = b.nodes['slice']!;
    return bypass(edit, s, ref(inputName(s)!));
  },
};

type Bound = number | string | 'open';
/** A slice's dim, start, end and step in one form: defaults filled, negative and open bounds resolved where the size is known. */
function sliceRange(
  n: Node,
  first: number,
  ix: GraphIndex,
): { dim: number; start: Bound; end: Bound; step: Arg } | null {
  const base = inputName(n);
  const t = base === undefined ? undefined : ix.types.get(base);
  const rank = t && t.kind === 'tensor' ? t.shape.length : undefined;
  const dimArg = argOf(n, first, 'dim') ?? 0;
  if (typeof dimArg !== 'number') return null;
  if (dimArg < 0 && rank === undefined) return null;
  const dim = dimArg < 0 ? dimArg + rank! : dimArg;
  const size = t && t.kind === 'tensor' ? t.shape[dim] : undefined;
  const bound = (a: Arg | undefined, open: 'zero' | 'end'): Bound | null => {
    if (a === null || a === undefined) return open === 'zero' ? 0 : 'open';
    if (typeof a === 'number') {
      if (a >= INT64_MAX) return 'open';
      if (a < 0) return typeof size === 'number' ? Math.max(0, a + size) : null;
      return typeof size === 'number' && a >= size ? 'open' : a;
    }
    return typeof a === 'string' ? (a === size ? 'open' : a) : null;
  };
  const start = bound(argOf(n, first + 1, 'start'), 'zero'),
    end = bound(argOf(n, first + 2, 'end'), 'end');
  if (start === null || end === null) return null;
  return { dim, start, end, step: argOf(n, first + 3, 'step') ?? 1 };
}

function sameRange(a: ReturnType<typeof sliceRange>, b: ReturnType<typeof sliceRange>): boolean {
  return !!a && !!b && a.dim === b.dim && a.start === b.start && a.end === b.end && a.step === b.step;
}

/** The slice_scatter a slice reads, when the slice takes back exactly the range it wrote. */
function scatterUnder(n: Node, ix: GraphIndex): Node | null {
  const src = inputName(n);
  const scatter = src === undefined ? undefined : ix.byName.get(src);
  if (!scatter || scatter.op !== SLICE_SCATTER) return null;
  return sameRange(sliceRange(n, 1, ix), sliceRange(scatter, 2, ix)) ? scatter : null;
}

/**
 * Whether this pass removes `n`: a slice_scatter nobody reads, or one every reader of which takes
 * the same range back (functionalization's write-back after a norm mutated a slice in place).
 * Other passes' diagnostics use it to say that noop-elimination unlocks their site.
 */
export function eliminatesScatter(ix: GraphIndex, n: Node): boolean {
  if (n.op !== SLICE_SCATTER) return false;
  return usersOfValue(ix, n.name).every((u) => {
    const r = ix.byName.get(u);
    return r?.op === SLICE && scatterUnder(r, ix) === n;
  });
}

const sliceOfItsScatter: Rule = {
  name: 'slice of a slice_scatter over the same range',
  pattern: P.node(SLICE, { as: 'slice', where: (n, _b, ix) => scatterUnder(n, ix) !== null }),
  site: (b) => b.nodes['slice']!.name,
  check: () => null,
  rewrite(b, edit, { ix }) {
    const slice = b.nodes['slice']!;
    const scatter = scatterUnder(slice, ix)!;
    // The scatter goes with its last reader: every reader is a slice taking the same range back.
    const readers = usersOfValue(ix, scatter.name);
    const lastReader =
      readers.every((u) => {
        const r = ix.byName.get(u);
        return r?.op === SLICE && scatterUnder(r, ix) === scatter;
      }) && readers[readers.length - 1] === slice.name;
    return bypass(edit, slice, argOf(scatter, 1, 'src')!, scatter, lastReader);
  },
};

const deadScatter: Rule = {
  name: 'slice_scatter nobody reads',
  pattern: P.node(SLICE_SCATTER, { as: 'scatter', users: 0 }),
  site: (b) => b.nodes['scatter']!.name,
  check: () => null,
  rewrite(b, edit) {
    edit.remove(b.nodes['scatter']!.name);
    return { consumed: [b.nodes['scatter']!.name], produced: [] };
  },
};

export const RULES: Rule[] = [
  fullRangeSlice,
  reshapeToSameShape,
  reshapeChainToSameShape,
  sliceOfItsScatter,
  deadScatter,
];

export const noopElimination: Pass = (g, opts, only) =>
  runRules(PASS, RULES, g, resolveOptions(g, opts), only);
