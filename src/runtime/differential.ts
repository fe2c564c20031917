// The differential check across backends: seeded random graphs over every kernel and every
// elementwise op of the op table (src/graph/opTable.ts), planned once and run on each backend;
// every output is compared with the CPU reference under the contract of the kernel that wrote it
// (bitwise where the op's rounding is specified, else within its stated ulps).
//
// A graph's inexact kernels (GEMM, norms, sums) read only values that are exact on every
// backend (inputs, views, exact kernels), so each output is held to its own kernel's contract
// rather than to an accumulation of its producers'.

import type { Arg, Graph } from '../graph/ir.ts';
import { GraphBuilder } from '../graph/build.ts';
import {
  ELEMENTWISE_OPS,
  KERNELS,
  type ElementwiseOpDef,
  type KernelName,
  type Rounding,
} from '../graph/opTable.ts';
import type { Backend, RunOptions, RunResult } from './backend.ts';
import { buildPlan, type Plan } from './plan.ts';
import { compareTensor, type OutputComparison } from './compareOutputs.ts';
import { hostValues, type HostTensor } from './hostTensor.ts';
import { prng } from '../graph/mutants.ts';

export interface DifferentialCase {
  seed: number;
  dtype: 'bf16' | 'f32';
  ranks: number;
  allreduce: RunOptions['allreduce'];
  /** The symbolic token dim's value. */
  tokens: number;
  /** Columns of every norm (else small random ones): GPT-OSS-wide rows sum thousands of squares. */
  normCols?: number;
}

/** Which kernel wrote each output, so it is held to that kernel's rounding contract. */
export interface GeneratedGraph {
  graph: Graph;
  producers: Map<string, KernelName>;
}

/** Sizes that avoid the tiny preset's mapped dims (40, 48, 97 come from 2880, 3072, the vocabulary). */
const COLS = [3, 5, 8, 12, 17, 24, 31, 36];

class Gen {
  readonly b = new GraphBuilder('differential', 'module');
  readonly producers = new Map<string, KernelName>();
  readonly outputs: Arg[] = [];
  private k = 0;
  constructor(
    readonly rand: () => number,
    readonly dt: 'bf16' | 'f32',
    readonly ranks: number,
    readonly wideNorm?: number,
  ) {}
  /** Columns of a norm: even, so the vectorized kernels' pairs split it. */
  normCols() {
    return this.wideNorm ?? this.pick(COLS) * 2;
  }
  int(lo: number, hi: number) {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)];
  }
  /** A float with few mantissa bits (so the scalar is the same in f32 and f64), sometimes negative. */
  scalar() {
    return ((this.rand() < 0.3 ? -1 : 1) * this.int(1, 40)) / 8;
  }
  name(p: string) {
    return `${p}_${this.k++}`;
  }
  type(shape: (number | string)[], dtype: string = this.dt) {
    return `${dtype}[${shape.join(', ')}]`;
  }
  input(shape: (number | string)[], dtype: string = this.dt) {
    return this.b.input(this.name('in'), this.type(shape, dtype));
  }
  node(p: string, op: string, args: Arg[], kwargs: Record<string, Arg>, type: string | null) {
    return this.b.node(this.name(p), op, args, kwargs, type);
  }
  out(a: Arg, kernel: KernelName) {
    this.outputs.push(a);
    if (a && typeof a === 'object' && !Array.isArray(a) && a.kind === 'ref')
      this.producers.set(a.name, kernel);
  }
  /** A per-rank exact value [T, cols]: rows of a per-rank embedding table (weights differ by rank). */
  perRank(cols: number) {
    const vocab = this.int(5, 13);
    const table = this.input([vocab, cols]);
    const ids = this.input(['s0'], 'i64');
    return this.node('embedding', 'aten.embedding.default', [table, ids], {}, this.type(['s0', cols]));
  }
}

const AF = 'higher_order.auto_functionalized';
const opRef = (target: string): Arg => ({ kind: 'op', target }) as unknown as Arg;

