import { describe, it, expect } from 'vitest';
import { readNpy, writeNpy, readSafetensors, TensorFileError, tensorFileName } from './tensorio.ts';
import { toHostTensor, hostValues } from './hostTensor.ts';
import { roundBf16 } from './bf16.ts';

describe('tensor files', () => {
  it('.npy round-trips f32, i64 and bf16 (as exact f32)', () => {
    const vals = Array.from({ length: 35 }, () => Math.fround(Math.random() * 4 - 2));
    const f32 = toHostTensor('f32', [5, 7], vals);
    const back = readNpy(writeNpy(f32));
    expect(back.shape).toEqual([5, 7]);
    expect([...(back.data as Float32Array)]).toEqual([...(f32.data as Float32Array)]);
    const bf = toHostTensor('bf16', [35], vals.map(roundBf16));
    const bfBack = readNpy(writeNpy(bf));
    expect(bfBack.dtype).toBe('f32');
    expect([...hostValues(bfBack)]).toEqual([...hostValues(bf)]);
    const ids = { dtype: 'i64' as const, shape: [3], data: BigInt64Array.from([0n, 5n, 201087n]) };
    expect([...(readNpy(writeNpy(ids)).data as BigInt64Array)]).toEqual([0n, 5n, 201087n]);
    // The header is padded so the data starts on a 64-byte boundary, as NumPy writes it.
    expect((writeNpy(f32).length - 35 * 4) % 64).toBe(0);
  });

  it('.npy errors name the file and what is wrong', () => {
    expect(() => readNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), 'x.npy')).toThrow(
      /x\.npy: not a \.npy file/,
    );
    const bytes = writeNpy(toHostTensor('f32', [4], [1, 2, 3, 4]));
    expect(() => readNpy(bytes.subarray(0, bytes.length - 4), 'short.npy')).toThrow(
      /short\.npy: holds 12 data bytes, shape \[4\] of <f4 needs 16/,
    );
  });

  it('.safetensors reads BF16 bit for bit and checks offsets', () => {
    const header = JSON.stringify({
      w: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
      __metadata__: { format: 'pt' },
    });
    const hb = new TextEncoder().encode(header);
    const file = new Uint8Array(8 + hb.length + 12);
    new DataView(file.buffer).setBigUint64(0, BigInt(hb.length), true);
    file.set(hb, 8);
    file.set(new Uint8Array(Uint16Array.from([0x3f80, 0xbf80, 0x4000, 0x0001]).buffer), 8 + hb.length);
    file.set(new Uint8Array(Float32Array.from([2.5]).buffer), 8 + hb.length + 8);
    const m = readSafetensors(file, 'm.safetensors');
    expect([...(m.get('w')!.data as Uint16Array)]).toEqual([0x3f80, 0xbf80, 0x4000, 0x0001]);
    expect(hostValues(m.get('w')!)[1]).toBe(-1);
    expect([...(m.get('b')!.data as Float32Array)]).toEqual([2.5]);
    const bad = file.slice();
    bad.set(new TextEncoder().encode(header.replace('[0,8]', '[0,6]')), 8);
    expect(() => readSafetensors(bad, 'm.safetensors')).toThrow(TensorFileError);
  });

  it('output names become file names', () => {
    expect(tensorFileName('auto_functionalized_2[1]')).toBe('auto_functionalized_2.1');
  });
});
