// The vLLM fusions fusionlab executes, as the bench times them: each one's unfused pair written as
// vLLM's custom ops in a torch.compile graph (the form its fusion passes match), the pass that fuses
// it, the inputs a check feeds both sides, and the bytes a fused kernel must move per call (the
// op's own dtypes: FP8 one byte, NVFP4 half a byte plus its e4m3 block scales). bench/torch_fusions.py
// writes the same pairs in torch ops; its FUSIONS keys are these names.

import { parseFx } from '../src/graph/fx/parse.ts';
import type { Graph } from '../src/graph/ir.ts';
import { toHostTensor, type HostTensor } from '../src/runtime/hostTensor.ts';
import { seededArray, seedRule } from '../src/runtime/weights.ts';
import { fnv1a32 } from '../src/runtime/random.ts';

export const FUSION_NAMES = [
  'rmsnorm+fp8 static',
  'fused_add_rmsnorm+fp8 static',
  'rmsnorm+fp8 dynamic per-token',
  'rmsnorm+fp8 per-token-group 128',
  'silu_and_mul+fp8 static',
  'silu_and_mul+nvfp4 (emulated)',
  'qk-norm+rope',
] as const;
export type FusionName = (typeof FUSION_NAMES)[number];

/** Model sizes: Llama-3.1-8B's, or small ones SwiftShader runs in seconds. */
export interface FusionSizes {
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Rows of RoPE's cos_sin_cache (positions are fed below it). */
  ropeRows: number;
}
export const LLAMA_8B: FusionSizes = {
  hidden: 4096,
  intermediate: 14336,
  heads: 32,
  kvHeads: 8,
  headDim: 128,
  ropeRows: 4096,
};
export const QUICK_SIZES: FusionSizes = {
  hidden: 256,
  intermediate: 384,
  heads: 4,
  kvHeads: 2,
  headDim: 64,
  ropeRows: 64,
};

/** One graph input: its dtype, shape (T bound) and how its values are drawn. */
interface InputSpec {
  dtype: 'bf16' | 'f32' | 'i32';
  shape: number[];
  /** Values: uniform in offset ± scale (bf16/f32), or integers in [0, range). */
  scale?: number;
  offset?: number;
  range?: number;
}

export interface FusionCase {
  name: FusionName;
  /** fusionlab's pass (src/graph/passes/pipeline.ts) and the options it needs. */
  passes: string[];
  passOptions: { gpu?: 'hopper' | 'blackwell'; worldSize?: number };
  /** The unfused pair in vLLM's custom-op form; `arg0_1` is the token count. */
  graph(s: FusionSizes): Graph;
  inputs(s: FusionSizes, T: number): Record<string, InputSpec>;
  /** The graph's outputs in return order (torch_fusions.py returns the same tuple). */
  outputs: string[];
  /** HBM bytes a fused kernel moves per call: every input read once, every output written once. */
  bytes(s: FusionSizes, T: number): number;
}

const DEVICE = "device = device(type='cuda', index=0), pin_memory = False";
const empty = (name: string, type: string, dims: string, dtype: string) =>
  `        ${name}: "${type}" = torch.ops.aten.empty.memory_format(${dims}, dtype = torch.${dtype}, ${DEVICE})`;
const af = (i: number, op: string, args: string) =>
  `        af${i} = torch.ops.higher_order.auto_functionalized(torch.ops._C.${op}.default, ${args})`;
const module = (args: string, body: string[], ret: string[]): Graph =>
  parseFx(
    [
      'class GraphModule(torch.nn.Module):',
      `    def forward(self, arg0_1: "Sym(s72)", ${args}):`,
      ...body,
      `        return (${ret.join(', ')},)`,
    ].join('\n'),
  ).graph;