/** One generator per kernel of the table: adding a kernel without one is a type error. */
const KERNEL_CASES: Record<KernelName, (g: Gen) => void> = {
  seed: (g) => {
    const x = g.input(['s0', g.pick(COLS)]);
    g.node('copy', 'aten.clone.default', [x], {}, null);
    g.out(x, 'seed');
  },
  copy: (g) => {
    const c = g.pick(COLS) + 4;
    const x = g.input(['s0', c]);
    const start = g.int(0, 2),
      step = g.int(1, 3),
      end = g.int(start + 1, c);
    const s = g.node('slice', 'aten.slice.Tensor', [x, 1, start, end, step], {}, null);
    g.out(g.node('clone', 'aten.clone.default', [s], {}, null), 'copy');
  },
  pad: (g) => {
    const c = g.pick(COLS);
    const x = g.input(['s0', c]);
    const lo = g.int(0, 3),
      hi = g.int(0, 5),
      top = g.int(0, 2);
    g.out(g.node('pad', 'aten.constant_pad_nd.default', [x, [lo, hi, top, 0], g.scalar()], {}, null), 'pad');
  },
  add: (g) => {
    const c = g.pick(COLS);
    const x = g.input(['s0', c]);
    const y = g.rand() < 0.5 ? g.input(['s0', c]) : g.input([c]);
    g.out(g.node('add', 'aten.add.Tensor', [x, y], g.rand() < 0.5 ? { alpha: g.scalar() } : {}, null), 'add');
  },
  map: (g) => {
    // Every elementwise op of the table, in every operand form it has.
    for (const [op, def] of Object.entries(ELEMENTWISE_OPS) as [string, ElementwiseOpDef][]) {
      const c = g.pick(COLS);
      const x = g.input(['s0', c]);
      const mask = () =>
        g.node('mask', 'aten.ge.Scalar', [g.input(g.rand() < 0.5 ? ['s0', c] : [c]), 0], {}, null);
      if (def.unary) g.out(g.node('map', op, [mask()], {}, null), 'map');
      if (def.number)
        g.out(g.node('map', op, [x, def.number.size ? g.int(-1, 1) : g.scalar()], {}, null), 'map');
      if (def.tensor && def.tensor.fn !== 'add') {
        const other =
          def.tensor.fn === 'masked_fill' || def.tensor.fn === 'and'
            ? mask()
            : g.input(g.rand() < 0.5 ? ['s0', c] : [c]);
        const args: Arg[] = [def.tensor.fn === 'and' ? mask() : x, other];
        if (def.tensor.scalarArg !== undefined) args.push(g.scalar());
        g.out(g.node('map', op, args, {}, null), 'map');
      }
    }
  },
  gemm: (g) => {
    const k = g.pick(COLS),
      n = g.pick(COLS);
    const x = g.input(['s0', k]);
    const w = g.input([n, k]);
    const wt = g.node('t', 'aten.t.default', [w], {}, null);
    if (g.rand() < 0.5) g.out(g.node('mm', 'aten.mm.default', [x, wt], {}, null), 'gemm');
    else g.out(g.node('addmm', 'aten.addmm.default', [g.input([n]), x, wt], {}, null), 'gemm');
  },
  embedding: (g) => g.out(g.perRank(g.pick(COLS)), 'embedding'),
  rms_norm: (g) => {
    const c = g.normCols();
    const x = g.input(['s0', c]);
    const res = g.node('empty', 'aten.empty_like.default', [x], {}, null);
    const af = g.node(
      'rms',
      AF,
      [opRef('_C.rms_norm.default')],
      { result: res, input: x, weight: g.input([c]), epsilon: 1e-6 },
      null,
    );
    g.out(g.node('item', 'getitem', [af, 1], {}, null), 'rms_norm');
  },
  fused_add_rms_norm: (g) => {
    const c = g.normCols();
    const af = g.node(
      'add_rms',
      AF,
      [opRef('_C.fused_add_rms_norm.default')],
      { input: g.input(['s0', c]), residual: g.input(['s0', c]), weight: g.input([c]), epsilon: 1e-5 },
      null,
    );
    g.out(g.node('item', 'getitem', [af, 1], {}, null), 'fused_add_rms_norm');
    g.out(g.node('item', 'getitem', [af, 2], {}, null), 'fused_add_rms_norm');
  },
  all_reduce: (g) => {
    const x = g.perRank(g.pick(COLS));
    g.out(g.node('all_reduce', 'vllm.all_reduce.default', [x, 'tp:0'], {}, null), 'all_reduce');
  },
  fused_allreduce_norm: (g) => {
    const c = g.normCols();
    const af = g.node(
      'ar_norm',
      AF,
      [opRef('vllm.flashinfer_trtllm_fused_allreduce_norm.default')],
      {
        allreduce_in: g.perRank(c),
        residual: g.input(['s0', c]),
        norm_out: null,
        quant_out: null,
        scale_out: null,
        rms_gamma: g.input([c]),
        rms_eps: 1e-6,
        pattern_code: 1,
        world_rank: 0,
        world_size: g.ranks,
        launch_with_pdl: true,
        trigger_completion_at_end: true,
        fp32_acc: true,
        max_token_num: 1024,
      },
      null,
    );
    g.out(g.node('item', 'getitem', [af, 1], {}, null), 'fused_allreduce_norm');
    g.out(g.node('item', 'getitem', [af, 2], {}, null), 'fused_allreduce_norm');
  },
  // Not generated: every graph here also runs on the agent, whose native worker has no FP8 kernel
  // and refuses it by node. The CPU and WGSL quantizers are checked bit-exactly against an
  // independent reference on every bf16 value (src/wgsl/fp8Quant.test.ts), and run through the
  // planner before and after the fusion (src/runtime/fp8QuantRun.test.ts).
  fp8_quant: () => undefined,
  // Sequence parallelism's pair, over a concrete token count every rank count splits.
  reduce_scatter: (g) => {
    const c = g.pick(COLS),
      m = g.ranks * g.int(1, 3);
    const x = g.node(
      'embedding',
      'aten.embedding.default',
      [g.input([g.int(5, 13), c]), g.input([m], 'i64')],
      {},
      g.type([m, c]),
    );
    g.out(
      g.node(
        'reduce_scatter',
        'vllm.reduce_scatter.default',
        [x],
        { dim: 0, world_size: g.ranks, group_name: 'tp:0' },
        g.type([m / g.ranks, c]),
      ),
      'reduce_scatter',
    );
  },
  all_gather: (g) => {
    const c = g.pick(COLS),
      m = g.int(1, 3);
    const x = g.node(
      'embedding',
      'aten.embedding.default',
      [g.input([g.int(5, 13), c]), g.input([m], 'i64')],
      {},
      g.type([m, c]),
    );
    g.out(
      g.node(
        'all_gather',
        'vllm.all_gather.default',
        [x],
        { dim: 0, world_size: g.ranks, group_name: 'tp:0' },
        g.type([m * g.ranks, c]),
      ),
      'all_gather',
    );
  },
  // Functionalization's write-back: a strided range of columns replaced.
  scatter: (g) => {
    const c = g.pick(COLS) + 6,
      start = g.int(0, 2),
      step = g.int(1, 2);
    const len = Math.ceil((c - start) / step);
    const base = g.input(['s0', c]),
      src = g.input(['s0', len]);
    g.out(
      g.node('scatter', 'aten.slice_scatter.default', [base, src, 1, start, c, step], {}, null),
      'scatter',
    );
  },
  rotary: (g) => {
    const hs = 2 * g.int(1, 4),
      heads = g.int(1, 3),
      rot = 2 * g.int(1, hs / 2);
    const af = g.node(
      'rope',
      AF,
      [opRef('_C.rotary_embedding.default')],
      {
        positions: g.input(['s0'], 'i64'),
        query: g.input(['s0', heads * hs]),
        key: g.input(['s0', hs]),
        head_size: hs,
        cos_sin_cache: g.input([16, rot]),
        is_neox: g.rand() < 0.5,
      },
      null,
    );
    g.out(g.node('item', 'getitem', [af, 1], {}, null), 'rotary');
    g.out(g.node('item', 'getitem', [af, 2], {}, null), 'rotary');
  },
  attention: (g) => {
    const kv = g.int(1, 2),
      heads = kv * g.int(1, 2),
      d = g.pick([4, 8]);
    const q = g.input(['s0', heads, d]);
    const af = g.node(
      'attn',
      AF,
      [opRef('vllm.unified_attention_with_output.default')],
      {
        query: q,
        key: g.input(['s0', kv, d]),
        value: g.input(['s0', kv, d]),
        output: g.node('empty', 'aten.empty_like.default', [q], {}, null),
        layer_name: g.name('layer'),
        output_scale: null,
        output_block_scale: null,
      },
      null,
    );
    g.out(g.node('item', 'getitem', [af, 1], {}, null), 'attention');
  },
  moe: (g) => {
    // hidden 3072 and 32 experts: the tiny preset maps them to 48 columns, 32 experts top-4.
    const x = g.input(['s0', 3072]);
    const logits = g.input(['s0', 32], 'f32');
    g.out(
      g.node('moe', 'vllm.moe_forward.default', [x, logits, g.name('layer')], {}, g.type(['s0', 3072])),
      'moe',
    );
  },
};

