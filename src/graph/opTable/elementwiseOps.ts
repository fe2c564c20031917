// ELEMENTWISE_OPS: which FX op lowers to which map function (tensor or Python-number operand),
// with its schema tail, result dtype and doc (ops.ts registers these ops from it).

import type { MapFn } from './mapFns.ts';

export interface ElementwiseOpDef {
  /** Lowering when `other` (argument 1) is a tensor; `scalarArg` holds the scalar word's argument. */
  tensor?: { fn: MapFn | 'add'; scalarArg?: number };
  /**
   * Lowering when `other` is a Python number (the scalar word). `size`: the number is a size
   * (a vocabulary bound compared with token ids) and follows the preset's sizes. `only`: the one
   * number the function computes the op for (pow's exponent 2 is `square`); another is refused.
   */
  number?: { fn: MapFn; size?: boolean; only?: number };
  /** Lowering of a one-operand op. */
  unary?: MapFn;
  /** The result's dtype when it is not self's (comparisons give booleans). */
  resultDtype?: 'b8';
  /** The schema after `self: Tensor`: [name, PyTorch type, default?]. */
  args: readonly (readonly [string, string] | readonly [string, string, number])[];
  doc: string;
}

/**
 * FX ops that lower to one elementwise kernel. `add` with a tensor operand has its own kernel
 * (alpha · other); `add(x, 2.0)` is `adds` with s = alpha · 2.0.
 */
export const ELEMENTWISE_OPS = {
  'aten.mul.Tensor': {
    tensor: { fn: 'mul' },
    number: { fn: 'muls' },
    args: [['other', 'Tensor']],
    doc: 'self · other, elementwise (broadcast).',
  },
  'aten.add.Tensor': {
    tensor: { fn: 'add' },
    number: { fn: 'adds' },
    args: [
      ['other', 'Tensor'],
      ['alpha', 'Scalar', 1],
    ],
    doc: 'Elementwise self + alpha·other.',
  },
  'aten.ge.Scalar': {
    number: { fn: 'ge', size: true },
    resultDtype: 'b8',
    args: [['other', 'Scalar']],
    doc: 'self >= other, elementwise.',
  },
  'aten.lt.Scalar': {
    number: { fn: 'lt', size: true },
    resultDtype: 'b8',
    args: [['other', 'Scalar']],
    doc: 'self < other, elementwise.',
  },
  'aten.bitwise_and.Tensor': {
    tensor: { fn: 'and' },
    args: [['other', 'Tensor']],
    doc: 'self & other, elementwise.',
  },
  'aten.bitwise_not.default': { unary: 'not', args: [], doc: '~self, elementwise.' },
  'aten.sigmoid.default': { unary: 'sigmoid', args: [], doc: 'σ(self) = 1 / (1 + e^−self), elementwise.' },
  'aten.masked_fill.Scalar': {
    tensor: { fn: 'masked_fill', scalarArg: 2 },
    args: [
      ['mask', 'Tensor'],
      ['value', 'Scalar'],
    ],
    doc: 'self with value where mask is true (mask broadcasts).',
  },
  'aten.pow.Tensor_Scalar': {
    number: { fn: 'square', only: 2 },
    args: [['exponent', 'Scalar']],
    doc: 'self ** exponent, elementwise (exponent 2, the variance of an RMSNorm).',
  },
  'aten.div.Tensor': {
    tensor: { fn: 'div' },
    number: { fn: 'divs' },
    args: [['other', 'Tensor']],
    doc: 'self / other, elementwise (broadcast), correctly rounded.',
  },
  'aten.clamp_min.default': {
    number: { fn: 'maxs' },
    args: [['min', 'Scalar']],
    doc: 'max(self, min), elementwise.',
  },
  'aten.clamp_max.default': {
    number: { fn: 'mins' },
    args: [['max', 'Scalar']],
    doc: 'min(self, max), elementwise.',
  },
  'aten.rsqrt.default': { unary: 'rsqrt', args: [], doc: '1 / √self, elementwise.' },
  'aten.reciprocal.default': { unary: 'reciprocal', args: [], doc: '1 / self, elementwise.' },
  'aten.exp.default': { unary: 'exp', args: [], doc: 'e^self, elementwise.' },
  'aten.neg.default': { unary: 'neg', args: [], doc: '−self, elementwise.' },
  'aten.abs.default': { unary: 'abs', args: [], doc: '|self|, elementwise.' },
  'aten.silu.default': { unary: 'silu', args: [], doc: 'self · σ(self), elementwise.' },
  // torch.relu is clamp_min(self, 0): NaN and −0 pass through, which maxs with s = 0 (a unary's
  // scalar word) computes.
  'aten.relu.default': { unary: 'maxs', args: [], doc: 'max(self, 0), elementwise (relu).' },
} as const satisfies Record<string, ElementwiseOpDef>;

export type ElementwiseOp = keyof typeof ELEMENTWISE_OPS;
export function elementwiseOp(op: string): ElementwiseOpDef | undefined {
  return Object.prototype.hasOwnProperty.call(ELEMENTWISE_OPS, op)
    ? ELEMENTWISE_OPS[op as ElementwiseOp]
    : undefined;
}
