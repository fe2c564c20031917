// Host tensors in a storage's bit layout and back: bf16 and f16 as 16-bit words, f32, i32.

import type { StorageDType } from '../plan.ts';
import { RunError } from '../runError.ts';
import { toHostTensor, hostValues, type HostTensor } from '../hostTensor.ts';
import { bf16Bits, bf16ToF32, f16ToF32 } from '../bf16.ts';

/** Bytes per element of each storage dtype (the op table's). */
export { DTYPE_BYTES as BYTES } from '../../graph/opTable.ts';

/** A host tensor in the storage's bit layout. */
export function packHost(t: HostTensor, dtype: StorageDType): Uint8Array {
  const v = hostValues(t);
  if (dtype === 'bf16' || dtype === 'f16') {
    const words = new Uint16Array(v.length + (v.length & 1));
    if (dtype === 'bf16') for (let i = 0; i < v.length; i++) words[i] = bf16Bits(v[i]);
    else for (let i = 0; i < v.length; i++) words[i] = toHostTensor('f16', [1], [v[i]]).data[0] as number;
    return new Uint8Array(words.buffer);
  }
  if (dtype === 'f32') return new Uint8Array(Float32Array.from(v).buffer);
  for (let i = 0; i < v.length; i++)
    if (!Number.isInteger(v[i])) throw new RunError('input', `an integer input holds ${v[i]} at ${i}`);
  return new Uint8Array(Int32Array.from(v).buffer);
}

/** A storage's bytes as numbers. */
export function unpackStorage(bytes: Uint8Array, dtype: StorageDType, n: number): Float32Array | Int32Array {
  if (dtype === 'i32') return new Int32Array(bytes.buffer, bytes.byteOffset, n).slice();
  if (dtype === 'f32') return new Float32Array(bytes.buffer, bytes.byteOffset, n).slice();
  const h = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = dtype === 'bf16' ? bf16ToF32(h[i]) : f16ToF32(h[i]);
  return out;
}