/** A seeded random graph with at least one node per kernel and per elementwise op form. */
export function randomGraph(
  c: DifferentialCase,
  covers: (k: KernelName) => boolean = () => true,
): GeneratedGraph {
  const g = new Gen(prng(c.seed), c.dtype, c.ranks, c.normCols);
  const kernels = (Object.keys(KERNEL_CASES) as KernelName[]).filter(covers);
  // Every kernel once, then a few more picked at random, in a shuffled order.
  const order = [...kernels, ...Array.from({ length: 4 }, () => g.pick(kernels))].sort(() => g.rand() - 0.5);
  for (const k of order) KERNEL_CASES[k](g);
  g.b.output(...g.outputs);
  return { graph: g.b.build(), producers: g.producers };
}

/** The ulps an output may differ by under a rounding contract (0: bitwise). */
export function allowedUlps(r: Rounding, dtype: 'bf16' | 'f32'): number {
  return r === 'exact' ? 0 : r.ulps[dtype];
}

export interface BackendUnderTest {
  name: string;
  backend: Backend;
  options?: Partial<RunOptions>;
}

export interface DifferentialResult {
  case: DifferentialCase;
  plan: Plan;
  /** Per backend: every output of every rank against the CPU reference. */
  comparisons: Map<string, OutputComparison[]>;
  /** Kernel → steps of the plan, to show what was covered. */
  kernelCounts: Map<KernelName, number>;
}

