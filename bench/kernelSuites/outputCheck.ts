// Checks of a layout's output against the first layout's, read back from the device: every layout
// of a kernel is timed first and checked afterwards, since host-side checks between timings leave
// the GPU idle (on an H200 later timings then came out several times slower).

import type { RankDevice } from '../../src/runtime/webgpu/rankDevice.ts';
import { bf16UlpDistance, bf16ToF32 } from '../../src/runtime/bf16.ts';

/** bf16 words of the first and last `rows` rows of a [T, cols] buffer (what a broken layout would get wrong first). */
export async function edgeRows(
  dev: RankDevice,
  b: GPUBuffer,
  T: number,
  cols: number,
  rows = 256,
): Promise<Uint16Array> {
  const k = Math.min(rows, T),
    bytes = k * cols * 2;
  const head = await dev.read(b, 0, bytes),
    tail = await dev.read(b, (T - k) * cols * 2, bytes);
  const out = new Uint16Array(2 * k * cols);
  out.set(new Uint16Array(head.buffer, head.byteOffset, k * cols), 0);
  out.set(new Uint16Array(tail.buffer, tail.byteOffset, k * cols), k * cols);
  return out;
}

/** Largest distance in bf16 ulps between two outputs: each layout is checked against the first on the device itself. */
export const maxUlps = (a: Uint16Array, b: Uint16Array) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, bf16UlpDistance(a[i], b[i]));
  return m;
};

export const maxAbs = (a: Uint16Array, b: Uint16Array) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(bf16ToF32(a[i]) - bf16ToF32(b[i])));
  return m;
};
