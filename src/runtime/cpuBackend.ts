// The `cpu` backend: the reference. All ranks run in lockstep on the calling thread; a
// collective sums (or gathers) the tensors of each group of ranks its process group spans, in
// rank order.

import { f8e4m3fnValue, inverseScale, quantizeFp8, type Fp8NanRule } from '../graph/fp8.ts';
import { NVFP4_BLOCK, nvfp4Dequant, nvfp4Gemm, scaledFp4Quant, swizzledScaleOffset } from '../graph/fp4.ts';
import type { Backend, RunOptions, RunResult, TraceEvent } from './backend.ts';
import { DEFAULT_SEED } from './backend.ts';
import type { CollectiveStep, Plan, Step, StorageDType, View } from './plan.ts';
import {
  DTYPE_BYTES,
  MAP_FNS,
  SILU_MUL_BY_DTYPE,
  assertNever,
  kernelCost,
  siluMulHalves,
} from '../graph/opTable.ts';
import { cpuAttention, cpuKvCacheWrite, cpuRotary, cpuScatter } from './cpuLayerKernels.ts';
import { asRows, isCollective, numelOf, outputsOf } from './plan.ts';
import { RunError } from './runError.ts';
import { costRanks, resolveGroup, tpRankOf, type RankMesh } from './rankMesh.ts';
import { hostValues, toHostTensor, type HostTensor } from './hostTensor.ts';
import { roundTo, seedRule, seedStream, seededArray } from './weights.ts';
import {
  cpuGemm,
  cpuMoe,
  cpuPad,
  cpuReduceRows,
  cpuResidualNorm,
  cpuRmsNorm,
  readView,
  rounded,
  type HostArray,
} from './cpuKernels.ts';

export function inputTensorFor(
  step: Extract<Step, { kernel: 'seed' }>,
  plan: Plan,
  inputs: Map<string, HostTensor> | undefined,
): HostTensor | undefined {
  const given = inputs?.get(step.name);
  if (!given) return undefined;
  const st = plan.storages.get(step.out)!;
  if (given.shape.join() !== st.shape.join()) {
    throw new RunError(
      'input',
      `input '${step.name}': shape [${given.shape}] but the run needs [${st.shape}] (preset ${plan.preset.name}, T=${plan.tokens})`,
      { node: step.node },
    );
  }
  return given;
}

export const cpuBackend: Backend = {
  name: 'cpu',
  async run(plan: Plan, opts: RunOptions): Promise<RunResult> {
    const seed = opts.seed ?? DEFAULT_SEED;
    const R = plan.ranks;
    const mem: Map<string, HostArray>[] = Array.from({ length: R }, () => new Map());
    const events: TraceEvent[] = [];
    const t0 = performance.now();
    for (let si = 0; si < plan.steps.length; si++) {
      const s = plan.steps[si];
      opts.onProgress?.({ phase: 'run', done: si, total: plan.steps.length });
      if (isCollective(s)) {
        const start = performance.now();
        const io = runCollective(s, mem, plan.mesh);
        const dur = (performance.now() - start) * 1000;
        for (let r = 0; r < R; r++)
          events.push(ev(r, s, 'kernel', start - t0, dur, io.bytesRead, io.bytesWritten));
      } else {
        for (let r = 0; r < R; r++) {
          const start = performance.now();
          runStep(s, mem[r], plan, r, seed, opts.inputs);
          const outBytes = outputsOf(s).reduce((a, id) => {
            const st = plan.storages.get(id)!;
            return a + st.numel * DTYPE_BYTES[st.dtype];
          }, 0);
          const cost = kernelCost(s, outBytes, costRanks(plan.mesh, s));
          events.push(
            ev(
              r,
              s,
              s.kernel === 'seed' ? 'fed' : 'kernel',
              start - t0,
              (performance.now() - start) * 1000,
              cost.bytesRead,
              cost.bytesWritten,
            ),
          );
        }
      }
      for (const id of plan.freeAfter.get(si) ?? []) for (const m of mem) m.delete(id);
    }
    const outputs = mem.map(
      (m) =>
        new Map(
          plan.outputs.map((o) => [
            o.name,
            toHostTensor(o.view.dtype, o.view.shape, readView(o.view, m.get(o.view.storage)!)),
          ]),
        ),
    );
    return {
      outputs,
      trace: {
        backend: 'cpu',
        device: 'CPU reference (f64 accumulation)',
        ranks: R,
        events: events.filter((e) => e.kind !== 'fed' || e.rank === 0 || true),
        fed: plan.fed,
        notes: [],
      },
    };
  },
};