/** Plans the case's graph once and runs it on the reference and on each backend. */
export async function runDifferentialCase(
  c: DifferentialCase,
  reference: Backend,
  backends: BackendUnderTest[],
): Promise<DifferentialResult> {
  // The agent runs the kernels its worker has ops for (KERNELS[k].worker); a sweep with it covers those.
  const agent = backends.some((b) => b.backend.name === 'agent');
  const { graph, producers } = randomGraph(c, agent ? (k) => KERNELS[k].worker.length > 0 : undefined);
  const plan = buildPlan(graph, { preset: 'tiny', dtype: c.dtype, ranks: c.ranks, tokens: c.tokens });
  const kernelCounts = new Map<KernelName, number>();
  for (const s of plan.steps) kernelCounts.set(s.kernel, (kernelCounts.get(s.kernel) ?? 0) + 1);
  const opts: RunOptions = {
    backend: 'cpu',
    ranks: c.ranks,
    preset: 'tiny',
    dtype: c.dtype,
    allreduce: c.allreduce,
    workers: false,
    seed: c.seed,
    tokens: c.tokens,
  };
  const ref = await reference.run(plan, opts);
  const comparisons = new Map<string, OutputComparison[]>();
  for (const b of backends) {
    const got = await b.backend.run(plan, { ...opts, backend: b.backend.name, ...b.options });
    comparisons.set(
      b.name,
      compareRuns(ref, got, (name) => {
        const kernel = producers.get(name.replace(/\[\d+\]$/, '')) ?? 'seed';
        return {
          ulps: allowedUlps(KERNELS[kernel].rounding, c.dtype),
          why: `${kernel}: ${describeRounding(KERNELS[kernel].rounding, c.dtype)}`,
        };
      }),
    );
  }
  return { case: c, plan, comparisons, kernelCounts };
}

function describeRounding(r: Rounding, dtype: 'bf16' | 'f32'): string {
  return r === 'exact' ? 'rounding specified' : `f32 accumulation order free, ≤ ${r.ulps[dtype]} ulps`;
}

function compareRuns(
  ref: RunResult,
  got: RunResult,
  contract: (output: string) => { ulps: number; why: string },
): OutputComparison[] {
  const out: OutputComparison[] = [];
  for (let r = 0; r < ref.outputs.length; r++) {
    for (const [name, want] of ref.outputs[r]) {
      const have = got.outputs[r]?.get(name);
      const { ulps, why } = contract(name);
      if (!have) {
        out.push({
          name: `rank ${r}: ${name}`,
          maxAbs: Infinity,
          maxRel: Infinity,
          bitwiseEqual: false,
          ulps: Infinity,
          tolerance: 'the output is missing',
          pass: false,
          fedFrom: [],
          proven: false,
        });
        continue;
      }
      out.push(
        ulps === 0
          ? compareTensor(`rank ${r}: ${name}`, want, have, 0, why)
          : compareScaled(`rank ${r}: ${name}`, want, have, ulps, why),
      );
    }
  }
  return out;
}

