// `fusionlab bench fusions [--quick] [--json FILE] [--check FILE] [--torch FILE]`
// `fusionlab bench fusions --bundle` writes dist-bench/fusions.mjs (every dependency inlined but
// Dawn), for a GPU host that has Node and Dawn but no node_modules; `--table OURS TORCH` prints the
// table of an earlier GPU run's two JSON files here.
//
// Each vLLM fusion fusionlab executes (bench/fusionCases.ts), at Llama-3.1-8B sizes and T = 1, 16,
// 256, 4096: the fused op as fusionlab runs it (the graph after its pass) and the unfused pair (the
// graph before), each timed as the kernels suite times a row (bench/kernels.ts: kernel time from
// timestamps around each call's passes, and back to back, N calls in one submit ÷ N), beside the
// copy ceiling measured in the same run. `--torch FILE` sets bench/torch_fusions.py's timings of the
// same pairs in torch ops beside them: torch.compile (Inductor fuses each pair itself; best of its
// compiles) and eager, CUPTI kernel time over CUDA-graph replays and replay time ÷ calls.
// Correctness: every output of the fused op on WebGPU against the CPU reference on the same inputs
// (bitwise: both run the same kernels' rounding); `--check FILE` also writes those inputs and
// outputs at T = 16 for torch_fusions.py to compare its own against.

import { readFileSync, writeFileSync } from 'node:fs';
import { runPipeline } from '../src/graph/passes/pipeline.ts';
import { nodeGpu } from '../src/runtime/nodeGpu.ts';
import { openRanks, type RankDevice } from '../src/runtime/webgpu/rankDevice.ts';
import { encodeStep } from '../src/runtime/webgpu/encoders.ts';
import { buildPlan, type Plan } from '../src/runtime/plan.ts';
import { runGraph, type RunOptions } from '../src/runtime/index.ts';
import { TINY_RUN } from '../src/runtime/backend.ts';
import { hostValues, type HostTensor } from '../src/runtime/hostTensor.ts';
import { bufferBytes } from '../src/wgsl/dtype.ts';
import { flagValue } from './args.ts';
import { bundleSuite } from './bundle.ts';
import { launchesFor, timeCopy, timeKernel, timeLaunches, warmClocks, warmUpLine } from './kernels.ts';
import {
  FUSION_NAMES,
  FUSIONS,
  LLAMA_8B,
  QUICK_SIZES,
  fusionInputs,
  type FusionCase,
  type FusionName,
  type FusionSizes,
} from './fusionCases.ts';

/** One side's time of one fusion at one T: kernel µs and back-to-back µs per call, and its launches. */
interface Timed {
  us: number;
  b2b_us: number;
  /** Kernels per call (compute passes, inputs' seeding excluded). */
  kernels: number;
}

export interface FusionResult {
  fusion: FusionName;
  T: number;
  /** Bytes a fused kernel moves per call (fusionCases.ts). */
  bytes: number;
  fused: Timed;
  pair: Timed;
  torch?: TorchFusion;
}

/** One row of bench/torch_fusions.py's output. */
interface TorchTiming {
  fusion: string;
  T: number;
  us: number;
  graph_us: number;
  compile: string;
  kernels?: number;
}

/** The baseline beside one of our rows: the compiled pair's best kernel and graph times over its compiles, and eager. */
interface TorchFusion {
  compiled?: { kernel: TorchTiming; graph: TorchTiming };
  eager?: TorchTiming;
}

/** How two runs' outputs compare, per output: elements that differ and the largest |Δ|. */
interface OutputDiff {
  differ: number;
  n: number;
  maxAbs: number;
}

export interface FusionCheck {
  fusion: FusionName;
  T: number;
  /** The fused op on WebGPU against the CPU reference (the same kernels' rounding: 0 differ expected). */
  vsCpu: OutputDiff[];
  /** The fused op against the unfused pair, both on WebGPU: the fusion's own claim, before ≡ after. */
  vsPair: OutputDiff[];
}