/**
 * A collective over every rank's memory at once, each group of its process group (rankMesh.ts)
 * apart; what each rank reads and writes, in bytes.
 */
function runCollective(
  s: CollectiveStep,
  mem: Map<string, HostArray>[],
  mesh: RankMesh,
): { bytesRead: number; bytesWritten: number } {
  let io = { bytesRead: 0, bytesWritten: 0 };
  for (const ranks of resolveGroup(mesh, s.group).groups)
    io = runGroupCollective(
      s,
      ranks.map((r) => mem[r]),
    );
  return io;
}

/** The collective among the ranks whose memories `mem` holds, in group-rank order. */
function runGroupCollective(
  s: CollectiveStep,
  mem: Map<string, HostArray>[],
): { bytesRead: number; bytesWritten: number } {
  const R = mem.length;
  const xs = mem.map((m) => readView(s.x, m.get(s.x.storage)!));
  const bytes = xs[0].length * DTYPE_BYTES[s.x.dtype];
  if (s.kernel === 'all_gather') {
    const n = xs[0].length;
    for (let r = 0; r < R; r++) {
      const out = new Float64Array(n * R);
      for (let q = 0; q < R; q++) out.set(xs[q], q * n);
      mem[r].set(s.out, rounded(s.x.dtype, out));
    }
    return { bytesRead: bytes * R, bytesWritten: bytes * R };
  }
  if (s.kernel === 'reduce_scatter') {
    // Rank r keeps rows [r·T/R, (r+1)·T/R) of the sum, summed in rank order as the all-reduce does.
    const len = xs[0].length / R;
    for (let r = 0; r < R; r++) {
      const sum = new Float64Array(len);
      for (let q = 0; q < R; q++) for (let i = 0; i < len; i++) sum[i] += xs[q][r * len + i];
      mem[r].set(s.out, rounded(s.x.dtype, sum));
    }
    return { bytesRead: bytes, bytesWritten: bytes / R };
  }
  const sum = new Float64Array(xs[0].length);
  for (let r = 0; r < R; r++) for (let i = 0; i < sum.length; i++) sum[i] += xs[r][i];
  const ar = rounded(s.x.dtype, sum);
  for (let r = 0; r < R; r++) {
    if (s.kernel === 'all_reduce') mem[r].set(s.out, ar);
    else {
      const rows = asRows(s.x)!;
      const { out, res } = cpuResidualNorm(
        Float64Array.from(ar),
        readView(s.residual, mem[r].get(s.residual.storage)!),
        readView(s.w, mem[r].get(s.w.storage)!),
        rows.rows,
        rows.cols,
        s.eps,
        s.x.dtype,
        s.normRounding !== 'as-unfused',
      );
      mem[r].set(s.out, rounded(s.x.dtype, out));
      mem[r].set(s.residualOut, rounded(s.x.dtype, res));
    }
  }
  return {
    bytesRead: numelOf(s.x.shape) * DTYPE_BYTES[s.x.dtype] * R,
    bytesWritten: numelOf(s.x.shape) * DTYPE_BYTES[s.x.dtype],
  };
}

function ev(
  rank: number,
  s: Step,
  kind: TraceEvent['kind'],
  startMs: number,
  durUs: number,
  bytesRead: number,
  bytesWritten: number,
): TraceEvent {
  return {
    rank,
    node: s.node,
    op: s.op,
    kind,
    start_us: startMs * 1000,
    dur_us: durUs,
    bytesRead,
    bytesWritten,
    timing: 'host',
  };
}

/** static_scaled_fp8_quant of `x` by `scale`: each value's e4m3 value (exact in every run dtype). */
function fp8Values(x: ArrayLike<number>, scale: number, rule: Fp8NanRule): Float64Array {
  const inv = inverseScale(scale);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f8e4m3fnValue(quantizeFp8(x[i]!, inv, rule));
  return out;
}

/**
 * KERNELS.fp8_quant_rows: each row's max|x| (reduce_rows' max, NaN wins), its scale and the values,
 * through the MAP_FNS bodies the unfused steps run, in the order they run them.
 */
