// Host tensors: the arrays a run takes as inputs and hands back as outputs.

import { bf16Bits, bf16ToF32, f16Bits, f16ToF32 } from './bf16.ts';
import type { StorageDType } from './plan.ts';

export interface HostTensor {
  dtype: 'bf16' | 'f32' | 'f16' | 'i64' | 'i32' | 'b8';
  shape: number[];
  data: Uint16Array | Float32Array | Int32Array | BigInt64Array | Uint8Array;
}

/** Values (already rounded to `dtype`) as a host tensor in that dtype's bit layout. */
export function toHostTensor(dtype: StorageDType, shape: number[], values: ArrayLike<number>): HostTensor {
  const n = values.length;
  switch (dtype) {
    case 'bf16': {
      const d = new Uint16Array(n);
      for (let i = 0; i < n; i++) d[i] = bf16Bits(values[i]);
      return { dtype, shape, data: d };
    }
    case 'f16': {
      const d = new Uint16Array(n);
      for (let i = 0; i < n; i++) d[i] = f16Bits(values[i]);
      return { dtype, shape, data: d };
    }
    case 'f32':
      return { dtype, shape, data: Float32Array.from(values) };
    case 'i32':
      return { dtype, shape, data: Int32Array.from(values) };
  }
}

/** A host tensor's values as numbers (bf16/f16 widened). */
export function hostValues(t: HostTensor): Float64Array {
  const n = t.data.length;
  const out = new Float64Array(n);
  switch (t.dtype) {
    case 'bf16':
      for (let i = 0; i < n; i++) out[i] = bf16ToF32((t.data as Uint16Array)[i]);
      break;
    case 'f16':
      for (let i = 0; i < n; i++) out[i] = f16ToF32((t.data as Uint16Array)[i]);
      break;
    case 'i64':
      for (let i = 0; i < n; i++) out[i] = Number((t.data as BigInt64Array)[i]);
      break;
    default:
      for (let i = 0; i < n; i++) out[i] = Number(t.data[i]);
      break;
  }
  return out;
}

export function bitwiseEqual(a: HostTensor, b: HostTensor): boolean {
  if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) return false;
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
