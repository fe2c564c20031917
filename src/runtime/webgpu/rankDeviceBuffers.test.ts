// What RankDevice promises about the contents of the buffers it makes: a fresh buffer reads as
// zeros in its first pass (it clears it itself, before the pass), written data is never cleared,
// and a workspace is the same buffer, contents kept, until the run ends.

import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { nodeGpu } from '../nodeGpu.ts';
import { openRanks, type RankDevice } from './rankDevice.ts';

// dst[i] = src[i] + 1 over 64 words: what the kernel saw in src, one pass.
const PLUS_ONE = `@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { dst[g.x] = src[g.x] + 1u; }`;
const WORDS = 64;

let dev: RankDevice;
beforeAll(async () => {
  [dev] = await openRanks(await nodeGpu(), 1, { f16: false });
});
afterAll(() => dev?.destroy());

async function plusOne(src: GPUBuffer, dst: GPUBuffer): Promise<Uint32Array> {
  dev.submit('t', 't', (_e, pass) => pass(PLUS_ONE, [src, dst], null, [1, 1]));
  await dev.sync();
  const b = await dev.read(dst, 0, WORDS * 4);
  return new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + WORDS * 4));
}

describe('RankDevice buffers', { timeout: 60_000 }, () => {
  it('a fresh buffer reads as zeros; one written before its first pass keeps what was written', async () => {
    const fresh = dev.alloc('fresh', WORDS * 4),
      dst = dev.alloc('dst', WORDS * 4);
    expect([...(await plusOne(fresh, dst))]).toEqual(new Array(WORDS).fill(1));
    const written = dev.alloc('written', WORDS * 4);
    dev.write(written, 0, new Uint8Array(new Uint32Array(WORDS).fill(41).buffer));
    expect([...(await plusOne(written, dst))]).toEqual(new Array(WORDS).fill(42));
    // Half written: the other half is WebGPU's zeros, the written half survives.
    const half = dev.alloc('half', WORDS * 4);
    dev.write(half, 0, new Uint8Array(new Uint32Array(WORDS / 2).fill(7).buffer));
    const got = await plusOne(half, dst);
    expect([...got.slice(0, WORDS / 2)]).toEqual(new Array(WORDS / 2).fill(8));
    expect([...got.slice(WORDS / 2)]).toEqual(new Array(WORDS / 2).fill(1));
    dev.endRun();
  });

  it('a workspace is the same buffer, contents kept, call after call; a new run starts a new one', async () => {
    const src = dev.alloc('src', WORDS * 4);
    dev.write(src, 0, new Uint8Array(new Uint32Array(WORDS).fill(9).buffer));
    const ws = dev.workspace(WORDS * 4, 'ws');
    expect(dev.workspace(WORDS * 4, 'ws')).toBe(ws);
    expect(dev.workspace(WORDS * 8, 'ws')).not.toBe(ws);
    expect(dev.workspace(WORDS * 4, 'other')).not.toBe(ws);
    const out = dev.alloc('out', WORDS * 4);
    expect([...(await plusOne(src, ws))]).toEqual(new Array(WORDS).fill(10));
    // Bound again (as the source now): not cleared, it holds what the last pass wrote.
    expect([...(await plusOne(dev.workspace(WORDS * 4, 'ws'), out))]).toEqual(new Array(WORDS).fill(11));
    dev.endRun();
    const next = dev.workspace(WORDS * 4, 'ws');
    expect(next).not.toBe(ws);
    const out2 = dev.alloc('out', WORDS * 4);
    expect([...(await plusOne(next, out2))]).toEqual(new Array(WORDS).fill(1));
    dev.endRun();
  });
});