/** rms_norm of `input` into `out` (bf16 [s72, H]). */
const rmsNorm = (i: number, input: string, out: string, H: number) => [
  empty(`empty${i}`, `bf16[s72, ${H}]`, `[arg0_1, ${H}]`, 'bfloat16'),
  af(i, 'rms_norm', `result = empty${i}, input = ${input}, weight = weight, epsilon = 1e-05`),
  `        ${out}: "bf16[s72, ${H}]" = af${i}[1]`,
];
const staticQuant = (i: number, input: string, H: number) => [
  empty(`empty${i}`, `f8e4m3fn[s72, ${H}]`, `[arg0_1, ${H}]`, 'float8_e4m3fn'),
  af(i, 'static_scaled_fp8_quant', `result = empty${i}, input = ${input}, scale = scale`),
  `        q: "f8e4m3fn[s72, ${H}]" = af${i}[1]`,
];
/** A quant that writes values and scales into `empty_q` / `empty_s`: (dtype, torch dtype, columns) of each. */
const quantWithScales = (
  op: string,
  args: string,
  [qt, qd, qc]: [string, string, number],
  [st, sd, sc]: [string, string, number],
) => [
  empty('empty_q', `${qt}[s72, ${qc}]`, `[arg0_1, ${qc}]`, qd),
  empty('empty_s', `${st}[s72, ${sc}]`, `[arg0_1, ${sc}]`, sd),
  af(1, op, args),
  `        q: "${qt}[s72, ${qc}]" = af1[1]`,
  `        s: "${st}[s72, ${sc}]" = af1[2]`,
];
const siluAndMul = (I: number) => [
  empty('empty0', `bf16[s72, ${I}]`, `[arg0_1, ${I}]`, 'bfloat16'),
  af(0, 'silu_and_mul', 'result = empty0, input = x'),
  `        act: "bf16[s72, ${I}]" = af0[1]`,
];

const bf16 = (shape: number[], scale = 1, offset = 0): InputSpec => ({ dtype: 'bf16', shape, scale, offset });
const f32 = (value: number): InputSpec => ({ dtype: 'f32', shape: [1], scale: 0, offset: value });
/** γ near 1, as trained norms are. */
const gamma = (n: number) => bf16([n], 0.25, 1);

/** rms_norm → a quant whose scales it computes (FP8 values, `scaleCols` f32 scales per token). */
const normDynamicQuant = (H: number, op: string, args: string, scaleCols: number) =>
  module(
    `x: "bf16[s72, ${H}]", weight: "bf16[${H}]"`,
    [
      ...rmsNorm(0, 'x', 'normed', H),
      ...quantWithScales(op, args, ['f8e4m3fn', 'float8_e4m3fn', H], ['f32', 'float32', scaleCols]),
    ],
    ['q', 's'],
  );
const normInputs = ({ hidden: H }: FusionSizes, T: number) => ({ x: bf16([T, H]), weight: gamma(H) });