function cpuFp8QuantRows(
  x: Float64Array,
  cols: number,
  k: { eps: number; max: number; minScale: number },
): { out: Float64Array; scale: Float64Array } {
  const { abs, maxs, mins, divs, div, to_f8e4m3fn: fp8 } = MAP_FNS;
  const rows = x.length / cols;
  const out = new Float64Array(x.length);
  const scale = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * cols, (r + 1) * cols);
    const amax = cpuReduceRows(
      row.map((v) => abs.cpu(v, 0, 0)),
      cols,
      false,
    )[0]!;
    const s = maxs.cpu(divs.cpu(maxs.cpu(amax, 0, k.eps), 0, k.max), 0, k.minScale);
    scale[r] = s;
    for (let j = 0; j < cols; j++) {
      const q = mins.cpu(maxs.cpu(div.cpu(row[j]!, s, 0), 0, -k.max), 0, k.max);
      out[r * cols + j] = fp8.cpu(q, 0, 0);
    }
  }
  return { out, scale };
}

/**
 * KERNELS.qk_norm_rope: qkv with its q and k heads through cpuRmsNorm and cpuRotary, as the pair's
 * steps (KERNEL_DECOMPOSITIONS) run them; v as it was.
 */
function cpuQkNormRope(
  s: Extract<Step, { kernel: 'qk_norm_rope' }>,
  read: (v: View) => Float64Array,
  dtype: StorageDType,
): Float64Array {
  const [T, width] = s.qkv.shape as [number, number];
  const d = s.headSize;
  const qkv = read(s.qkv);
  const positions = read(s.positions),
    cache = read(s.cache);
  const out = Float64Array.from(qkv);
  const parts: [number, number, View][] = [
    [0, s.qHeads, s.qWeight],
    [s.qHeads * d, s.kHeads, s.kWeight],
  ];
  for (const [col, heads, w] of parts) {
    const n = heads * d;
    const x = new Float64Array(T * n);
    for (let t = 0; t < T; t++) x.set(qkv.subarray(t * width + col, t * width + col + n), t * n);
    const normed = cpuRmsNorm(x, read(w), T * heads, d, s.eps, dtype);
    const round = (v: number) => roundTo(dtype, v);
    const rotated = cpuRotary(normed, T, n, positions, cache, s.cache.shape[1]!, d, s.neox, round);
    for (let t = 0; t < T; t++) out.set(rotated.subarray(t * n, (t + 1) * n), t * width + col);
  }
  return out;
}

/**
 * KERNELS.silu_and_mul: silu(gate) · up through the map bodies the unfused step runs (f16: silu
 * rounded to f16, then the product), each product rounded to the run dtype, then with a scale the
 * static quant of it.
 */
function cpuSiluAndMul(
  x: View,
  read: (v: View) => Float64Array,
  scale: View | null | undefined,
): Float64Array {
  const { gate, up } = siluMulHalves(x);
  const [g, u] = [read(gate), read(up)];
  const { silu, mul } = MAP_FNS;
  const dtype = x.dtype;
  const product = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++)
    product[i] = roundTo(
      dtype,
      dtype === 'bf16' || dtype === 'f32'
        ? MAP_FNS[SILU_MUL_BY_DTYPE[dtype]].cpu(g[i]!, u[i]!, 0)
        : mul.cpu(roundTo(dtype, silu.cpu(g[i]!, 0, 0)), u[i]!, 0),
    );
  return scale ? fp8Values(product, read(scale)[0]!, 'clamp') : product;
}

/**
 * KERNELS.silu_and_mul_nvfp4: scaled_fp4_quant of silu_and_mul's products; the block scales row-major,
 * or at their swizzled offsets in `scaleNumel` elements (zeros between).
 */
function cpuSiluAndMulNvfp4(
  s: Extract<Step, { kernel: 'silu_and_mul_nvfp4' }>,
  read: (v: View) => Float64Array,
  scaleNumel: number,
): { packed: Float64Array; scales: Float64Array } {
  const q = scaledFp4Quant(cpuSiluAndMul(s.x, read, null), read(s.globalScale)[0]!);
  if (!s.swizzled) return q;
  const cols = s.x.shape[s.x.shape.length - 1]! / 2 / NVFP4_BLOCK;
  const scales = new Float64Array(scaleNumel);
  q.scales.forEach((v, i) => (scales[swizzledScaleOffset(Math.floor(i / cols), i % cols, cols)] = v));
  return { packed: q.packed, scales };
}

/** fused_add_rms_norm's values over the rows of x and the residual: the normed rows and z = x + residual. */
function addNorm(
  s: { x: View; residual: View; w: View; eps: number },
  read: (v: View) => Float64Array,
  d: StorageDType,
) {
  const r = asRows(s.x)!;
  return cpuResidualNorm(read(s.x), read(s.residual), read(s.w), r.rows, r.cols, s.eps, d, false);
}

