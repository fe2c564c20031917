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
  switch (descr) {
    case '<f4':
      need(4);
      return { dtype: 'f32', shape, data: new Float32Array(body.buffer, 0, n) };
    case '<f2':
      need(2);
      return { dtype: 'f16', shape, data: new Uint16Array(body.buffer, 0, n) };
    case '<f8': {
      need(8);
      const f = new Float64Array(body.buffer, 0, n);
      return { dtype: 'f32', shape, data: Float32Array.from(f) };
    }
    case '<i8':
      need(8);
      return { dtype: 'i64', shape, data: new BigInt64Array(body.buffer, 0, n) };
    case '<i4':
      need(4);
      return { dtype: 'i32', shape, data: new Int32Array(body.buffer, 0, n) };
    case '|b1':
    case '|u1':
      need(1);
      return { dtype: 'b8', shape, data: new Uint8Array(body.buffer, 0, n) };
    default:
      throw new TensorFileError(file, `dtype '${descr}' is not supported (f4, f2, f8, i8, i4, b1)`);
  }
}

export function writeNpy(t: HostTensor): Uint8Array {
  let descr: string;
  let data: ArrayBufferView;
  switch (t.dtype) {
    case 'bf16':
      descr = '<f4';
      data = Float32Array.from(hostValues(t));
      break;
    case 'f32':
      descr = '<f4';
      data = t.data;
      break;
    case 'f16':
      descr = '<f2';
      data = t.data;
      break;
    case 'i64':
      descr = '<i8';
      data = t.data;
      break;
    case 'i32':
      descr = '<i4';
      data = t.data;
      break;
    case 'b8':
      descr = '|b1';
      data = t.data;
      break;
  }
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

const ST_DTYPES: Record<string, { dtype: HostTensor['dtype']; size: number }> = {
  BF16: { dtype: 'bf16', size: 2 },
  F16: { dtype: 'f16', size: 2 },
  F32: { dtype: 'f32', size: 4 },
  I64: { dtype: 'i64', size: 8 },
  I32: { dtype: 'i32', size: 4 },
  BOOL: { dtype: 'b8', size: 1 },
  U8: { dtype: 'b8', size: 1 },
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
    const dt = ST_DTYPES[e.dtype];
    if (!dt)
      throw new TensorFileError(
        file,
        `tensor '${name}': dtype ${e.dtype} is not supported (${Object.keys(ST_DTYPES).join(', ')})`,
      );
    const [a, b] = e.data_offsets;
    const count = e.shape.reduce((x, y) => x * y, 1);
    if (b - a !== count * dt.size || base + b > bytes.length)
      throw new TensorFileError(
        file,
        `tensor '${name}': offsets [${a}, ${b}) do not hold shape [${e.shape}] of ${e.dtype}`,
      );
    const slice = new Uint8Array(bytes.subarray(base + a, base + b)).buffer;
    const data =
      dt.dtype === 'f32'
        ? new Float32Array(slice)
        : dt.dtype === 'i64'
          ? new BigInt64Array(slice)
          : dt.dtype === 'i32'
            ? new Int32Array(slice)
            : dt.dtype === 'b8'
              ? new Uint8Array(slice)
              : new Uint16Array(slice);
    out.set(name, { dtype: dt.dtype, shape: e.shape, data });
  }
  return out;
}

/** A file name for an output name (`auto_functionalized_2[1]` → `auto_functionalized_2.1`). */
export function tensorFileName(name: string): string {
  return name.replace(/\[(\d+)\]/g, '.$1').replace(/[^A-Za-z0-9_.-]/g, '_');
}
