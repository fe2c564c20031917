// `fusionlab bench kernels [--dtype bf16|f32] [--quick] [--variants] [--torch FILE] [--json FILE]
//   [--moe-layout JSON]` (JSON: MoE GEMV layout fields over the default's, for the main MoE suite)
// `fusionlab bench kernels --bundle` writes dist-bench/kernels.mjs: this suite with every
// dependency inlined but Dawn (`webgpu`), for a GPU host that has Node and Dawn but no node_modules.
// `fusionlab bench kernels --dump-logits FILE` writes the MoE's router logits for
// bench/torch_kernels.py --logits, so both sides route the same tokens to the same experts.
// Every row is timed two ways: kernel time (GPU timestamps around each call's passes, each call its
// own submit, median of repeated calls) and back to back (N calls in one submit, timestamps around
// the batch, ÷ N), each as GB/s and as a share of the copy ceiling measured in the same run (the
// better of our vec4 copy and torch's copy_). --torch FILE sets PyTorch's two timings beside them
// (CUPTI kernel time and CUDA-graph replay time, best of its named compiles). --quick uses small
// sizes, so SwiftShader can run it. --variants first times the layouts of the bf16 norm and MoE
// decode kernels side by side (one GPU session picks the defaults). Beside each norm size: a copy
// of the same byte count, since a small copy does not reach the large-copy ceiling either.
//
// Suites: add + RMSNorm ([T, 2880]); fused all-reduce + RMSNorm over 2 gathered rank buffers
// ([2, T, 2880] → [T, 2880], the kernel alone: the host transfer is not in it); the GPT-OSS-20B
// MoE forward (H 3072, 32 experts, top-4, intermediate 2880 at TP 1), counting the expert weights
// it must stream; GEMM (the addmm kernel).
// Each suite is a function in bench/kernelSuites/ over one KernelBench (context.ts); `bench` runs
// them in order; the timing primitives are bench/kernelTiming.ts.

import { writeFileSync } from 'node:fs';
import { nodeGpu } from '../src/runtime/nodeGpu.ts';
import { openRanks, type RankDevice } from '../src/runtime/webgpu/rankDevice.ts';
import type { StorageDType } from '../src/runtime/plan.ts';
import { MOE_GEMV_DEFAULT, type MoeGemvConfig } from '../src/wgsl/moe.ts';
import { flagValue } from './args.ts';
import { bundleSuite } from './bundle.ts';
import { warmClocks, warmUpLine } from './kernelTiming.ts';
import { kernelBench, type KernelBench, type KernelResult, type KernelRig } from './kernelSuites/context.ts';
import { copyCeiling, passFloorSuite } from './kernelSuites/ceilingAndFloor.ts';
import {
  NORM_DEFAULTS,
  normLayoutLabel,
  normLayoutSuite,
  normSuite,
  normVariants,
  type NormPick,
} from './kernelSuites/norm.ts';
import { moeLogits, moeSuite, moeTokenCounts, moeVariants, type MoeKernel } from './kernelSuites/moe.ts';
import { gemmSuite } from './kernelSuites/gemm.ts';
import { joinTorch } from './kernelSuites/torch.ts';

export type { KernelResult } from './kernelSuites/context.ts';
export { launchesFor, timeCopy, timeKernel, timeLaunches, warmClocks, warmUpLine } from './kernelTiming.ts';

interface KernelFlags {
  dtype: StorageDType;
  quick: boolean;
  variants: boolean;
  torchFile?: string;
  jsonFile?: string;
  logitsFile?: string;
  /** --moe-layout: GEMV layout fields over the default's, for the main MoE suite (as given, for its note). */
  moeLayout?: string;
}

/** The flags, or null (after saying why) where one is not understood. */
function kernelFlags(argv: string[]): KernelFlags | null {
  const dtype = (flagValue(argv, '--dtype') ?? 'bf16') as StorageDType;
  if (dtype !== 'bf16' && dtype !== 'f32') {
    process.stderr.write(`fusionlab bench kernels: --dtype takes bf16 | f32\n`);
    return null;
  }
  return {
    dtype,
    quick: argv.includes('--quick'),
    variants: argv.includes('--variants'),
    torchFile: flagValue(argv, '--torch'),
    jsonFile: flagValue(argv, '--json'),
    logitsFile: flagValue(argv, '--dump-logits'),
    moeLayout: flagValue(argv, '--moe-layout'),
  };
}

