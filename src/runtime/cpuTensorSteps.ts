// The CPU reference's steps for the plain tensor kernels: copies and padding, elementwise maps,
// row reductions, the GEMM, embedding lookups and functionalization's scatter.

import { MAP_FNS } from '../graph/opTable.ts';
import type { CpuSteps } from './cpuStepContext.ts';
import { cpuGemm, cpuPad, cpuReduceRows } from './cpuKernels.ts';
import { cpuScatter } from './cpuLayerKernels.ts';
import { RunError } from './runError.ts';

export const TENSOR_STEPS: CpuSteps<
  'copy' | 'pad' | 'add' | 'map' | 'reduce_rows' | 'gemm' | 'embedding' | 'scatter'
> = {
  copy: (s, c) => c.store(s.out, c.read(s.x)),
  pad: (s, c) => c.store(s.out, cpuPad(c.read(s.x), s.x.shape, s.lo, c.out.shape, s.value)),
  add: (s, c) => {
    const a = c.read(s.a, c.out.shape),
      b = c.read(s.b, c.out.shape);
    for (let i = 0; i < a.length; i++) a[i] += s.alpha * b[i];
    c.store(s.out, a);
  },
  map: (s, c) => {
    const a = c.read(s.a, c.out.shape),
      b = s.b ? c.read(s.b, c.out.shape) : null;
    const f = MAP_FNS[s.fn].cpu;
    const out = new Float64Array(a.length);
    for (let i = 0; i < a.length; i++) out[i] = f(a[i], b ? b[i] : 0, s.scalar);
    c.store(s.out, out);
  },
  reduce_rows: (s, c) =>
    c.store(s.out, cpuReduceRows(c.read(s.x), s.x.shape[s.x.shape.length - 1] ?? 1, s.mean)),
  gemm: (s, c) => {
    const [M, K] = s.a.shape;
    const N = s.b.shape[1];
    const bias = s.bias ? c.read(s.bias, [M, N]) : null;
    c.store(s.out, cpuGemm(c.read(s.a), c.read(s.b), bias, M, K, N, s.alpha, s.beta));
  },
  embedding: (s, c) => {
    const w = c.read(s.weight);
    const idx = c.read(s.indices);
    const [V, H] = s.weight.shape;
    const out = new Float64Array(idx.length * H);
    for (let t = 0; t < idx.length; t++) {
      const row = idx[t];
      if (row < 0 || row >= V)
        throw new RunError(
          'input',
          `node ${s.node}: token id ${row} at position ${t} is outside the vocabulary [0, ${V})`,
          { node: s.node, op: s.op },
        );
      out.set(w.subarray(row * H, row * H + H), t * H);
    }
    c.store(s.out, out);
  },
  scatter: (s, c) =>
    c.store(s.out, cpuScatter(c.read(s.base, c.out.shape), c.read(s.src), s.src.shape, s.at, s.strides)),
};
