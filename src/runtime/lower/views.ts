// Views: slice, t, permute, unsqueeze, view/reshape, split, as_strided and the identities cost
// nothing — a new window on the same storage (view/reshape copy first where the input is not
// contiguous); clone/contiguous copy. A view hands its own role to the tensor it views, so t(W)
// and Inductor's permute(W, [1, 0]) still make W a weight.

import type { Arg } from '../../graph/ir.ts';
import { isRef, numberOf } from '../../graph/ir.ts';
import { contiguousStrides, numelOf } from './layout.ts';
import {
  tensorValue as T,
  type LoweredOp,
  type Lowering,
  type OpCall,
  type RoleDecl,
  type Value,
} from './lowering.ts';

/** The role of a view's result passes to the tensor it views (argument `arg`). */
export const viewRoles =
  (arg = 'self'): RoleDecl =>
  (c) =>
    c.result ? { [arg]: c.result } : {};

/** The op returns its argument as it is (detach, alias, wait_tensor, whose argument is `arg`). */
export const identity = (arg = 'self'): Lowering => ({
  roles: viewRoles(arg),
  lower: (b, c) => T(c.tensor(0, 'self')),
});

/** Start and end of a slice along a dim of `size` (arguments i, i + 1), clamped as Python's. */
export function sliceBounds(c: OpCall, i: number, size: number): [number, number] {
  const clampIdx = (k: number) => Math.min(Math.max(k < 0 ? k + size : k, 0), size);
  const start = clampIdx(c.arg(i) === null ? 0 : c.symInt(c.arg(i), 0));
  const end = clampIdx(c.arg(i + 1) === null ? size : c.symInt(c.arg(i + 1), size));
  return [start, end];
}

const reshape: Lowering = {
  roles: viewRoles(),
  lower: (b, c) => {
    let x = c.tensor(0, 'self');
    const sizes = c.arg(1);
    if (!Array.isArray(sizes)) c.fail('size must be a list');
    const total = numelOf(x.shape);
    const shape = (sizes as Arg[]).map((s) => c.symInt(s, -1));
    const infer = shape.indexOf(-1);
    if (infer >= 0) shape[infer] = total / numelOf(shape.filter((_, i) => i !== infer));
    if (numelOf(shape) !== total) c.fail(`cannot view [${x.shape}] as [${shape}]`);
    x = b.contiguous(x, c.node);
    return T({ ...x, shape, strides: contiguousStrides(shape) });
  },
};

const split: Lowering = {
  lower: (b, c) => {
    const x = c.tensor(0, 'self');
    let dim = c.num(2, 0);
    if (dim < 0) dim += x.shape.length;
    const sz = c.arg(1);
    const sizes = Array.isArray(sz)
      ? sz.map((s) => c.symInt(s, 0))
      : splitEvenly(x.shape[dim], c.symInt(sz, 1));
    if (sizes.reduce((a, s) => a + s, 0) !== x.shape[dim])
      c.fail(`split sizes [${sizes}] do not add up to dim ${dim} of [${x.shape}]`);
    let off = 0;
    const items: Value[] = sizes.map((s) => {
      const shape = [...x.shape];
      shape[dim] = s;
      const v = T({ ...x, offset: x.offset + off * x.strides[dim], shape });
      off += s;
      return v;
    });
    return { t: 'tuple', items };
  },
};
function splitEvenly(size: number, each: number): number[] {
  const out: number[] = [];
  for (let r = size; r > 0; r -= each) out.push(Math.min(each, r));
  return out;
}

const copy: Lowering = {
  lower: (b, c) => {
    const x = c.tensor(0, 'self');
    const out = b.newStorage(c.node.name, x.dtype, x.shape);
    b.push(c.node, { kernel: 'copy', x, out: out.storage });
    return T(out);
  },
};

export const VIEW_LOWERINGS = {
  'aten.slice.Tensor': {
    roles: viewRoles(),
    lower: (b, c) => {
      const x = c.tensor(0, 'self');
      let dim = c.num(1, 0);
      if (dim < 0) dim += x.shape.length;
      const [start, end] = sliceBounds(c, 2, x.shape[dim]);
      const step = c.num(4, 1);
      const shape = [...x.shape];
      const strides = [...x.strides];
      shape[dim] = Math.max(0, Math.ceil((end - start) / step));
      strides[dim] *= step;
      return T({ ...x, offset: x.offset + start * x.strides[dim], shape, strides });
    },
  },
  'aten.t.default': {
    roles: viewRoles(),
    lower: (b, c) => {
      const x = c.tensor(0, 'self');
      if (x.shape.length < 2) return T(x);
      return T({ ...x, shape: [x.shape[1], x.shape[0]], strides: [x.strides[1], x.strides[0]] });
    },
  },
  'aten.permute.default': {
    roles: viewRoles(),
    lower: (b, c) => {
      const x = c.tensor(0, 'self');
      const dims = c.arg(1);
      const rank = x.shape.length;
      const ds = Array.isArray(dims)
        ? dims.map((d) => {
            const v = numberOf(d) ?? NaN;
            return v < 0 ? v + rank : v;
          })
        : [];
      if (ds.length !== rank || new Set(ds).size !== rank || ds.some((d) => !(d >= 0 && d < rank)))
        c.fail(`dims ${JSON.stringify(dims)} are not a permutation of the ${rank} dims`);
      return T({ ...x, shape: ds.map((d) => x.shape[d]), strides: ds.map((d) => x.strides[d]) });
    },
  },
  'aten.unsqueeze.default': {
    lower: (b, c) => {
      const x = c.tensor(0, 'self');
      let dim = c.num(1, 0);
      if (dim < 0) dim += x.shape.length + 1;
      const shape = [...x.shape];
      const strides = [...x.strides];
      shape.splice(dim, 0, 1);
      strides.splice(dim, 0, dim < x.shape.length ? x.strides[dim] * x.shape[dim] : 1);
      return T({ ...x, shape, strides });
    },
  },
  'aten.view.default': reshape,
  'aten.reshape.default': reshape,
  'aten._unsafe_view.default': reshape,
  'aten.split_with_sizes.default': split,
  'aten.split.Tensor': split,
  'aten.as_strided.default': {
    // A view of self's storage: the offset counts from the storage's start, as PyTorch's.
    lower: (b, c) => {
      const x = c.tensor(0, 'self');
      const list = (a: Arg): Arg[] =>
        Array.isArray(a) ? a : a && typeof a === 'object' && !isRef(a) && a.kind === 'tuple' ? a.items : [];
      const shape = list(c.arg(1)).map((d) => c.symInt(d, NaN));
      const strides = list(c.arg(2)).map((d) => c.symInt(d, NaN));
      const offset = c.arg(3) === null ? x.offset : c.symInt(c.arg(3), NaN);
      if (
        shape.length !== strides.length ||
        [...shape, ...strides, offset].some((v) => !Number.isInteger(v) || v < 0)
      )
        c.fail('size, stride and storage_offset must be non-negative integers of one rank');
      const st = b.storages.get(x.storage)!;
      const last = offset + shape.reduce((acc, d, i) => acc + (d - 1) * strides[i], 0);
      if (shape.every((d) => d > 0) && last >= st.numel)
        c.fail(`reaches element ${last} of a storage of ${st.numel}`);
      return T({ ...x, offset, shape, strides });
    },
  },
  'aten.detach.default': identity(),
  'aten.alias.default': identity(),
  'aten.clone.default': copy,
  'aten.contiguous.default': copy,
} satisfies Partial<Record<LoweredOp, Lowering>>;