export const FUSIONS: Record<FusionName, FusionCase> = {
  'rmsnorm+fp8 static': {
    name: 'rmsnorm+fp8 static',
    passes: ['norm-quant'],
    passOptions: {},
    graph: ({ hidden: H }) =>
      module(
        `x: "bf16[s72, ${H}]", weight: "bf16[${H}]", scale: "f32[1]"`,
        [...rmsNorm(0, 'x', 'normed', H), ...staticQuant(1, 'normed', H)],
        ['q'],
      ),
    // The scale puts the normed rows (|·| up to about 4.5 with this γ) well inside ±448.
    inputs: ({ hidden: H }, T) => ({ x: bf16([T, H]), weight: gamma(H), scale: f32(1 / 64) }),
    outputs: ['q'],
    bytes: ({ hidden: H }, T) => T * (2 * H + H) + 2 * H + 4,
  },
  'fused_add_rmsnorm+fp8 static': {
    name: 'fused_add_rmsnorm+fp8 static',
    passes: ['norm-quant'],
    passOptions: {},
    graph: ({ hidden: H }) =>
      module(
        `x: "bf16[s72, ${H}]", residual: "bf16[s72, ${H}]", weight: "bf16[${H}]", scale: "f32[1]"`,
        [
          af(0, 'fused_add_rms_norm', 'input = x, residual = residual, weight = weight, epsilon = 1e-05'),
          `        normed: "bf16[s72, ${H}]" = af0[1]`,
          `        residual_out: "bf16[s72, ${H}]" = af0[2]`,
          ...staticQuant(1, 'normed', H),
        ],
        ['q', 'residual_out'],
      ),
    inputs: ({ hidden: H }, T) => ({
      x: bf16([T, H]),
      residual: bf16([T, H]),
      weight: gamma(H),
      scale: f32(1 / 64),
    }),
    outputs: ['q', 'residual_out'],
    bytes: ({ hidden: H }, T) => T * (2 * 2 * H + H + 2 * H) + 2 * H + 4,
  },
  'rmsnorm+fp8 dynamic per-token': {
    name: 'rmsnorm+fp8 dynamic per-token',
    passes: ['norm-quant'],
    passOptions: {},
    graph: ({ hidden: H }) =>
      normDynamicQuant(
        H,
        'dynamic_per_token_scaled_fp8_quant',
        'result = empty_q, input = normed, scale = empty_s, scale_ub = None',
        1,
      ),
    inputs: normInputs,
    outputs: ['q', 's'],
    bytes: ({ hidden: H }, T) => T * (2 * H + H + 4) + 2 * H,
  },
  'rmsnorm+fp8 per-token-group 128': {
    name: 'rmsnorm+fp8 per-token-group 128',
    passes: ['norm-quant'],
    passOptions: {},
    graph: ({ hidden: H }) =>
      normDynamicQuant(
        H,
        'per_token_group_fp8_quant',
        'input = normed, output_q = empty_q, output_s = empty_s, group_size = 128, eps = 1e-10, fp8_min = -448.0, fp8_max = 448.0, scale_ue8m0 = False, dummy_is_scale_transposed = False, dummy_is_tma_aligned = False',
        H / 128,
      ),
    inputs: normInputs,
    outputs: ['q', 's'],
    bytes: ({ hidden: H }, T) => T * (2 * H + H + (4 * H) / 128) + 2 * H,
  },
  'silu_and_mul+fp8 static': {
    name: 'silu_and_mul+fp8 static',
    passes: ['act-quant'],
    passOptions: {},
    graph: ({ intermediate: I }) =>
      module(
        `x: "bf16[s72, ${2 * I}]", scale: "f32[1]"`,
        [...siluAndMul(I), ...staticQuant(1, 'act', I)],
        ['q'],
      ),
    // silu(a)·b of inputs in ±4 stays under 16: the scale keeps it inside ±448.
    inputs: ({ intermediate: I }, T) => ({ x: bf16([T, 2 * I], 4), scale: f32(1 / 16) }),
    outputs: ['q'],
    bytes: ({ intermediate: I }, T) => T * (2 * 2 * I + I) + 4,
  },
  'silu_and_mul+nvfp4 (emulated)': {
    name: 'silu_and_mul+nvfp4 (emulated)',
    passes: ['act-quant'],
    passOptions: { gpu: 'blackwell' },
    graph: ({ intermediate: I }) =>
      module(
        `x: "bf16[s72, ${2 * I}]", global_scale: "f32[1]"`,
        [
          ...siluAndMul(I),
          ...quantWithScales(
            'scaled_fp4_quant',
            'output = empty_q, input = act, output_scale = empty_s, input_scale = global_scale',
            ['u8', 'uint8', I / 2],
            ['f8e4m3fn', 'float8_e4m3fn', I / 16],
          ),
        ],
        ['q', 's'],
      ),
    // vLLM's global scale: 448 · 6 / amax, the activations' amax about 16 here.
    inputs: ({ intermediate: I }, T) => ({ x: bf16([T, 2 * I], 4), global_scale: f32((448 * 6) / 16) }),
    outputs: ['q', 's'],
    bytes: ({ intermediate: I }, T) => T * (2 * 2 * I + I / 2 + I / 16) + 4,
  },
  'qk-norm+rope': {
    name: 'qk-norm+rope',
    passes: ['noop-elimination', 'qk-norm-rope'],
    passOptions: { worldSize: 1 },
    graph: (s) => qkNormRopeGraph(s),
    inputs: ({ heads, kvHeads, headDim: d, ropeRows }, T) => ({
      qkv: bf16([T, (heads + 2 * kvHeads) * d]),
      q_weight: gamma(d),
      k_weight: gamma(d),
      cos_sin_cache: bf16([ropeRows, d]),
      positions: { dtype: 'i32', shape: [T], range: ropeRows },
    }),
    outputs: ['q_rot', 'k_rot', 'v'],
    // q and k read and written (in place in vLLM's kernel), each token's position and cache row.
    bytes: ({ heads, kvHeads, headDim: d }, T) => T * (2 * 2 * (heads + kvHeads) * d + 8 + 2 * d) + 2 * 2 * d,
  },
};

