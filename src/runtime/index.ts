// Running graphs: plan on the host, then hand the plan to a backend that runs it on every rank.
// `compareRewrite` runs a graph before and after passes on the same seeded inputs.

import type { Arg, Graph } from '../graph/ir.ts';
import { isRef } from '../graph/ir.ts';
import { calledOp } from '../graph/call.ts';
import { buildPlan, decomposed, type Plan, type Step, type UnknownGroup } from './plan.ts';
import { RunError } from './runError.ts';
import type { Backend, BackendName, RunOptions, RunResult, Trace } from './backend.ts';
import { cpuBackend } from './cpuBackend.ts';
import { compareExact, compareOutputs, type FedSources, type OutputComparison } from './compareOutputs.ts';
import { fedSourcesOfOutputs } from './fedSources.ts';
import { firstSiteDrift, type SiteDrift } from './fusedSiteDrift.ts';
import { KERNELS, KERNEL_DECOMPOSITIONS } from '../graph/opTable.ts';

export type { FusedNormRounding } from './plan.ts';
export type {
  BackendName,
  RunOptions,
  TraceEvent,
  Trace,
  RunResult,
  Backend,
  RunProgress,
} from './backend.ts';
export type { HostTensor } from './hostTensor.ts';
export type { OutputComparison } from './compareOutputs.ts';
export { RunError, type RunErrorKind } from './runError.ts';
export type { Plan, UnknownGroup } from './plan.ts';

const BACKENDS = new Map<BackendName, () => Promise<Backend>>([
  ['cpu', async () => cpuBackend],
  ['webgpu', async () => (await import('./webgpuBackend.ts')).webgpuBackend],
]);

/** Plug in a backend (the agent client registers 'agent'). */
export function registerBackend(name: BackendName, load: () => Promise<Backend>): void {
  BACKENDS.set(name, load);
}

export function planGraph(
  g: Graph,
  opts: Pick<RunOptions, 'preset' | 'dtype' | 'ranks' | 'dp' | 'tokens' | 'fusedNormRounding' | 'planFor'> & {
    backend?: BackendName;
  },
): Plan {
  if (opts.dtype !== 'bf16' && opts.dtype !== 'f32' && opts.dtype !== 'f16')
    throw new RunError('input', `dtype must be bf16, f32 or f16, got '${opts.dtype}'`);
  const plan = buildPlan(g, {
    preset: opts.preset,
    dtype: opts.dtype,
    ranks: opts.ranks,
    dp: opts.dp,
    tokens: opts.tokens,
  });
  if ((opts.planFor ?? opts.backend) === 'agent') feedWorkerless(plan);
  // On the steps, so every rank mode (one thread, workers) and backend reads it from the plan.
  if (opts.fusedNormRounding === 'as-unfused')
    for (const s of plan.steps) if (s.kernel === 'fused_allreduce_norm') s.normRounding = 'as-unfused';
  return plan;
}

/**
 * The agent runs a kernel through its worker ops (KERNELS[k].worker) or its decomposition into
 * kernels that have them (KERNEL_DECOMPOSITIONS); a kernel with neither
 * yet (scatter, rotary, attention; qk_norm_rope, whose pair holds rotary) is fed from seeded
 * inputs on the agent, and listed in plan.fed, so a comparison on the agent names it rather than
 * claiming it computed.
 */
function feedWorkerless(plan: Plan): void {
  const runs = (s: Step) =>
    KERNELS[s.kernel].worker.length > 0 ||
    (!!KERNEL_DECOMPOSITIONS[s.kernel] &&
      decomposed({ ...plan, steps: [s] }).steps.every((p) => KERNELS[p.kernel].worker.length > 0));
  plan.steps = plan.steps.map((s) => {
    if (s.kernel === 'seed' || runs(s)) return s;
    if (!plan.fed.includes(s.node)) plan.fed.push(s.node);
    return { kernel: 'seed', name: s.out, role: 'fed', perRank: true, out: s.out, node: s.node, op: s.op };
  });
}

export async function runGraph(g: Graph, opts: RunOptions): Promise<RunResult> {
  const load = BACKENDS.get(opts.backend);
  if (!load)
    throw new RunError(
      'input',
      `backend '${opts.backend}' is not available (have: ${[...BACKENDS.keys()].join(', ')})`,
    );
  opts.onProgress?.({ phase: 'plan', done: 0, total: 1 });
  const plan = planGraph(g, opts);
  opts.onProgress?.({ phase: 'plan', done: 1, total: 1 });
  const backend = await load();
  return backend.run(plan, opts);
}

