// Elementwise kernels over strided N-d views: seed, copy (clone / contiguous), constant_pad_nd,
// add (with broadcasting), embedding. Each thread writes one pair of output elements, so packed
// outputs are written a whole u32 word at a time.
//
// Bind layout (every kernel here):
//   @binding(0) prm: array<u32>   sizes, offsets and strides (layout per kernel below)
//   @binding(1) out                the contiguous output
//   @binding(2..) inputs           the viewed storages
// prm[0] = output numel, prm[1..7) = output shape (6 dims, leading 1s), then per input
// [offset, stride × 6]; kernel-specific words follow.

import { DTYPE_WGSL, inputBinding, outputBinding, roundExpr, type WgslDType } from './dtype.ts';
import { RANDOM_WGSL } from './random.ts';
import { MAP_FNS, type MapFn } from '../graph/opTable.ts';

export const MAX_DIMS = 6;
export const ELEMENTWISE_WG = 256;

export type ElementwiseKind =
  'copy' | 'add' | 'pad' | 'embedding' | 'seed' | 'scatter' | 'rotary' | 'attention' | MapFn;

const HEADER = /* wgsl */ `
@group(0) @binding(0) var<storage, read> prm: array<u32>;
fn out_dim(d: u32) -> u32 { return prm[1u + d]; }
// Element offset of output element i read through input k's strides (input k's words start at base).
fn strided(i: u32, base: u32) -> u32 {
  var rem = i;
  var off = prm[base];
  for (var d = ${MAX_DIMS - 1}i; d >= 0; d--) {
    let size = out_dim(u32(d));
    off += (rem % size) * prm[base + 1u + u32(d)];
    rem /= size;
  }
  return off;
}
`;

const IN_BASE = (k: number) => 1 + MAX_DIMS + k * (1 + MAX_DIMS);

