// Elementwise ops: those of the op table's ELEMENTWISE_OPS lower through their entry (`add`, or
// one map function of a tensor or a Python number); where (Inductor's masked_fill), full (a
// constant `where` reads as its scalar word) and silu_and_mul are map steps too.

import type { Arg, DType } from '../../graph/ir.ts';
import { torchDtype } from '../../graph/ops.ts';
import { isRef, numberOf } from '../../graph/ir.ts';
import type { ElementwiseOpDef, MapFn, StorageDType, View } from '../../graph/opTable.ts';
import { siluAndMulUnfused, siluMulHalves } from '../../graph/opTable.ts';
import type { PlanBuilder } from './builder.ts';
import { asRows, broadcastShape } from './layout.ts';
import {
  noKernel,
  tensorValue as T,
  type Lowered,
  type LoweredOp,
  type Lowering,
  type OpCall,
  type RoleContext,
  type Roles,
} from './lowering.ts';

const FUSED_AG_MM_OP = 'symm_mem.fused_all_gather_matmul.default' satisfies LoweredOp;

/** An op of ELEMENTWISE_OPS: `add` (tensor + alpha · tensor) or one map function. */
export function lowerElementwise(b: PlanBuilder, c: OpCall, ew: ElementwiseOpDef): Lowered {
  const n = c.node;
  const a = c.tensor(0, 'self');
  const emit = (fn: MapFn, y: View | null, scalar: number): Lowered => {
    const shape = y ? broadcastOrFail(c, a, y) : a.shape;
    const out = b.newStorage(n.name, b.resultDtype(n, [a, y], a.dtype), shape);
    b.push(n, { kernel: 'map', fn, a, b: y, scalar, out: out.storage });
    return T(out);
  };
  if (ew.unary) return emit(ew.unary, null, 0);
  if (ew.number && b.isScalarArg(c.arg(1))) {
    // add(x, 2.0, alpha=3) is x + 6.0; sizes compared with token ids follow the preset's sizes.
    const s = ew.number.size
      ? c.symInt(c.arg(1), 0)
      : (numberOf(c.arg(1)) ?? c.fail(`other must be a number, got ${JSON.stringify(c.arg(1))}`));
    if (ew.number.only !== undefined && s !== ew.number.only)
      c.fail(`has a kernel for ${ew.number.only} as its number only, got ${s}`);
    return emit(ew.number.fn, null, c.op === 'aten.add.Tensor' ? s * c.num(2, 1) : s);
  }
  if (!ew.tensor || b.isScalarArg(c.arg(1))) return 'unsupported';
  const y = c.tensor(1, 'other', { role: 'activation', shape: a.shape, dtype: a.dtype });
  if (ew.tensor.fn === 'add') {
    const dtype = a.dtype === 'f32' || y.dtype === 'f32' ? b.resultDtype(n, [a, y], a.dtype) : a.dtype;
    const out = b.newStorage(n.name, dtype, broadcastOrFail(c, a, y));
    b.push(n, { kernel: 'add', a, b: y, alpha: c.num(2, 1), out: out.storage });
    return T(out);
  }
  return emit(ew.tensor.fn, y, ew.tensor.scalarArg === undefined ? 0 : c.num(ew.tensor.scalarArg, 0));
}

function broadcastOrFail(c: OpCall, x: View, y: View): number[] {
  return broadcastShape(x.shape, y.shape) ?? c.fail(`cannot broadcast [${x.shape}] with [${y.shape}]`);
}

/**
 * Roles through ELEMENTWISE_OPS: token ids pass through the vocabulary mask (ids · (ids in
 * range)) to every operand; async-tp splits addmm(bias, all_gather(x), W) into the fused
 * all-gather matmul + add(bias), and that add's other operand is still the layer's (per-rank) bias.
 */
export function elementwiseRoles(op: string, operands: readonly string[], c: RoleContext): Roles {
  if (op === 'aten.add.Tensor') return c.producer('self') === FUSED_AG_MM_OP ? { other: 'bias' } : {};
  return c.result === 'indices' ? Object.fromEntries(operands.map((a) => [a, 'indices'])) : {};
}

/**
 * A cast (convert_element_type, _to_copy) to the dtype at argument `at`: to f32 it widens into an
 * f32 storage; to float8_e4m3fn it is torch's conversion, the value held in the run's dtype (every
 * e4m3fn value is exact in bf16); to another float a copy rounded by the run's storage.
 */
function castLowering(at: number): Lowering {
  return {
    lower: (b, c) => {
      const x = c.tensor(0, 'self');
      const to = torchDtype(c.arg(at)) ?? (c.arg(at) === null ? undefined : null);
      if (to === null || (to !== undefined && !FLOAT_CASTS.has(to))) return 'unsupported';
      const dtype: StorageDType = to === undefined ? x.dtype : b.computedDtype(to, [x], x.dtype);
      const out = b.newStorage(c.node.name, dtype, x.shape);
      const fn: MapFn = to === 'f8e4m3fn' ? 'to_f8e4m3fn' : 'cast';
      b.push(c.node, { kernel: 'map', fn, a: x, b: null, scalar: 0, out: out.storage });
      return T(out);
    },
  };
}
const FLOAT_CASTS: ReadonlySet<DType> = new Set(['f32', 'bf16', 'f16', 'f8e4m3fn']);

