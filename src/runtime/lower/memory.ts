// Tensors made, padded, gathered or written: zeros (and uninitialised memory, zeroed for
// determinism), constant_pad_nd, embedding (rows by token id), slice_scatter, copy_ (a write into
// a graph input, which is then an output too).

import type { Arg } from '../../graph/ir.ts';
import { numberOf } from '../../graph/ir.ts';
import { contiguousStrides } from './layout.ts';
import { tensorValue as T, type LoweredOp, type Lowering } from './lowering.ts';
import { sliceBounds } from './views.ts';

/** A tensor of zeros, typed by the node's annotation or (`*_like`) its argument. */
const zeros = (like: boolean): Lowering => ({
  lower: (b, c) => {
    const x = like ? c.tensor(0, 'self') : null;
    const mt = b.annotated(c.node) ?? (x ? { dtype: x.dtype, shape: x.shape } : null);
    return mt ? T(b.seed(c.node.name, mt.dtype, mt.shape, { role: 'zeros' }, c.node)) : 'unsupported';
  },
});

export const MEMORY_LOWERINGS = {
  'aten.empty.memory_format': zeros(false),
  'aten.zeros.default': zeros(false),
  'aten.empty_like.default': zeros(true),
  'aten.zeros_like.default': zeros(true),
  'aten.new_zeros.default': zeros(false),
  'aten.constant_pad_nd.default': {
    lower: (b, c) => {
      const x = c.tensor(0, 'self');
      const pad = c.arg(1);
      if (!Array.isArray(pad) || pad.length % 2 || pad.length / 2 > x.shape.length)
        c.fail('pad must be pairs, one per trailing dim');
      const lo = new Array<number>(x.shape.length).fill(0);
      const shape = [...x.shape];
      const annotated = b.annotated(c.node)?.shape ?? null;
      for (let p = 0; p < (pad as Arg[]).length / 2; p++) {
        const d = x.shape.length - 1 - p;
        const a = c.symInt((pad as Arg[])[2 * p], 0);
        // The padded size follows the preset (3072 → 48), so the high pad is what reaches it.
        const hi = annotated ? annotated[d] - x.shape[d] - a : c.symInt((pad as Arg[])[2 * p + 1], 0);
        if (a < 0 || hi < 0) c.fail(`negative padding (${a}, ${hi}) on dim ${d} is not supported`);
        lo[d] = a;
        shape[d] = x.shape[d] + a + hi;
      }
      const out = b.newStorage(c.node.name, x.dtype, shape);
      b.push(c.node, { kernel: 'pad', x, lo, value: numberOf(c.arg(2)) ?? 0, out: out.storage });
      return T(out);
    },
  },
  'aten.embedding.default': {
    roles: { weight: 'embedding', indices: 'indices' },
    lower: (b, c) => {
      const w = b.rowsOrCopy(c.tensor(0, 'weight'), c.node);
      const idx = b.contiguous(c.tensor(1, 'indices', { role: 'indices', range: w.shape[0] }), c.node);
      const out = b.newStorage(c.node.name, w.dtype, [...idx.shape, w.shape[1]]);
      b.push(c.node, { kernel: 'embedding', weight: w, indices: idx, out: out.storage });
      return T(out);
    },
  },
  'aten.slice_scatter.default': {
    lower: (b, c) => {
      const base = c.tensor(0, 'self');
      let dim = c.num(2, 0);
      if (dim < 0) dim += base.shape.length;
      const size = base.shape[dim];
      if (size === undefined) c.fail(`dim ${c.num(2, 0)} is outside the ${base.shape.length}-d self`);
      const [start, end] = sliceBounds(c, 3, size);
      const step = c.num(5, 1);
      const want = [...base.shape];
      want[dim] = Math.max(0, Math.ceil((end - start) / step));
      const src = c.tensor(1, 'src', { role: 'activation', shape: want, dtype: base.dtype });
      if (src.shape.join() !== want.join())
        c.fail(`src [${src.shape}] does not fill self[${start}:${end}:${step}] along dim ${dim} ([${want}])`);
      const out = b.newStorage(c.node.name, base.dtype, base.shape);
      const cs = contiguousStrides(base.shape);
      const strides = cs.map((s, d) => (d === dim ? s * step : s));
      b.scatterThrough(c.node, base, src, start * cs[dim], strides, out.storage);
      return T(out);
    },
  },
  'aten.copy_.default': {
    lower: (b, c) => {
      const dst = c.tensor(0, 'self');
      b.writeInto(
        c.node,
        dst,
        c.tensor(1, 'src', { role: 'activation', shape: dst.shape, dtype: dst.dtype }),
      );
      return T(dst);
    },
  },
} satisfies Partial<Record<LoweredOp, Lowering>>;