function diffOutputs(a: HostTensor[], b: HostTensor[]): OutputDiff[] {
  return a.map((t, i) => {
    const [x, y] = [hostValues(t), hostValues(b[i]!)];
    let differ = 0,
      maxAbs = 0;
    x.forEach((v, j) => {
      const d = Math.abs(v - y[j]!);
      if (d > 0 || Number.isNaN(d)) differ++;
      maxAbs = Math.max(maxAbs, d);
    });
    return { differ, n: x.length, maxAbs };
  });
}

const TS = [1, 16, 256, 4096];
const QUICK_TS = [1, 5];
const CHECK_T = 16;

/** One rank at the graph's own sizes ('layer' maps no dim), T tokens. */
const runOpts = (T: number, o: Partial<RunOptions>): RunOptions => ({
  ...TINY_RUN,
  backend: 'cpu',
  ranks: 1,
  preset: 'layer',
  tokens: T,
  ...o,
});

/** The graphs before and after the case's pass; the pass must fuse exactly one site. */
function graphsOf(c: FusionCase, s: FusionSizes) {
  const before = c.graph(s);
  const r = runPipeline(before, c.passes, c.passOptions);
  const fused = r.stages[r.stages.length - 1]!.matches.length;
  if (fused !== 1)
    throw new Error(`bench fusions: ${c.name}: ${c.passes.join(' → ')} fused ${fused} sites, not 1`);
  return { before, after: r.output };
}

/**
 * Kernel and back-to-back time of a plan's compute steps on `dev`: every storage allocated and the
 * inputs seeded on the device first (not timed), then the steps as the executor encodes them.
 */
async function timePlan(dev: RankDevice, plan: Plan, iters: number, quick: boolean): Promise<Timed> {
  for (const st of plan.storages.values()) dev.alloc(st.id, bufferBytes(st.dtype, st.numel));
  const seeds = plan.steps.filter((s) => s.kernel === 'seed');
  const compute = plan.steps.filter((s) => s.kernel !== 'seed');
  for (const s of seeds) encodeStep(s, dev, plan, 7);
  await dev.sync();
  const encode = () => {
    for (const s of compute) encodeStep(s, dev, plan, 7);
  };
  const us = await timeKernel(dev, iters, encode);
  const b2b_us = await timeLaunches(dev, quick ? 3 : launchesFor(us), quick ? 2 : 5, encode);
  dev.endRun();
  return { us, b2b_us, kernels: compute.length };
}

/** The copy ceiling of this run: the best vec4 copy (read + write) at a few sizes, GB/s. */
async function copyCeiling(dev: RankDevice, iters: number, quick: boolean): Promise<number> {
  const limit = Math.min(dev.device.limits.maxStorageBufferBindingSize, dev.device.limits.maxBufferSize);
  let best = 0;
  for (const mib of quick ? [4] : [256, 1024]) {
    const bytes = Math.min(mib * 2 ** 20, Math.floor(limit / 16) * 16);
    const us = await timeCopy(dev, iters, bytes);
    best = Math.max(best, (2 * bytes) / us / 1e3);
  }
  return best;
}

/**
 * The fused op on WebGPU against the CPU reference and against the unfused pair on WebGPU, on the
 * same host inputs; the inputs and the fused op's outputs are kept for torch_fusions.py.
 */
async function checkFused(
  gpu: GPU,
  c: FusionCase,
  s: FusionSizes,
  T: number,
): Promise<{ check: FusionCheck; inputs: Map<string, HostTensor>; outputs: HostTensor[] }> {
  const { before, after } = graphsOf(c, s);
  const inputs = fusionInputs(c, s, T);
  const outputsOf = async (g: typeof after, o: Partial<RunOptions>) => [
    ...(await runGraph(g, runOpts(T, { inputs, ...o }))).outputs[0]!.values(),
  ];
  const cpu = await outputsOf(after, {});
  const web = await outputsOf(after, { backend: 'webgpu', gpu });
  const pair = await outputsOf(before, { backend: 'webgpu', gpu });
  if (web.length !== c.outputs.length)
    throw new Error(`bench fusions: ${c.name}: ${web.length} outputs, expected ${c.outputs.join(', ')}`);
  return {
    check: { fusion: c.name, T, vsCpu: diffOutputs(web, cpu), vsPair: diffOutputs(web, pair) },
    inputs,
    outputs: web,
  };
}