/** The logits our MoE routes, for bench/torch_kernels.py --logits: both sides then touch the same experts. */
function dumpLogits(file: string, flags: KernelFlags): number {
  const moeTs = moeTokenCounts(flags.quick);
  const byT = Object.fromEntries(moeTs.map((T) => [T, Array.from(moeLogits(T, flags.dtype))]));
  writeFileSync(file, JSON.stringify(byT));
  process.stdout.write(`wrote the MoE logits for T = ${moeTs.join(', ')} to ${file}\n`);
  return 0;
}

/** What the adapter offers beyond core WebGPU (subgroups, subgroup matrices), for the JSON and the log. */
interface AdapterOffer {
  adapterFeatures: string[];
  subgroupSizes: (number | undefined)[];
}

/** One device with timestamp queries, its clocks warmed up (full sizes), or null where it has none. */
async function openBenchDevice(quick: boolean): Promise<{ dev: RankDevice; offer: AdapterOffer } | null> {
  const gpu = await nodeGpu();
  const [dev] = await openRanks(gpu, 1, { f16: false });
  const probe = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  const probeInfo = probe?.info as
    (GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number }) | undefined;
  const adapterFeatures = probe ? [...probe.features].sort() : [];
  const subgroupSizes = probeInfo ? [probeInfo.subgroupMinSize, probeInfo.subgroupMaxSize] : [];
  process.stdout.write(
    `adapter features: ${adapterFeatures.join(', ')}; subgroup sizes ${subgroupSizes.join('–')}\n`,
  );
  if (!dev.timestamps) {
    process.stderr.write(
      'fusionlab bench kernels: the adapter has no timestamp-query; kernel times cannot be measured\n',
    );
    return null;
  }
  if (!quick) process.stdout.write(`${warmUpLine(await warmClocks(dev))}\n`);
  return { dev, offer: { adapterFeatures, subgroupSizes } };
}

/** The layouts the main norm and MoE suites run. */
interface SuitePicks {
  norm: NormPick;
  moe: MoeKernel;
}

/** --variants (bf16): the layouts timed side by side, the fastest becoming the main suites' picks. */
async function pickByVariants(ctx: KernelBench): Promise<SuitePicks> {
  const norm = await normVariants(ctx);
  const moe = await moeVariants(ctx);
  const moeLabel = moe === 'tiled' ? 'tiled' : JSON.stringify(moe);
  process.stdout.write(
    `picked by --variants: add+rmsnorm ${normLayoutLabel(norm.add)}, allreduce+rmsnorm ${normLayoutLabel(norm.allreduce)}, moe decode ${moeLabel}\n`,
  );
  return { norm, moe };
}

export async function bench(argv: string[]): Promise<number> {
  if (argv.includes('--bundle')) return bundleSuite('kernels');
  const flags = kernelFlags(argv);
  if (!flags) return 2;
  if (flags.logitsFile) return dumpLogits(flags.logitsFile, flags);
  const opened = await openBenchDevice(flags.quick);
  if (!opened) return 2;
  const { dtype, quick } = flags;
  const rig: KernelRig = {
    dev: opened.dev,
    dtype,
    bp: dtype === 'bf16' ? 2 : 4,
    quick,
    iters: quick ? 3 : 20,
    results: [],
  };
  const ceiling = await copyCeiling(rig);
  await passFloorSuite(rig);
  for (const r of rig.results) r.ofCeiling = r.gbs / ceiling;
  const ctx = kernelBench(rig, ceiling);
  // --moe-layout '{"fma":true,…}': GEMV layout fields over the default's, unless --variants picks.
  const flagMoe: MoeKernel = flags.moeLayout
    ? { ...MOE_GEMV_DEFAULT, ...(JSON.parse(flags.moeLayout) as Partial<MoeGemvConfig>) }
    : MOE_GEMV_DEFAULT;
  const picks: SuitePicks =
    flags.variants && dtype === 'bf16' ? await pickByVariants(ctx) : { norm: NORM_DEFAULTS, moe: flagMoe };
  await normSuite(ctx, picks.norm);
  if (dtype === 'bf16') await normLayoutSuite(ctx);
  await moeSuite(ctx, picks.moe, flags.moeLayout);
  await gemmSuite(ctx);
  report(ctx, flags, opened.offer);
  return 0;
}