/**
 * KERNELS.rms_norm_dynamic_quant / fused_add_rms_norm_dynamic_quant: the norm's rounded values (as
 * rms_norm / fused_add_rms_norm store them), then fp8_quant_rows' steps over each group.
 */
function cpuNormDynamicQuant(
  s: Extract<Step, { kernel: 'rms_norm_dynamic_quant' | 'fused_add_rms_norm_dynamic_quant' }>,
  m: Map<string, HostArray>,
  read: (v: View) => Float64Array,
  dt: (id: string) => StorageDType,
): void {
  const r = asRows(s.x)!;
  const d = dt(s.out);
  let y: Float64Array;
  if (s.kernel === 'rms_norm_dynamic_quant')
    y = Float64Array.from(rounded(d, cpuRmsNorm(read(s.x), read(s.w), r.rows, r.cols, s.eps, d)));
  else {
    const { out, res } = addNorm(s, read, d);
    y = Float64Array.from(rounded(d, out));
    m.set(s.residualOut, rounded(d, res));
  }
  const { out, scale } = cpuFp8QuantRows(y, s.group, { eps: 0, max: s.max, minScale: s.minScale });
  m.set(s.out, rounded(d, out));
  // Transposed: [groups, rows] where the kernel computes [rows, groups].
  const groups = r.cols / s.group;
  const stored = s.scaleTransposed
    ? Float64Array.from(scale, (_, i) => scale[(i % r.rows) * groups + Math.floor(i / r.rows)]!)
    : scale;
  m.set(s.scaleOut, rounded(dt(s.scaleOut), stored));
}