const tensorJson = (t: HostTensor) => ({ dtype: t.dtype, shape: t.shape, data: Array.from(hostValues(t)) });

export async function bench(argv: string[]): Promise<number> {
  if (argv.includes('--bundle')) return bundleSuite('fusions');
  const table = argv.indexOf('--table');
  if (table >= 0) {
    const ours = JSON.parse(readFileSync(argv[table + 1]!, 'utf8')) as FusionRun;
    process.stdout.write(formatRun(withTorch(ours, argv[table + 2])));
    return 0;
  }
  const quick = argv.includes('--quick');
  const sizes = quick ? QUICK_SIZES : LLAMA_8B;
  const iters = quick ? 3 : 20;
  const gpu = await nodeGpu();
  const [dev] = await openRanks(gpu, 1, { f16: false });
  if (!dev.timestamps) {
    process.stderr.write('fusionlab bench fusions: the adapter has no timestamp-query\n');
    return 2;
  }
  if (!quick) process.stdout.write(`${warmUpLine(await warmClocks(dev))}\n`);
  const ceiling = await copyCeiling(dev, iters, quick);
  const results: FusionResult[] = [];
  for (const name of FUSION_NAMES) {
    const c = FUSIONS[name];
    const { before, after } = graphsOf(c, sizes);
    for (const T of quick ? QUICK_TS : TS) {
      const plan = (g: typeof before) =>
        buildPlan(g, { preset: 'layer', dtype: 'bf16', ranks: 1, tokens: T });
      const fused = await timePlan(dev, plan(after), iters, quick);
      const pair = await timePlan(dev, plan(before), iters, quick);
      results.push({ fusion: name, T, bytes: c.bytes(sizes, T), fused, pair });
    }
  }
  const device = dev.adapterName;
  dev.destroy();
  // Checked after timing: host work between timings leaves the GPU idle (kernels.ts saw later timings slow down).
  const checkT = quick ? QUICK_TS[1]! : CHECK_T;
  const checks: FusionCheck[] = [];
  const dump: Record<string, unknown> = {};
  for (const name of FUSION_NAMES) {
    const r = await checkFused(gpu, FUSIONS[name], sizes, checkT);
    checks.push(r.check);
    dump[name] = {
      inputs: Object.fromEntries([...r.inputs].map(([k, t]) => [k, tensorJson(t)])),
      outputs: r.outputs.map(tensorJson),
    };
  }
  const checkFile = flagValue(argv, '--check');
  if (checkFile) writeFileSync(checkFile, JSON.stringify({ T: checkT, sizes, fusions: dump }));
  const run = withTorch({ device, sizes, ceiling_gbs: ceiling, results, checks }, flagValue(argv, '--torch'));
  process.stdout.write(formatRun(run));
  const jsonFile = flagValue(argv, '--json');
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify(run, null, 1));
  // The fusion's claim is before ≡ after; a kernel's difference from the CPU reference is reported, not fatal.
  return checks.every((c) => c.vsPair.every((d) => d.differ === 0)) ? 0 : 1;
}

export interface FusionRun {
  device: string;
  sizes: FusionSizes;
  ceiling_gbs: number;
  results: FusionResult[];
  checks: FusionCheck[];
  /** torch_fusions.py's header and its output checks, when --torch was given. */
  torchOn?: string;
  torchChecks?: unknown[];
}