/** The ulp of the dtype at magnitude x (x > 0). */
function ulpAt(dtype: HostTensor['dtype'], x: number): number {
  const e = Math.floor(Math.log2(x));
  return 2 ** (e - (dtype === 'bf16' ? 7 : dtype === 'f16' ? 10 : 23));
}

/** Distance in ulps at the tensor's scale: max |a − b| over the ulp at max |a|. */
export function compareScaled(
  name: string,
  want: HostTensor,
  have: HostTensor,
  allowed: number,
  why: string,
): OutputComparison {
  const c = compareTensor(name, want, have, Infinity, why);
  if (want.shape.join() !== have.shape.join())
    return { ...c, tolerance: `shapes differ: [${want.shape}] vs [${have.shape}]`, pass: false };
  const x = hostValues(want);
  let scale = 0;
  for (const v of x) scale = Math.max(scale, Math.abs(v));
  const ulps = c.maxAbs === 0 ? 0 : scale === 0 ? Infinity : c.maxAbs / ulpAt(want.dtype, scale);
  return {
    ...c,
    ulps,
    tolerance: `≤ ${allowed} ${want.dtype} ulps at the output's scale (${why})`,
    pass: ulps <= allowed,
  };
}

/** The cases of one sweep: dtypes, 1–`maxRanks` ranks and the three all-reduce algorithms, from one seed. */
export function differentialCases(seed: number, count: number, maxRanks = 4): DifferentialCase[] {
  const algos: RunOptions['allreduce'][] = ['ring', 'one-shot', 'two-shot'];
  return Array.from({ length: count }, (_, i) => ({
    seed: (seed + i * 0x9e3779b1) >>> 0,
    dtype: i % 2 === 0 ? 'bf16' : 'f32',
    ranks: 1 + (i % maxRanks),
    allreduce: algos[i % 3],
    tokens: [5, 7, 3, 9][(i >> 1) % 4],
  }));
}

/** One line per backend: cases, outputs compared, bitwise, failures (the first few named). */
export function summarize(results: DifferentialResult[]): { lines: string[]; failures: string[] } {
  const byBackend = new Map<string, { outputs: number; bitwise: number; failed: string[] }>();
  for (const r of results) {
    for (const [name, cs] of r.comparisons) {
      const s = byBackend.get(name) ?? { outputs: 0, bitwise: 0, failed: [] };
      for (const c of cs) {
        s.outputs++;
        if (c.bitwiseEqual) s.bitwise++;
        if (!c.pass)
          s.failed.push(
            `seed ${r.case.seed} (${r.case.dtype}, ${r.case.ranks} ranks, ${r.case.allreduce}) ${c.name}: ${c.ulps} ulps, allowed ${c.tolerance}`,
          );
      }
      byBackend.set(name, s);
    }
  }
  // The largest distance seen per kernel (ulps at scale for inexact kernels), to set contracts from.
  const worst = new Map<string, number>();
  for (const r of results)
    for (const [, cs] of r.comparisons)
      for (const c of cs) {
        const k = `${c.tolerance.match(/\((\w+):/)?.[1] ?? '?'} ${r.case.dtype}`;
        worst.set(k, Math.max(worst.get(k) ?? 0, c.ulps));
      }
  const kernels = new Map<string, number>();
  for (const r of results) for (const [k, n] of r.kernelCounts) kernels.set(k, (kernels.get(k) ?? 0) + n);
  const lines = [
    `differential: ${results.length} graphs, seeds ${results.map((r) => r.case.seed).join(', ')}`,
    `kernel steps: ${[...kernels].map(([k, n]) => `${k} ${n}`).join(', ')}`,
    `largest distance per kernel (ulps): ${[...worst].map(([k, u]) => `${k} ${+u.toFixed(2)}`).join(', ')}`,
    ...[...byBackend].map(
      ([name, s]) =>
        `${name}: ${s.outputs} outputs against the CPU reference, ${s.bitwise} bitwise, ${s.failed.length} outside their contract`,
    ),
  ];
  return { lines, failures: [...byBackend.values()].flatMap((s) => s.failed) };
}