/** WGSL for one elementwise kernel, specialized to its dtypes. */
export function elementwiseWgsl(kind: ElementwiseKind, out: WgslDType, inputs: WgslDType[]): string {
  const ins = inputs.map((d, k) => inputBinding(`in${k}`, 2 + k, d)).join('\n');
  const extra = IN_BASE(inputs.length);
  let value: string;
  switch (kind) {
    case 'copy':
      value = `ld_in0(strided(i, ${IN_BASE(0)}u))`;
      break;
    case 'add':
      value = `ld_in0(strided(i, ${IN_BASE(0)}u)) + bitcast<f32>(prm[${extra}u]) * ld_in1(strided(i, ${IN_BASE(1)}u))`;
      break;
    case 'pad':
      // prm[extra..+6) low pad per dim, [extra+6..+12) input shape, extra+12 pad value.
      value = `pad_value(i)`;
      break;
    case 'embedding':
      // in0 = weight rows (offset, row stride in its stride[4]), in1 = indices; prm[extra] = H.
      value = `embed(i)`;
      break;
    case 'seed':
      // prm[extra..]: seed, stream, scale bits, offset bits, range (0: a float tensor).
      value = `seed_value(i)`;
      break;
    case 'scatter':
      // in0 = base (read with the output's shape), in1 = src (offset only); prm[extra] = at, then
      // per window dim, outermost first: sizes, window strides (0: unused), src strides.
      value = `scatter_value(i)`;
      break;
    case 'rotary':
      // in0 = x [T, W], in1 = positions [T], in2 = cache [P, rot] (row stride in its stride[4]);
      // prm[extra] = head size, [extra+1] = rot, [extra+2] = neox.
      value = `rotary_value(i)`;
      break;
    case 'attention':
      // The reference attention, one thread per output element (it recomputes the scores: a
      // checking kernel for small sizes, not a fast one). in0 = q [T, H, D], in1 = k, in2 = v
      // [T, Hkv, D]; prm[extra] = Hkv, [extra+1] = 1/√D bits.
      value = `attention_value(i)`;
      break;
    default:
      value = `map_value(ld_in0(strided(i, ${IN_BASE(0)}u)), ${inputs.length > 1 ? `ld_in1(strided(i, ${IN_BASE(1)}u))` : '0.0'}, bitcast<f32>(prm[${extra}u]))`;
  }
  const fns: Partial<Record<ElementwiseKind, string>> = {
    copy: '',
    add: '',
    pad: `fn pad_value(i: u32) -> f32 {
  var rem = i; var off = prm[${IN_BASE(0)}u]; var inside = true;
  for (var d = ${MAX_DIMS - 1}i; d >= 0; d--) {
    let size = out_dim(u32(d));
    let o = rem % size; rem /= size;
    let lo = prm[${extra}u + u32(d)];
    let n = prm[${extra + MAX_DIMS}u + u32(d)];
    if (o < lo || o - lo >= n) { inside = false; } else { off += (o - lo) * prm[${IN_BASE(0) + 1}u + u32(d)]; }
  }
  if (inside) { return ld_in0(off); }
  return bitcast<f32>(prm[${extra + 2 * MAX_DIMS}u]);
}`,
    embedding: `fn embed(i: u32) -> f32 {
  let H = prm[${extra}u];
  let V = prm[${extra + 1}u];
  let t = i / H;
  let row = min(u32(max(i32(ld_in1(prm[${IN_BASE(1)}u] + t)), 0)), V - 1u);
  return ld_in0(prm[${IN_BASE(0)}u] + row * prm[${IN_BASE(0) + 1 + MAX_DIMS - 2}u] + (i % H));
}`,
    scatter: `fn scatter_value(i: u32) -> f32 {
  // Output element i lies in the window when i − at splits greedily into the window's strides
  // (outermost first) with every index inside its size: then it is src at those indices.
  let at = prm[${extra}u];
  if (i >= at) {
    var rem = i - at; var src = prm[${IN_BASE(1)}u]; var inside = true;
    for (var d = 0u; d < ${MAX_DIMS}u; d++) {
      let stride = prm[${extra + 1 + MAX_DIMS}u + d];
      if (stride == 0u) { continue; }
      let k = rem / stride;
      if (k >= prm[${extra + 1}u + d]) { inside = false; break; }
      rem -= k * stride;
      src += k * prm[${extra + 1 + 2 * MAX_DIMS}u + d];
    }
    if (inside && rem == 0u) { return ld_in1(src); }
  }
  return ld_in0(strided(i, ${IN_BASE(0)}u));
}`,
    rotary: `fn rnd(v: f32) -> f32 { return ${roundExpr(out, 'v')}; }
fn rotary_value(i: u32) -> f32 {
  let W = out_dim(${MAX_DIMS - 1}u);
  let t = i / W; let c = i % W;
  let hs = prm[${extra}u]; let rot = prm[${extra + 1}u]; let neox = prm[${extra + 2}u] == 1u;
  let j = c % hs; let head = c - j;
  let row = prm[${IN_BASE(0)}u] + t * prm[${IN_BASE(0) + 1 + MAX_DIMS - 2}u];
  let xj = ld_in0(row + c * prm[${IN_BASE(0) + MAX_DIMS}u]);
  if (j >= rot) { return xj; }
  let half = rot / 2u;
  var pair: u32; var k: u32; var first: bool;
  if (neox) { first = j < half; k = select(j - half, j, first); pair = select(j - half, j + half, first); }
  else { first = j % 2u == 0u; k = j / 2u; pair = select(j - 1u, j + 1u, first); }
  let xp = ld_in0(row + (head + pair) * prm[${IN_BASE(0) + MAX_DIMS}u]);
  let pos = u32(max(ld_in1(prm[${IN_BASE(1)}u] + t * prm[${IN_BASE(1) + MAX_DIMS}u]), 0.0));
  let crow = prm[${IN_BASE(2)}u] + pos * prm[${IN_BASE(2) + 1 + MAX_DIMS - 2}u];
  let cs = ld_in2(crow + k); let sn = ld_in2(crow + half + k);
  // As vLLM's kernel in the storage dtype: each product rounded, then the sum.
  if (first) { return rnd(rnd(xj * cs) - rnd(xp * sn)); }
  return rnd(rnd(xj * cs) + rnd(xp * sn));
}`,
    attention: `fn qk(t: u32, h: u32, j: u32, kh: u32, D: u32) -> f32 {
  var dot = 0.0;
  for (var e = 0u; e < D; e++) {
    dot += ld_in0(prm[${IN_BASE(0)}u] + t * prm[${IN_BASE(0) + 4}u] + h * prm[${IN_BASE(0) + 5}u] + e * prm[${IN_BASE(0) + 6}u])
      * ld_in1(prm[${IN_BASE(1)}u] + j * prm[${IN_BASE(1) + 4}u] + kh * prm[${IN_BASE(1) + 5}u] + e * prm[${IN_BASE(1) + 6}u]);
  }
  return dot * bitcast<f32>(prm[${extra + 1}u]);
}
fn attention_value(i: u32) -> f32 {
  let D = out_dim(5u); let H = out_dim(4u);
  let d = i % D; let h = (i / D) % H; let t = i / (D * H);
  let kh = h / (H / prm[${extra}u]);
  var m = -3.4e38;
  for (var j = 0u; j <= t; j++) { m = max(m, qk(t, h, j, kh, D)); }
  var sum = 0.0; var acc = 0.0;
  for (var j = 0u; j <= t; j++) {
    let p = exp(qk(t, h, j, kh, D) - m);
    sum += p;
    acc += p * ld_in2(prm[${IN_BASE(2)}u] + j * prm[${IN_BASE(2) + 4}u] + kh * prm[${IN_BASE(2) + 5}u] + d * prm[${IN_BASE(2) + 6}u]);
  }
  return acc / sum;
}`,
    seed: `${RANDOM_WGSL}
fn seed_value(i: u32) -> f32 {
  let u = uniform3(prm[${extra}u], prm[${extra + 1}u], i);
  let range = prm[${extra + 4}u];
  if (range > 0u) { return f32(min(range - 1u, u32(floor((u + 1.0) * 0.5 * f32(range))))); }
  return u * bitcast<f32>(prm[${extra + 2}u]) + bitcast<f32>(prm[${extra + 3}u]);
}`,
  };
  return `${DTYPE_WGSL}
${HEADER}
${outputBinding('out', 1, out)}
${ins}
${fns[kind] ?? `fn map_value(a: f32, b: f32, s: f32) -> f32 { return ${MAP_FNS[kind as MapFn].wgsl}; }`}
fn value(i: u32) -> f32 { return ${roundExpr(out, value)}; }
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = 2u * (gid.x + gid.y * nwg.x * ${ELEMENTWISE_WG}u);
  let n = prm[0];
  if (i + 1u < n) { st2_out(i, value(i), value(i + 1u)); }
  else if (i < n) { st_out(i, value(i)); }
}
`;
}

/** The meta words: output shape then each input's offset and strides, all padded to MAX_DIMS. */
export function elementwiseMeta(
  outShape: number[],
  inputs: { offset: number; strides: number[] }[],
  extra: number[],
): Uint32Array {
  if (outShape.length > MAX_DIMS) throw new Error(`more than ${MAX_DIMS} dims`);
  const pad = (xs: number[], fill: number) => [...new Array(MAX_DIMS - xs.length).fill(fill), ...xs];
  const words = [outShape.reduce((a, b) => a * b, 1), ...pad(outShape, 1)];
  for (const v of inputs) words.push(v.offset, ...pad(v.strides, 0));
  words.push(...extra);
  return Uint32Array.from(words.map((w) => w >>> 0));
}

export function f32Bits(x: number): number {
  return new Uint32Array(Float32Array.of(x).buffer)[0];
}

/** Workgroup grid for `threads` threads, split over y past the 65535 limit. */
export function grid1d(threads: number, wg: number): [number, number] {
  const groups = Math.max(1, Math.ceil(threads / wg));
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x)];
}
