// How a View lays out in its storage: contiguous strides, row form, broadcasting. Read by the
// planner and by every backend (through plan.ts).

import type { View } from '../../graph/opTable.ts';

export const contiguousStrides = (shape: number[]): number[] => {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
};
export const numelOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

export function isContiguous(v: View): boolean {
  const c = contiguousStrides(v.shape);
  return v.shape.every((d, i) => d === 1 || v.strides[i] === c[i]);
}

/** A view as `rows × cols` with unit column stride and one row stride, or null. */
export function asRows(v: View): { offset: number; rows: number; cols: number; rowStride: number } | null {
  const n = v.shape.length;
  if (n === 0) return { offset: v.offset, rows: 1, cols: 1, rowStride: 1 };
  const cols = v.shape[n - 1];
  if (cols !== 1 && v.strides[n - 1] !== 1) return null;
  let rows = 1;
  let rowStride = cols;
  let expect: number | null = null;
  for (let i = n - 2; i >= 0; i--) {
    if (v.shape[i] === 1) continue;
    if (expect === null) {
      rowStride = v.strides[i];
      expect = v.strides[i] * v.shape[i];
    } else if (v.strides[i] !== expect) return null;
    else expect = v.strides[i] * v.shape[i];
    rows *= v.shape[i];
  }
  return { offset: v.offset, rows, cols, rowStride };
}

export function broadcastShape(a: number[], b: number[]): number[] | null {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(Math.max(x, y));
  }
  return out;
}

/** Strides that read `v` as if it had shape `shape` (broadcast dims get stride 0). */
export function broadcastStrides(v: View, shape: number[]): number[] {
  const off = shape.length - v.shape.length;
  return shape.map((d, i) => (i < off || v.shape[i - off] === 1 ? 0 : v.strides[i - off]));
}
