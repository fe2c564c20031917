// Elementwise kernels over strided N-d views: seed, copy (clone / contiguous), constant_pad_nd,
// add (with broadcasting), the map functions (MAP_FNS), embedding and slice_scatter. Each thread
// writes one pair of output elements, so packed outputs are written a whole u32 word at a time.
// Rotary (rotary.ts) and attention (attention.ts) are kernels of the same form.
//
// Bind layout (every kernel here):
//   @binding(0) prm: <Kind>Params  the kernel's struct below: n (output elements) first; where the
//                                   kernel walks the output's dims, its shape and each view's offset
//                                   and strides, padded to MAX_DIMS (leading 1s and 0s: padDims)
//   @binding(1) out                 the contiguous output
//   @binding(2..) the viewed inputs, named as in the struct: x; a, b; weight, indices; base, src

import { DTYPE_WGSL, inputBinding, outputBinding, roundExpr, type WgslDType } from './dtype.ts';
import { RANDOM_WGSL } from './random.ts';
import { paramStruct } from './params.ts';
import { MAP_FNS, mapHelpersWgsl, type MapFn } from '../graph/opTable.ts';

export const MAX_DIMS = 6;
export const ELEMENTWISE_WG = 256;

/** Per-dim fields: a shape or strides over the output's dims. */
const DIMS = `array<u32, ${MAX_DIMS}>` as const;

type ViewFields<N extends string> = { [K in `${N}Offset`]: 'u32' } & { [K in `${N}Strides`]: typeof DIMS };
/** A view read with the output's shape: its offset and its strides over the output's dims. */
function viewFields<N extends string>(name: N): ViewFields<N> {
  return { [`${name}Offset`]: 'u32', [`${name}Strides`]: DIMS } as ViewFields<N>;
}
const OUT_SHAPE = { n: 'u32', outShape: DIMS } as const;

export const COPY_PARAMS = paramStruct('CopyParams', { ...OUT_SHAPE, ...viewFields('x') });
/** a + alpha · b, both broadcast to the output. */
export const ADD_PARAMS = paramStruct('AddParams', {
  ...OUT_SHAPE,
  ...viewFields('a'),
  ...viewFields('b'),
  alpha: 'f32',
});
/** A map function of a, b (unused by the one-operand ones) and the scalar s. */
export const MAP_PARAMS = paramStruct('MapParams', {
  ...OUT_SHAPE,
  ...viewFields('a'),
  ...viewFields('b'),
  scalar: 'f32',
});
/** x placed at `lo` per dim (x's shape `inShape`), `value` elsewhere. */
export const PAD_PARAMS = paramStruct('PadParams', {
  ...OUT_SHAPE,
  ...viewFields('x'),
  lo: DIMS,
  inShape: DIMS,
  value: 'f32',
});
/** Rows of a [vocab, hidden] table by token id (ids clamped into the table). */
export const EMBEDDING_PARAMS = paramStruct('EmbeddingParams', {
  n: 'u32',
  hidden: 'u32',
  vocab: 'u32',
  weightOffset: 'u32',
  weightRowStride: 'u32',
  indicesOffset: 'u32',
});
/** Counter-based values (src/runtime/random.ts): u·scale + offset, or indices in [0, range) when range > 0. */
export const SEED_PARAMS = paramStruct('SeedParams', {
  n: 'u32',
  seed: 'u32',
  stream: 'u32',
  scale: 'f32',
  offset: 'f32',
  range: 'u32',
});
/**
 * base (read with the output's shape) with a window replaced by src: the window starts at element
 * `at` and spans, per window dim outermost first, windowSizes at windowStrides (0: unused), read
 * from src at srcStrides.
 */
export const SCATTER_PARAMS = paramStruct('ScatterParams', {
  ...OUT_SHAPE,
  ...viewFields('base'),
  srcOffset: 'u32',
  at: 'u32',
  windowSizes: DIMS,
  windowStrides: DIMS,
  srcStrides: DIMS,
});

export type ElementwiseKind = 'copy' | 'add' | 'pad' | 'embedding' | 'seed' | 'scatter' | MapFn;

/** `at_V(i)`: the element offset of output element i read through view V's strides. */
function stridedWgsl(v: string): string {
  return `fn at_${v}(i: u32) -> u32 {
  var rem = i;
  var off = prm.${v}Offset;
  for (var d = ${MAX_DIMS - 1}i; d >= 0; d--) {
    let size = prm.outShape[d];
    off += (rem % size) * prm.${v}Strides[d];
    rem /= size;
  }
  return off;
}`;
}

interface KernelBody {
  params: string;
  /** Input bindings in order, from binding 2. */
  inputs: string[];
  fns: string;
  /** The f32 value of output element i, before rounding to the output dtype. */
  value: string;
}