/** The header lines and the table on stdout, and with --json the rows and the ceiling. */
function report(ctx: KernelBench, flags: KernelFlags, offer: AdapterOffer): void {
  const { ceiling, ceilingNote, torchOn } = joinTorch(ctx, flags.torchFile);
  const { dev, dtype, quick, results } = ctx;
  const device = dev.adapterName;
  dev.destroy();
  process.stdout.write(
    `kernels on ${device}, ${dtype}; ceiling: ${ceilingNote} (read + write)${torchOn ? `; ${torchOn}` : ''}${quick ? ' [--quick sizes]' : ''}\n` +
      "kernel: timestamps around each call's passes (torch: CUPTI kernel time in CUDA-graph replays); " +
      'b2b: µs per call of N calls in one submit (torch: graph replay / calls); % of the ceiling for each; ' +
      'ours/torch: kernel/kernel and b2b/graph, MoE per byte each side streamed\n',
  );
  process.stdout.write(formatTable(results, ceiling, !!flags.torchFile));
  if (flags.jsonFile)
    writeFileSync(
      flags.jsonFile,
      JSON.stringify({ device, dtype, ceiling_gbs: ceiling, ...offer, results }, null, 1),
    );
}

function formatTable(results: KernelResult[], ceiling: number, withTorch: boolean): string {
  const pct = (bytes: number, us: number | undefined) =>
    us && bytes ? `${((100 * bytes) / us / 1e3 / ceiling).toFixed(1)}%` : '-';
  const f = (x: number | undefined, d = 1) => (x === undefined ? '-' : x.toFixed(d));
  const cols: [string, number][] = [
    ['suite', 38],
    ['T', 11],
    ['kernel µs', 11],
    ['b2b µs', 10],
    ['GB/s', 9],
    ['% kernel', 9],
    ['% b2b', 8],
  ];
  if (withTorch)
    cols.push(['torch kern', 11], ['torch graph', 12], ['% torch', 8], ['kern ratio', 11], ['b2b ratio', 10]);
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(cols[i][1]) : c.padStart(cols[i][1]))).join('');
  let out = `${line(cols.map(([c]) => c))}  note\n`;
  for (const r of results) {
    const cells = [
      r.suite,
      String(r.T),
      f(r.us),
      f(r.b2b_us),
      f(r.gbs),
      pct(r.bytes, r.us),
      pct(r.bytes, r.b2b_us),
    ];
    let note = r.note ?? '';
    if (withTorch) {
      const t = r.torch;
      // Time per byte streamed on each side: equal to the time ratio where both move the same bytes.
      const ratio = (ours: number | undefined, theirs: number | undefined) =>
        t && ours && theirs ? ((ours / r.bytes) * t.bytes) / theirs : undefined;
      cells.push(
        f(t?.kernel.us, 2),
        f(t?.graph.graph_us, 2),
        t ? pct(t.bytes, t.kernel.us) : '-',
        f(ratio(r.us, t?.kernel.us), 2),
        f(ratio(r.b2b_us, t?.graph.graph_us), 2),
      );
      if (t) {
        note += `${note ? '; ' : ''}torch kernel: ${t.kernel.compile ?? t.suite}, graph: ${t.graph.compile ?? t.suite}`;
        if (t.bytes !== r.bytes)
          note += `; torch streamed ${(t.bytes / 1e6).toFixed(1)} MB, ours ${(r.bytes / 1e6).toFixed(1)}`;
        if (t.kernel.gemm_us !== undefined) note += `; its grouped GEMMs ${t.kernel.gemm_us.toFixed(2)} µs`;
      }
    }
    out += `${line(cells)}  ${note}\n`;
  }
  return out;
}