/** Split qkv → per-head rms_norm of q and k → rotary_embedding (neox), as Qwen3 runs it in vLLM. */
function qkNormRopeGraph({ heads, kvHeads, headDim: d, ropeRows }: FusionSizes): Graph {
  const [Q, K] = [heads * d, kvHeads * d];
  const norm = (i: number, input: string, n: number, w: string, out: string) => [
    `        view${i}: "bf16[s72, ${n}, ${d}]" = torch.ops.aten.reshape.default(${input}, [arg0_1, ${n}, ${d}])`,
    empty(`empty${i}`, `bf16[s72, ${n}, ${d}]`, `[arg0_1, ${n}, ${d}]`, 'bfloat16'),
    af(i, 'rms_norm', `result = empty${i}, input = view${i}, weight = ${w}, epsilon = 1e-06`),
    `        normed${i}: "bf16[s72, ${n}, ${d}]" = af${i}[1]`,
    `        ${out}: "bf16[s72, ${n * d}]" = torch.ops.aten.reshape.default(normed${i}, [arg0_1, ${n * d}])`,
  ];
  return module(
    `qkv: "bf16[s72, ${Q + 2 * K}]", q_weight: "bf16[${d}]", k_weight: "bf16[${d}]", cos_sin_cache: "bf16[${ropeRows}, ${d}]", positions: "i64[s72]"`,
    [
      `        split = torch.ops.aten.split_with_sizes.default(qkv, [${Q}, ${K}, ${K}], -1)`,
      `        q: "bf16[s72, ${Q}]" = split[0]`,
      `        k: "bf16[s72, ${K}]" = split[1]`,
      `        v: "bf16[s72, ${K}]" = split[2]`,
      ...norm(1, 'q', heads, 'q_weight', 'qn'),
      ...norm(2, 'k', kvHeads, 'k_weight', 'kn'),
      af(
        3,
        'rotary_embedding',
        `positions = positions, query = qn, key = kn, head_size = ${d}, cos_sin_cache = cos_sin_cache, is_neox = True`,
      ),
      `        q_rot: "bf16[s72, ${Q}]" = af3[1]`,
      `        k_rot: "bf16[s72, ${K}]" = af3[2]`,
    ],
    ['q_rot', 'k_rot', 'v'],
  );
}

/** Host values of a case's inputs at T tokens (seeded: the same for every run and both sides). */
export function fusionInputs(c: FusionCase, s: FusionSizes, T: number, seed = 7): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, spec] of Object.entries(c.inputs(s, T))) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const stream = fnv1a32(`${c.name}.${name}`);
    const rule = { ...seedRule('activation', spec.shape), scale: spec.scale ?? 1, offset: spec.offset ?? 0 };
    const values =
      spec.range !== undefined
        ? seededArray(seed, stream, n, rule, 'i32', spec.range)
        : seededArray(seed, stream, n, rule, spec.dtype === 'i32' ? 'f32' : spec.dtype);
    out.set(name, toHostTensor(spec.dtype, spec.shape, values));
  }
  return out;
}