const KERNEL_BODIES: Record<Exclude<ElementwiseKind, MapFn>, KernelBody> = {
  copy: { params: COPY_PARAMS.wgsl, inputs: ['x'], fns: stridedWgsl('x'), value: 'ld_x(at_x(i))' },
  add: {
    params: ADD_PARAMS.wgsl,
    inputs: ['a', 'b'],
    fns: `${stridedWgsl('a')}\n${stridedWgsl('b')}`,
    value: 'ld_a(at_a(i)) + prm.alpha * ld_b(at_b(i))',
  },
  pad: {
    params: PAD_PARAMS.wgsl,
    inputs: ['x'],
    fns: `fn pad_value(i: u32) -> f32 {
  var rem = i; var off = prm.xOffset; var inside = true;
  for (var d = ${MAX_DIMS - 1}i; d >= 0; d--) {
    let size = prm.outShape[d];
    let o = rem % size; rem /= size;
    let lo = prm.lo[d];
    let n = prm.inShape[d];
    if (o < lo || o - lo >= n) { inside = false; } else { off += (o - lo) * prm.xStrides[d]; }
  }
  if (inside) { return ld_x(off); }
  return prm.value;
}`,
    value: 'pad_value(i)',
  },
  embedding: {
    params: EMBEDDING_PARAMS.wgsl,
    inputs: ['weight', 'indices'],
    fns: `fn embed(i: u32) -> f32 {
  let H = prm.hidden;
  let V = prm.vocab;
  let t = i / H;
  let row = min(u32(max(i32(ld_indices(prm.indicesOffset + t)), 0)), V - 1u);
  return ld_weight(prm.weightOffset + row * prm.weightRowStride + (i % H));
}`,
    value: 'embed(i)',
  },
  scatter: {
    params: SCATTER_PARAMS.wgsl,
    inputs: ['base', 'src'],
    fns: `${stridedWgsl('base')}
fn scatter_value(i: u32) -> f32 {
  // Output element i lies in the window when i − at splits greedily into the window's strides
  // (outermost first) with every index inside its size: then it is src at those indices.
  let at = prm.at;
  if (i >= at) {
    var rem = i - at; var src = prm.srcOffset; var inside = true;
    for (var d = 0u; d < ${MAX_DIMS}u; d++) {
      let stride = prm.windowStrides[d];
      if (stride == 0u) { continue; }
      let k = rem / stride;
      if (k >= prm.windowSizes[d]) { inside = false; break; }
      rem -= k * stride;
      src += k * prm.srcStrides[d];
    }
    if (inside && rem == 0u) { return ld_src(src); }
  }
  return ld_base(at_base(i));
}`,
    value: 'scatter_value(i)',
  },
  seed: {
    params: SEED_PARAMS.wgsl,
    inputs: [],
    fns: `${RANDOM_WGSL}
fn seed_value(i: u32) -> f32 {
  let u = uniform3(prm.seed, prm.stream, i);
  let range = prm.range;
  if (range > 0u) { return f32(min(range - 1u, u32(floor((u + 1.0) * 0.5 * f32(range))))); }
  return u * prm.scale + prm.offset;
}`,
    value: 'seed_value(i)',
  },
};

function mapKernel(fn: MapFn, operands: number): KernelBody {
  const binary = operands > 1;
  return {
    params: MAP_PARAMS.wgsl,
    inputs: binary ? ['a', 'b'] : ['a'],
    fns: `${stridedWgsl('a')}
${binary ? stridedWgsl('b') : ''}
${mapHelpersWgsl(MAP_FNS[fn])}
fn map_value(a: f32, b: f32, s: f32) -> f32 { return ${MAP_FNS[fn].wgsl}; }`,
    value: `map_value(ld_a(at_a(i)), ${binary ? 'ld_b(at_b(i))' : '0.0'}, prm.scalar)`,
  };
}

/** WGSL for one elementwise kernel, specialized to its dtypes (`inputs` in binding order). */
export function elementwiseWgsl(kind: ElementwiseKind, out: WgslDType, inputs: WgslDType[]): string {
  const k =
    kind in KERNEL_BODIES
      ? KERNEL_BODIES[kind as keyof typeof KERNEL_BODIES]
      : mapKernel(kind as MapFn, inputs.length);
  if (k.inputs.length !== inputs.length)
    throw new Error(`elementwise ${kind}: ${inputs.length} input dtypes for ${k.inputs.length} inputs`);
  return pairKernelWgsl({ ...k, out, inputs: k.inputs.map((name, i) => [name, inputs[i]]) });
}

/**
 * A kernel of one value per output element, each thread writing a pair (one whole packed word):
 * the struct `params` (its first field `n`, the output's element count), the output at binding 1,
 * `inputs` from binding 2, the functions `fns` and `value`, the f32 of element i, which is
 * rounded to the output dtype here.
 */
export function pairKernelWgsl(k: {
  params: string;
  out: WgslDType;
  inputs: [name: string, dtype: WgslDType][];
  fns: string;
  value: string;
}): string {
  return `${DTYPE_WGSL}
${k.params}
${outputBinding('out', 1, k.out)}
${k.inputs.map(([name, d], i) => inputBinding(name, 2 + i, d)).join('\n')}
${k.fns}
fn value(i: u32) -> f32 { return ${roundExpr(k.out, k.value)}; }
@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = 2u * (gid.x + gid.y * nwg.x * ${ELEMENTWISE_WG}u);
  let n = prm.n;
  if (i + 1u < n) { st2_out(i, value(i), value(i + 1u)); }
  else if (i < n) { st_out(i, value(i)); }
}
`;
}

/** `xs` (a shape or strides) padded to MAX_DIMS with leading `fill`s, aligned with the output's innermost dims. */
export function padDims(xs: readonly number[], fill: number): number[] {
  if (xs.length > MAX_DIMS) throw new Error(`more than ${MAX_DIMS} dims`);
  return [...new Array<number>(MAX_DIMS - xs.length).fill(fill), ...xs];
}

/** Workgroup grid for `threads` threads, split over y past the 65535 limit. */
export function grid1d(threads: number, wg: number): [number, number] {
  const groups = Math.max(1, Math.ceil(threads / wg));
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x)];
}
