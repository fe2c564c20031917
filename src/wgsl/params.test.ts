// A kernel's parameter struct: the WGSL declaration and the host's words come from one field list.

import { describe, expect, it } from 'vitest';
import { paramStruct } from './params.ts';
import { PAD_PARAMS, elementwiseWgsl, padDims, type ElementwiseKind } from './elementwise.ts';
import { rotaryWgsl } from './rotary.ts';
import { attentionWgsl } from './attention.ts';
import { allReduceWgsl } from './allReduce.ts';
import { fp8QuantValuesWgsl, fp8QuantWgsl } from './fp8Quant.ts';
import { gemmWgsl } from './gemm.ts';
import { rmsNormWgsl } from './rmsNorm.ts';
import { NORM_ROWS_DEFAULT, rmsNormRowsWgsl } from './rmsNormRows.ts';
import {
  MOE_GEMV_DEFAULT,
  MOE_SCAN_WGSL,
  MOE_SCATTER_WGSL,
  moeCombineWgsl,
  moeDecodeGemmWgsl,
  moeGemmWgsl,
  moeGemvWgsl,
  moeRoute1Wgsl,
  moeRouteWgsl,
} from './moe.ts';
import { MAP_FN_CODES } from '../graph/opTable.ts';

describe('paramStruct', () => {
  const P = paramStruct('P', { n: 'u32', shape: 'array<u32, 3>', scale: 'f32', last: 'u32' });

  it('declares the struct in field order, bound at 0 as prm', () => {
    expect(P.wgsl).toBe(
      'struct P { n: u32, shape: array<u32, 3>, scale: f32, last: u32 }\n@group(0) @binding(0) var<storage, read> prm: P;',
    );
  });

  it('writes consecutive words in field order: arrays inline, f32 as its bits', () => {
    const w = P.words({ n: 7, shape: [2, 3, 4], scale: 0.1, last: -1 });
    expect([...w.slice(0, 4)]).toEqual([7, 2, 3, 4]);
    expect(w[4]).toBe(new Uint32Array(Float32Array.of(0.1).buffer)[0]);
    expect(w[5]).toBe(0xffffffff);
    expect(w.length).toBe(6);
  });

  it('refuses an array of the wrong length', () => {
    expect(() => P.words({ n: 1, shape: [1, 2], scale: 0, last: 0 })).toThrow(
      'P.shape: 2 values for array<u32, 3>',
    );
  });

  it('pads per-dim fields with leading fill, aligned with the innermost dims', () => {
    expect(padDims([5, 7], 1)).toEqual([1, 1, 1, 1, 5, 7]);
    expect(() => padDims([1, 2, 3, 4, 5, 6, 7], 0)).toThrow('more than 6 dims');
    const w = PAD_PARAMS.words({
      n: 35,
      outShape: padDims([5, 7], 1),
      xOffset: 3,
      xStrides: padDims([9, 1], 0),
      lo: padDims([0, 2], 0),
      inShape: padDims([5, 4], 1),
      value: 0.5,
    });
    // n, outShape ×6, xOffset, xStrides ×6, lo ×6, inShape ×6, value.
    expect(w.length).toBe(1 + 6 + 1 + 6 + 6 + 6 + 1);
    expect([...w.slice(14, 20)]).toEqual([0, 0, 0, 0, 0, 2]);
  });

  it('every kernel reads its parameters as a named struct, never prm[<index>]', () => {
    const elementwise: [ElementwiseKind, number][] = [
      ['copy', 1],
      ['add', 2],
      ['pad', 1],
      ['embedding', 2],
      ['seed', 0],
      ['scatter', 2],
      ...MAP_FN_CODES.flatMap((fn): [ElementwiseKind, number][] => [
        [fn, 1],
        [fn, 2],
      ]),
    ];
    const kernels = [
      ...elementwise.map(([kind, n]) => elementwiseWgsl(kind, 'bf16', new Array(n).fill('bf16'))),
      rotaryWgsl('bf16', 'bf16', 'i32', 'bf16'),
      attentionWgsl('f32', 'f32', 'f32', 'f32'),
      allReduceWgsl('bf16'),
      fp8QuantWgsl('bf16', 'clamp'),
      fp8QuantValuesWgsl('bf16', 'bf16', 'bf16', 'satfinite'),
      gemmWgsl('bf16', 'bf16', true),
      rmsNormWgsl('add', 'f32', 33, 1),
      rmsNormRowsWgsl('allreduce', 48, NORM_ROWS_DEFAULT, 32),
      moeRouteWgsl('bf16'),
      MOE_SCAN_WGSL,
      MOE_SCATTER_WGSL,
      ...([1, 2] as const).flatMap((stage) => [
        moeGemmWgsl(stage, 'bf16', true),
        moeDecodeGemmWgsl(stage),
        moeGemvWgsl(stage, MOE_GEMV_DEFAULT, 4, 32, 32),
        moeGemvWgsl(stage, MOE_GEMV_DEFAULT, 4, 0, 32),
      ]),
      moeCombineWgsl('bf16'),
      moeRoute1Wgsl('bf16', 32, 4),
    ];
    for (const code of kernels) {
      expect(code).toMatch(/@group\(0\) @binding\(0\) var<storage, read> prm: \w+Params;/);
      expect(code).not.toMatch(/prm\[/);
    }
  });
});
