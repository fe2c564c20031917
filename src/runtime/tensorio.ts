// Tensors on disk: `.npy` read and write, `.safetensors` read. bf16 has no NumPy dtype, so bf16
// tensors are written as float32 (exact) and read from `.npy` f32/f16/f64 by rounding; a
// safetensors BF16 tensor is read bit for bit.

import type { HostTensor } from './hostTensor.ts';
import { hostValues } from './hostTensor.ts';

export class TensorFileError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'TensorFileError';
  }
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

/** Each host dtype in a file: bytes per element and the typed array over `n` of them. */
const LAYOUT: Record<
  HostTensor['dtype'],
  { bytes: number; view: (b: ArrayBuffer, n: number) => HostTensor['data'] }
> = {
  bf16: { bytes: 2, view: (b, n) => new Uint16Array(b, 0, n) },
  f16: { bytes: 2, view: (b, n) => new Uint16Array(b, 0, n) },
  f32: { bytes: 4, view: (b, n) => new Float32Array(b, 0, n) },
  i64: { bytes: 8, view: (b, n) => new BigInt64Array(b, 0, n) },
  i32: { bytes: 4, view: (b, n) => new Int32Array(b, 0, n) },
  b8: { bytes: 1, view: (b, n) => new Uint8Array(b, 0, n) },
};

/** The .npy dtypes read as they are (`<f8` is read too, narrowed to f32). */
const NPY_DTYPES: Record<string, HostTensor['dtype']> = {
  '<f4': 'f32',
  '<f2': 'f16',
  '<i8': 'i64',
  '<i4': 'i32',
  '|b1': 'b8',
  '|u1': 'b8',
};

/** The .npy dtype each host dtype is written as; bf16, which NumPy lacks, as float32 (exact). */
const NPY_DESCR: Record<HostTensor['dtype'], string> = {
  bf16: '<f4',
  f32: '<f4',
  f16: '<f2',
  i64: '<i8',
  i32: '<i4',
  b8: '|b1',
};

export function readNpy(bytes: Uint8Array, file = '<npy>'): HostTensor {
  if (bytes.length < 10 || !NPY_MAGIC.every((b, i) => bytes[i] === b))
    throw new TensorFileError(file, 'not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined)
    throw new TensorFileError(file, `unreadable .npy header: ${header.trim()}`);
  if (fortran === 'True')
    throw new TensorFileError(file, 'fortran_order arrays are not supported; save with np.ascontiguousarray');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = start + headerLen;
  // A copy: Node's Buffer.slice is a view into a shared pool, so its .buffer is not this data.
  const body = new Uint8Array(bytes.subarray(off));
  const need = (size: number) => {
    if (body.byteLength < n * size)
      throw new TensorFileError(
        file,
        `holds ${body.byteLength} data bytes, shape [${shape}] of ${descr} needs ${n * size}`,
      );
  };
  if (descr === '<f8') {
    need(8);
    return { dtype: 'f32', shape, data: Float32Array.from(new Float64Array(body.buffer, 0, n)) };
  }
  const dtype = Object.hasOwn(NPY_DTYPES, descr) ? NPY_DTYPES[descr] : undefined;
  if (!dtype) throw new TensorFileError(file, `dtype '${descr}' is not supported (f4, f2, f8, i8, i4, b1)`);
  need(LAYOUT[dtype].bytes);
  return { dtype, shape, data: LAYOUT[dtype].view(body.buffer, n) };
}

export function writeNpy(t: HostTensor): Uint8Array {
  const descr = NPY_DESCR[t.dtype];
  const data = t.dtype === 'bf16' ? Float32Array.from(hostValues(t)) : t.data;
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(NPY_MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

const ST_DTYPES: Record<string, HostTensor['dtype']> = {
  BF16: 'bf16',
  F16: 'f16',
  F32: 'f32',
  I64: 'i64',
  I32: 'i32',
  BOOL: 'b8',
  U8: 'b8',
};

export function readSafetensors(bytes: Uint8Array, file = '<safetensors>'): Map<string, HostTensor> {
  if (bytes.length < 8) throw new TensorFileError(file, 'too short for a safetensors header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > bytes.length - 8 || n > 100 * 1024 * 1024)
    throw new TensorFileError(file, `header length ${n} exceeds the file (${bytes.length} bytes)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new TensorFileError(file, `header is not JSON: ${(e as Error).message}`);
  }
  const base = 8 + n;
  const out = new Map<string, HostTensor>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dtype = Object.hasOwn(ST_DTYPES, e.dtype) ? ST_DTYPES[e.dtype] : undefined;
    if (!dtype)
      throw new TensorFileError(
        file,
        `tensor '${name}': dtype ${e.dtype} is not supported (${Object.keys(ST_DTYPES).join(', ')})`,
      );
    const [a, b] = e.data_offsets;
    const count = e.shape.reduce((x, y) => x * y, 1);
    if (b - a !== count * LAYOUT[dtype].bytes || base + b > bytes.length)
      throw new TensorFileError(
        file,
        `tensor '${name}': offsets [${a}, ${b}) do not hold shape [${e.shape}] of ${e.dtype}`,
      );
    const data = LAYOUT[dtype].view(new Uint8Array(bytes.subarray(base + a, base + b)).buffer, count);
    out.set(name, { dtype, shape: e.shape, data });
  }
  return out;
}

/** A file name for an output name (`auto_functionalized_2[1]` → `auto_functionalized_2.1`). */
export function tensorFileName(name: string): string {
  return name.replace(/\[(\d+)\]/g, '.$1').replace(/[^A-Za-z0-9_.-]/g, '_');
}