function runStep(
  s: Step,
  m: Map<string, HostArray>,
  plan: Plan,
  rank: number,
  seed: number,
  inputs?: Map<string, HostTensor>,
): void {
  if (isCollective(s)) throw new Error('collectives run across ranks');
  const read = (v: View, shape?: number[]) => readView(v, m.get(v.storage)!, shape);
  const st = (id: string) => plan.storages.get(id)!;
  const dt = (id: string) => st(id).dtype;
  switch (s.kernel) {
    case 'seed': {
      const given = inputTensorFor(s, plan, inputs);
      const shape = st(s.out).shape;
      if (given) {
        m.set(s.out, rounded(dt(s.out), hostValues(given)));
        return;
      }
      m.set(
        s.out,
        seededArray(
          seed,
          seedStream(s.name, s.perRank, rank),
          numelOf(shape),
          seedRule(s.role, shape),
          dt(s.out),
          s.range,
        ),
      );
      return;
    }
    case 'copy':
      m.set(s.out, rounded(dt(s.out), read(s.x)));
      return;
    case 'pad':
      m.set(s.out, rounded(dt(s.out), cpuPad(read(s.x), s.x.shape, s.lo, st(s.out).shape, s.value)));
      return;
    case 'add': {
      const shape = st(s.out).shape;
      const a = read(s.a, shape),
        b = read(s.b, shape);
      for (let i = 0; i < a.length; i++) a[i] += s.alpha * b[i];
      m.set(s.out, rounded(dt(s.out), a));
      return;
    }
    case 'map': {
      const shape = st(s.out).shape;
      const a = read(s.a, shape),
        b = s.b ? read(s.b, shape) : null;
      const f = MAP_FNS[s.fn].cpu;
      const out = new Float64Array(a.length);
      for (let i = 0; i < a.length; i++) out[i] = f(a[i], b ? b[i] : 0, s.scalar);
      m.set(s.out, rounded(dt(s.out), out));
      return;
    }
    case 'reduce_rows':
      m.set(
        s.out,
        rounded(dt(s.out), cpuReduceRows(read(s.x), s.x.shape[s.x.shape.length - 1] ?? 1, s.mean)),
      );
      return;
    case 'gemm': {
      const [M, K] = s.a.shape;
      const N = s.b.shape[1];
      m.set(
        s.out,
        rounded(
          dt(s.out),
          cpuGemm(read(s.a), read(s.b), s.bias ? read(s.bias, [M, N]) : null, M, K, N, s.alpha, s.beta),
        ),
      );
      return;
    }
    case 'embedding': {
      const w = read(s.weight);
      const idx = read(s.indices);
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
      m.set(s.out, rounded(dt(s.out), out));
      return;
    }
    case 'rms_norm': {
      const r = asRows(s.x)!;
      const y = rounded(dt(s.out), cpuRmsNorm(read(s.x), read(s.w), r.rows, r.cols, s.eps, dt(s.out)));
      m.set(s.out, s.scale ? rounded(dt(s.out), fp8Values(y, read(s.scale)[0]!, 'clamp')) : y);
      return;
    }
    case 'fused_add_rms_norm': {
      const { out, res } = addNorm(s, read, dt(s.out));
      // With a scale, the static FP8 quant of the rounded normed values (KERNELS.fused_add_rms_norm).
      const y = rounded(dt(s.out), out);
      m.set(s.out, s.scale ? rounded(dt(s.out), fp8Values(y, read(s.scale)[0]!, 'clamp')) : y);
      m.set(s.residualOut, rounded(dt(s.out), res));
      return;
    }
    case 'moe': {
      const r = asRows(s.x)!;
      m.set(
        s.out,
        rounded(
          dt(s.out),
          cpuMoe(
            read(s.x),
            read(s.logits),
            r.rows,
            r.cols,
            s.experts,
            s.topK,
            s.intermediate,
            s.layer,
            tpRankOf(plan.mesh, rank),
            plan.mesh.tp,
            seed,
            dt(s.out),
          ),
        ),
      );
      return;
    }
    case 'scatter': {
      const shape = st(s.out).shape;
      m.set(
        s.out,
        rounded(dt(s.out), cpuScatter(read(s.base, shape), read(s.src), s.src.shape, s.at, s.strides)),
      );
      return;
    }
    case 'rotary': {
      const [T, width] = s.x.shape;
      const round = (v: number) => roundTo(dt(s.out), v);
      m.set(
        s.out,
        rounded(
          dt(s.out),
          cpuRotary(
            read(s.x),
            T,
            width,
            read(s.positions),
            read(s.cache),
            s.cache.shape[1],
            s.headSize,
            s.neox,
            round,
          ),
        ),
      );
      return;
    }
    case 'kv_cache_write': {
      const width = numelOf(s.x.shape) / s.x.shape[0]!;
      m.set(s.out, rounded(dt(s.out), cpuKvCacheWrite(read(s.cache), read(s.x), read(s.slots), width)));
      return;
    }
    case 'attention': {
      const [T, H, D] = s.q.shape;
      const o = rounded(dt(s.out), cpuAttention(read(s.q), read(s.k), read(s.v), T, H, s.k.shape[1], D));
      m.set(s.out, s.scale ? rounded(dt(s.out), fp8Values(o, read(s.scale)[0]!, 'clamp')) : o);
      return;
    }
    case 'fp8_quant': {
      m.set(
        s.out,
        rounded(dt(s.out), fp8Values(read(s.x), read(s.scale)[0]!, s.satfinite ? 'satfinite' : 'clamp')),
      );
      return;
    }
    case 'fp8_quant_rows': {
      const { out, scale } = cpuFp8QuantRows(read(s.x), s.x.shape[s.x.shape.length - 1] ?? 1, s);
      m.set(s.out, rounded(dt(s.out), out));
      m.set(s.scaleOut, rounded(dt(s.scaleOut), scale));
      return;
    }
    case 'silu_and_mul':
      m.set(s.out, rounded(dt(s.out), cpuSiluAndMul(s.x, read, s.scale)));
      return;
    case 'silu_and_mul_nvfp4': {
      const { packed, scales } = cpuSiluAndMulNvfp4(s, read, st(s.scaleOut).numel);
      m.set(s.out, rounded(dt(s.out), packed));
      m.set(s.scaleOut, rounded(dt(s.scaleOut), scales));
      return;
    }
    case 'rms_norm_dynamic_quant':
    case 'fused_add_rms_norm_dynamic_quant':
      cpuNormDynamicQuant(s, m, read, dt);
      return;
    case 'nvfp4_scale':
    case 'nvfp4_quant': {
      const q = scaledFp4Quant(read(s.x), read(s.globalScale)[0]!);
      m.set(s.out, rounded(dt(s.out), s.kernel === 'nvfp4_scale' ? q.scales : q.packed));
      return;
    }
    case 'qk_norm_rope':
      m.set(s.out, rounded(dt(s.out), cpuQkNormRope(s, read, dt(s.out))));
      return;
    case 'nvfp4_gemm': {
      const A = nvfp4Dequant(read(s.a), read(s.aScale)),
        B = nvfp4Dequant(read(s.b), read(s.bScale));
      m.set(s.out, rounded(dt(s.out), nvfp4Gemm(A, B, 2 * s.a.shape[1]!, read(s.alpha)[0]!)));
      return;
    }
    default:
      assertNever(s, 'kernel');
  }
}