/**
 * vLLM's silu_and_mul of `x`: silu(gate) · up over the halves of its last dim into a new storage, one
 * KERNELS.silu_and_mul step; with `scale` (silu_and_mul_quant) the static FP8 quant of each product in
 * the same step. Rows whose columns are not unit-stride run as the unfused steps it rounds as.
 */
export function siluAndMul(b: PlanBuilder, c: OpCall, x: View, scale: View | null = null): View {
  const last = x.shape.length - 1;
  if (!Number.isInteger(x.shape[last] / 2))
    c.fail(`input's last dim ${x.shape[last]} is odd: it must hold the gate and up halves`);
  if (x.dtype === 'i32') c.fail('input is i32: silu_and_mul takes a float tensor');
  const n = c.node;
  const out = b.newStorage(`${n.name}.${scale ? 'quant' : 'result'}`, x.dtype, siluMulHalves(x).gate.shape);
  const step = { kernel: 'silu_and_mul', x, scale, out: out.storage } as const;
  if (asRows(x)) b.push(n, step);
  else {
    const storage = (name: string, dtype: StorageDType, shape: number[]) =>
      b.newStorage(`${n.name}.${name}`, dtype, shape).storage;
    for (const k of siluAndMulUnfused(step, storage)) b.push(n, k);
  }
  return out;
}

export const ELEMENTWISE_LOWERINGS = {
  'aten.full.default': {
    lower: (b, c) => {
      const value = numberOf(c.arg(1));
      const size = c.arg(0);
      if (value === undefined || !Array.isArray(size)) return 'unsupported';
      const n = c.node;
      const mt = b.annotated(n) ?? { dtype: b.dtype, shape: size.map((d) => c.symInt(d, 1)) };
      const zeros = b.seed(
        value === 0 ? n.name : `${n.name}.zeros`,
        mt.dtype,
        mt.shape,
        { role: 'zeros' },
        n,
      );
      b.constants.set(n.name, value);
      if (value === 0) return T(zeros);
      const out = b.newStorage(n.name, mt.dtype, mt.shape);
      b.push(n, { kernel: 'map', fn: 'adds', a: zeros, b: null, scalar: value, out: out.storage });
      return T(out);
    },
  },
  'aten.where.self': {
    // Inductor writes masked_fill as where(mask, full([], v), x): a map with v as its scalar word.
    lower: (b, c) => {
      const n = c.node;
      const constOf = (a: Arg) => numberOf(a) ?? (isRef(a) ? b.constants.get(a.name) : undefined);
      const cond = c.tensor(0, 'condition');
      const onTrue = constOf(c.arg(1)),
        onFalse = constOf(c.arg(2));
      if (onTrue === undefined && onFalse === undefined) return 'unsupported';
      const x = onTrue !== undefined ? c.tensor(2, 'other') : c.tensor(1, 'self');
      const dtype = b.annotated(n)?.dtype ?? x.dtype;
      let mask = cond;
      if (onTrue === undefined) {
        mask = b.newStorage(`${n.name}.not`, cond.dtype, cond.shape);
        b.push(n, { kernel: 'map', fn: 'not', a: cond, b: null, scalar: 0, out: mask.storage });
      }
      const out = b.newStorage(n.name, dtype, broadcastOrFail(c, x, mask));
      b.push(n, {
        kernel: 'map',
        fn: 'masked_fill',
        a: x,
        b: mask,
        scalar: (onTrue ?? onFalse)!,
        out: out.storage,
      });
      return T(out);
    },
  },
  '_C.silu_and_mul.default': {
    lower: (b, c) => ({ t: 'tuple', items: [{ t: 'none' }, T(siluAndMul(b, c, c.tensor(1, 'input')))] }),
  },
  'aten.sub.Tensor': noKernel('no map function subtracts yet'),
  'prims.convert_element_type.default': castLowering(1),
  'aten._to_copy.default': castLowering(1),
  'aten.clamp.default': {
    // Two exact steps: max with min, then min with max (either bound may be None).
    lower: (b, c) => {
      const n = c.node;
      let x = c.tensor(0, 'self');
      const bounds: [MapFn, Arg][] = [
        ['maxs', c.arg(1)],
        ['mins', c.arg(2)],
      ];
      const given = bounds.filter(([, v]) => v !== null);
      if (given.length === 0) c.fail('clamp needs a min or a max');
      const dtype = b.resultDtype(n, [x], x.dtype);
      given.forEach(([fn, v], k) => {
        const s = numberOf(v) ?? c.fail(`bounds must be numbers, got ${JSON.stringify(v)}`);
        const out = b.newStorage(k === given.length - 1 ? n.name : `${n.name}.${fn}`, dtype, x.shape);
        b.push(n, { kernel: 'map', fn, a: x, b: null, scalar: s, out: out.storage });
        x = out;
      });
      return T(x);
    },
  },
} satisfies Partial<Record<LoweredOp, Lowering>>;
