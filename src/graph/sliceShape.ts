// The length of `aten.slice.Tensor(x, dim, start, end, step)` along `dim`, for every form a
// post-grad graph prints: omitted or None bounds, INT64_MAX for an open end, negative bounds
// (counted from the end, as Python's), symbolic sizes and bounds (`s72`, a `Sym` input), and any
// step ≥ 1. Numeric bounds are clamped to the size as Python clamps them; with a symbolic size or
// bound the result assumes the bounds lie inside the dim, which is what torch's guards ensure.

import type { Arg, Dim, ValueType } from './ir.ts';
import { isRef } from './ir.ts';

/** FX prints an open slice end as INT64_MAX; any bound at or past 2^53 means "to the end". */
export const INT64_MAX = 9223372036854775807;
const isOpenEnd = (a: Arg | undefined) =>
  a === null || a === undefined || (typeof a === 'number' && a >= Number.MAX_SAFE_INTEGER);

/** A bound as a number, or as a symbolic expression (a string, or a ref to a Sym value), or undefined. */
function boundOf(
  a: Arg | undefined,
  typeOf: (a: Arg) => ValueType | null | undefined,
): number | string | undefined {
  if (typeof a === 'number') return a;
  if (typeof a === 'string') return a;
  if (a && isRef(a)) {
    const t = typeOf(a);
    return t && t.kind === 'sym' ? t.expr : a.name;
  }
  return undefined;
}

const paren = (e: string) => (/^[A-Za-z0-9_]+$/.test(e) ? e : `(${e})`);
/** `e - c` / `e + c` as sympy prints it (constants last). */
function plus(e: string, c: number): string {
  return c === 0 ? e : c > 0 ? `${e} + ${c}` : `${e} - ${-c}`;
}

/** ⌈len / step⌉ of a symbolic length, as torch prints it: `((s0 + 1)//2)`. */
function ceilDiv(len: string, step: number, offset = 0): string {
  return step === 1 ? plus(len, offset) : `((${plus(len, offset + step - 1)})//${step})`;
}

export function sliceLength(
  size: Dim,
  startArg: Arg | undefined,
  endArg: Arg | undefined,
  stepArg: Arg | undefined,
  typeOf: (a: Arg) => ValueType | null | undefined,
): Dim | undefined {
  const step = stepArg === undefined || stepArg === null ? 1 : stepArg;
  if (typeof step !== 'number' || !Number.isInteger(step) || step < 1) return undefined;
  const start = startArg === null || startArg === undefined ? 0 : boundOf(startArg, typeOf);
  const end = isOpenEnd(endArg) ? size : boundOf(endArg, typeOf);
  if (start === undefined || end === undefined) return undefined;
  if (typeof size === 'number' && typeof start === 'number' && typeof end === 'number') {
    const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + size : i, 0), size);
    const s = clamp(start),
      e = clamp(end);
    return Math.max(0, Math.ceil((e - s) / step));
  }
  // Symbolic: bounds assumed inside [−size, size].
  if (typeof start === 'number' && typeof end === 'number') {
    if (start >= 0 && end >= 0) return Math.max(0, Math.ceil((end - start) / step));
    if (start < 0 && end < 0) return Math.max(0, Math.ceil((end - start) / step));
    if (start >= 0 && end < 0 && typeof size === 'string') return ceilDiv(paren(size), step, end - start);
    if (start < 0 && end >= 0) return undefined;
  }
  if (typeof start === 'number' && typeof end === 'string') {
    // end === size covers the open end; a negative start counts from it.
    if (start < 0) return end === size ? Math.ceil(-start / step) : undefined;
    if (start === 0 && step === 1) return end;
    return ceilDiv(paren(end), step, -start);
  }
  if (typeof start === 'string' && step === 1) {
    if (typeof end === 'string') return end === start ? 0 : `${paren(end)} - ${paren(start)}`;
    if (end >= 0) return `${end} - ${paren(start)}`;
    if (typeof size === 'string') return `${plus(paren(size), end)} - ${paren(start)}`;
    return `${size + end} - ${paren(start)}`;
  }
  return undefined;
}