/** Sets torch's timings beside ours; the ceiling becomes the better of our copy and torch's copy_. */
function withTorch(run: FusionRun, file: string | undefined): FusionRun {
  if (!file) return run;
  const t = JSON.parse(readFileSync(file, 'utf8')) as {
    torch: string;
    device: string;
    results: TorchTiming[];
    checks?: unknown[];
  };
  const copy = Math.max(
    0,
    ...t.results.filter((x) => x.fusion === 'copy').map((x) => (2 * x.T) / x.us / 1e3),
  );
  const results = run.results.map((r) => {
    const rows = t.results.filter((x) => x.fusion === r.fusion && x.T === r.T);
    const compiled = rows.filter((x) => x.compile.startsWith('torch.compile'));
    const best = (key: 'us' | 'graph_us') => compiled.reduce((a, b) => (b[key] < a[key] ? b : a));
    return {
      ...r,
      torch: {
        compiled: compiled.length ? { kernel: best('us'), graph: best('graph_us') } : undefined,
        eager: rows.find((x) => x.compile === 'eager'),
      },
    };
  });
  return {
    ...run,
    ceiling_gbs: Math.max(run.ceiling_gbs, copy),
    results,
    torchOn: `torch ${t.torch} on ${t.device}; ceiling the better of our vec4 copy ${run.ceiling_gbs.toFixed(0)} GB/s and torch copy_ ${copy.toFixed(0)} GB/s`,
    torchChecks: t.checks,
  };
}

/**
 * The table: µs, % of the ceiling, kernels per call (fused / pair / Inductor / eager), and ours ÷
 * Inductor's (> 1: Inductor's fusion of the pair is faster).
 */
export function formatRun(run: FusionRun): string {
  const pct = (bytes: number, us: number | undefined) =>
    us ? `${((100 * bytes) / us / 1e3 / run.ceiling_gbs).toFixed(1)}` : '-';
  const f = (x: number | undefined, d = 1) => (x === undefined ? '-' : x.toFixed(d));
  const head = [
    'fusion',
    'T',
    'fused kern µs',
    'fused b2b µs',
    'pair kern µs',
    'pair b2b µs',
    'kernels',
    '% fused kern',
    'Inductor kern µs',
    'Inductor graph µs',
    '% Inductor',
    'eager kern µs',
    'fused/Inductor kern',
    'fused b2b/Inductor graph',
  ];
  const lines = [
    `fusions on ${run.device}; ceiling ${run.ceiling_gbs.toFixed(0)} GB/s${run.torchOn ? `; ${run.torchOn}` : ''}`,
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i ? '---:' : '---')).join('|')}|`,
  ];
  for (const r of run.results) {
    const c = r.torch?.compiled;
    lines.push(
      `| ${[
        r.fusion,
        r.T,
        f(r.fused.us),
        f(r.fused.b2b_us),
        f(r.pair.us),
        f(r.pair.b2b_us),
        [r.fused.kernels, r.pair.kernels, c?.kernel.kernels, r.torch?.eager?.kernels]
          .map((k) => k ?? '-')
          .join(' / '),
        pct(r.bytes, r.fused.us),
        f(c?.kernel.us, 2),
        f(c?.graph.graph_us, 2),
        pct(r.bytes, c?.kernel.us),
        f(r.torch?.eager?.us, 2),
        c ? f(r.fused.us / c.kernel.us, 2) : '-',
        c ? f(r.fused.b2b_us / c.graph.graph_us, 2) : '-',
      ].join(' | ')} |`,
    );
  }
  const said = (ds: OutputDiff[]) =>
    ds.every((d) => d.differ === 0)
      ? 'bitwise'
      : ds.map((d) => (d.differ ? `${d.differ}/${d.n} differ, max |Δ| ${d.maxAbs}` : 'bitwise')).join('; ');
  lines.push(
    '',
    'The fused op on WebGPU, every output: against the unfused pair on WebGPU | against the CPU reference',
  );
  for (const c of run.checks) lines.push(`  ${c.fusion} T=${c.T}: ${said(c.vsPair)} | ${said(c.vsCpu)}`);
  for (const c of run.torchChecks ?? []) lines.push(`  torch: ${JSON.stringify(c)}`);
  return `${lines.join('\n')}\n`;
}