/**
 * The check that proves the rewrite structurally right where fused sites make the normal
 * comparison inexact: the after-graph run again with the fused norm rounded as the unfused pair
 * rounds it, gated bitwise against the before-graph. `outputs` is null when it was skipped.
 */
export interface ExactCheck {
  outputs: OutputComparison[] | null;
  pass: boolean;
  skipped: boolean;
  note: string;
}

export interface CompareReport {
  passes: string[];
  /** The normal after-run against before: bitwise (no fused site), ≤ 2 ulps (one), reported only (several). */
  outputs: OutputComparison[];
  before: Trace;
  after: Trace;
  /** All-reduce + norm sites the rewrite fused. */
  fusedSites: number;
  /** Present when the rewrite fused at least one site. */
  exact?: ExactCheck;
  /**
   * The fused kernel's own change at one site: the first fused site alone, fused against the
   * unfused pair's rounding (fusedSiteDrift.ts). Absent where the exact check could not run.
   */
  firstSite?: SiteDrift | null;
  ok: boolean;
  /**
   * Every node, before or after, that was fed with seeded random values (no kernel) and lies on a
   * path to a compared output; empty when every compared value was computed.
   */
  fedOnComparedPaths: string[];
  /**
   * What the comparison shows. 'proven': ok, every output gated (by its tolerance or the exact
   * check) and computed on every path. 'depends-on-fed': ok, but an output depends on a fed node
   * (fedOnComparedPaths), so equality there says only that the data flow around it was kept.
   * 'not-gated': ok and all computed, but some output was only reported (several fused sites
   * and no exact check, as on the agent). 'unknown-group': ok, but a collective names a process
   * group the run cannot resolve to ranks (unknownGroups): it ran over every rank, which may not
   * be what it spans, so equality says nothing about the groups. 'failed': not ok.
   */
  verdict: Verdict;
  /** Collectives, before or after, whose process group the run could not resolve to ranks. */
  unknownGroups: UnknownGroup[];
  /** Per rank: the outputs of the before- and after-run (the CLI's --dump-outputs writes them). */
  beforeOutputs: RunResult['outputs'];
  afterOutputs: RunResult['outputs'];
}

export type Verdict = 'proven' | 'unknown-group' | 'depends-on-fed' | 'not-gated' | 'failed';

const FUSED = 'vllm.flashinfer_trtllm_fused_allreduce_norm.default';
const MOE = 'vllm.moe_forward.default';
/** Nodes that run the fused all-reduce + norm, in whichever form the graph calls it. */
const fusedNodesOf = (g: Graph) => g.nodes.filter((n) => calledOp(n) === FUSED);
const fusedSitesOf = (g: Graph) => fusedNodesOf(g).length;

const FUSED_AG_MM = 'symm_mem.fused_all_gather_matmul.default';
/**
 * Bias adds async-tp split out of a biased GEMM (addmm) after an all_gather: symm_mem's fused
 * op takes no bias, so the product is rounded before the bias is added — one bf16 rounding more
 * than addmm's, at every such site, as on a GPU.
 */
function splitBiasSitesOf(g: Graph): number {
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  const src = (a: Arg | undefined) => (a !== undefined && isRef(a) ? byName.get(a.name) : undefined);
  return g.nodes.filter(
    (n) => n.op === 'aten.add.Tensor' && src(src(src(n.args[0])?.args[0])?.args[0])?.op === FUSED_AG_MM,
  ).length;
}

/** Output names under which the fused op's own results reach the after-graph's outputs (`x[1]`, or a getitem of it). */
function fusedResultsOf(g: Graph): Set<string> {
  const fused = new Set(fusedNodesOf(g).map((n) => n.name));
  const names = new Set<string>();
  for (const n of g.nodes) {
    const src = n.args[0];
    if (n.op === 'getitem' && isRef(src) && fused.has(src.name)) names.add(n.name);
  }
  for (const f of fused) for (let i = 0; i < 6; i++) names.add(`${f}[${i}]`);
  return names;
}

/** Run `before` and `after` on the same seeded inputs and compare outputs position by position. */
export async function compareGraphs(
  before: Graph,
  after: Graph,
  passes: string[],
  opts: RunOptions,
): Promise<CompareReport> {
  const a = await runGraph(before, opts);
  const b = await runGraph(after, opts);
  const fusedSites = fusedSitesOf(after) - fusedSitesOf(before);
  // Planning is pure and cheap next to running: done again here rather than carried through every backend.
  const plans = { before: planGraph(before, opts), after: planGraph(after, opts) };
  const fed: FedSources = {
    before: fedSourcesOfOutputs(plans.before),
    after: fedSourcesOfOutputs(plans.after),
  };
  // Each collective once, though both graphs hold it.
  const unknownGroups = [
    ...new Map(
      [...plans.before.unknownGroups, ...plans.after.unknownGroups].map((u) => [`${u.node} ${u.group}`, u]),
    ).values(),
  ];
  // Outputs the graph types as FP8 are compared in fp8 steps (their values are quantized).
  const fp8Outputs = new Set(
    (before.outputs ?? []).flatMap((o) => {
      const n = isRef(o) ? before.nodes.find((x) => x.name === o.name) : undefined;
      return n?.type?.kind === 'tensor' && n.type.dtype === 'f8e4m3fn' ? [n.name] : [];
    }),
  );
  const routed = after.nodes.some((n) => calledOp(n) === MOE);
  const splitBias = splitBiasSitesOf(after) - splitBiasSitesOf(before);
  const outputs = compareOutputs(a, b, fusedSites, routed, fp8Outputs, fed, fusedResultsOf(after), splitBias);
  let exact: ExactCheck | undefined;
  let firstSite: SiteDrift | null | undefined;
  if (fusedSites > 0) {
    const what = `after-graph with the ${fusedSites} fused norm${fusedSites > 1 ? 's' : ''} rounded as the unfused pair, bitwise against before`;
    if (splitBias > 0) {
      // The unfused-rounding rerun restores the norms' rounding, not the bias adds': it would differ anyway.
      exact = {
        outputs: null,
        pass: true,
        skipped: true,
        note: `exact check skipped: ${splitBias} bias add${splitBias > 1 ? 's' : ''} split out of async-tp's fused all_gather GEMM round once more than addmm (${what} would still differ)`,
      };
    } else if (opts.backend === 'agent') {
      exact = {
        outputs: null,
        pass: true,
        skipped: true,
        note: `exact check skipped: the agent backend has no unfused-rounding mode for the fused kernel (${what})${fusedSites > 1 ? '; nothing here gates the outputs but their shapes' : ''}`,
      };
    } else {
      const c = await runGraph(after, { ...opts, fusedNormRounding: 'as-unfused' });
      const eo = compareExact(a, c, fed);
      // A measurement for the verdict's second part: where the cut graph cannot run, it is left
      // unmeasured (the verdict then quotes the site's contract), never a failed comparison.
      firstSite = await firstSiteDrift(after, (n) => calledOp(n) === FUSED, opts, runGraph).catch(() => null);
      const pass = eo.length > 0 && eo.every((o) => o.pass);
      exact = {
        outputs: eo,
        pass,
        skipped: false,
        note: `exact check: ${what}: ${pass ? 'equal' : `${eo.filter((o) => !o.pass).length} output(s) differ`}`,
      };
    }
  }
  const ok = outputs.length > 0 && outputs.every((o) => o.pass) && (exact?.pass ?? true);
  const fedOnComparedPaths = [...new Set(outputs.flatMap((o) => o.fedFrom))];
  // An output reported but not gated is proven by the exact check, when that ran.
  const gated = (o: OutputComparison, i: number) =>
    o.proven || (!!exact?.outputs?.[i]?.proven && !exact.skipped);
  const verdict: Verdict = !ok
    ? 'failed'
    : unknownGroups.length
      ? 'unknown-group'
      : fedOnComparedPaths.length
        ? 'depends-on-fed'
        : outputs.every(gated)
          ? 'proven'
          : 'not-gated';
  return {
    passes,
    outputs,
    before: a.trace,
    after: b.trace,
    fusedSites,
    exact,
    firstSite,
    ok,
    fedOnComparedPaths,
    verdict,
    unknownGroups,
    beforeOutputs: a.outputs,
    afterOutputs: b.outputs,
  };
}

export async function compareRewrite(g: Graph, passes: string[], opts: RunOptions): Promise<CompareReport> {
  const { rewriteForCompare } = await import('./rewriteForCompare.ts');
  return compareGraphs(g, rewriteForCompare(g, passes, opts.ranks), passes, opts);
}
