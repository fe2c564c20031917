// The guided tour of PR #28841. Each step puts the app in the state it talks about (loads the
// sample, selects the node, applies the pass, opens the tab), so the views show what the text says.
// Nodes are found by op, not by name, so the tour follows the sample generator's naming.

import { refsOf, type Graph, type Node } from '../../graph/ir.ts';
import { useStore, type AppState } from '../store/index.ts';
import { calledOp } from '../../graph/call.ts';
import { PASSES } from '../../graph/passes/pipeline.ts';
import { reportIsStale } from '../store/runSlice.ts';

export const TOUR_SAMPLE = 'gpt-oss-20b-l1-tp4';

export interface TourStep {
  title: string;
  /** The text; a function when its numbers come from the app's state (the run). */
  body: string | ((s: AppState) => string);
  /** Drives the app into this step's state. */
  /** Loads what the step shows (the sample may be made in the pipeline worker), then selects. */
  enter(): Promise<void>;
}

/** The graph a step's text talks about: the latest stage (the tour never scrubs). */
const latest = (s: AppState) => s.stages[s.stages.length - 1]?.graph;

function firstNode(g: Graph | undefined, op: string): string | null {
  return g?.nodes.find((n) => calledOp(n) === op)?.name ?? null;
}

/** Names of the nodes that read `name`. */
function readersOf(g: Graph, name: string): Node[] {
  return g.nodes.filter((n) => [...n.args, ...Object.values(n.kwargs)].some((a) => refsOf(a).includes(name)));
}

/**
 * The MoE block's all-reduce: the one whose result a slice cuts back (the embedding's all-reduce,
 * earlier in the graph, feeds a norm directly). Before the hoist it reads the padded partials;
 * after it, the slice.
 */
function moeAllReduce(g: Graph | undefined): Node | undefined {
  return g?.nodes.find(
    (n) =>
      n.op === 'vllm.all_reduce.default' &&
      (readersOf(g, n.name).some((u) => u.op === 'aten.slice.Tensor') ||
        refsOf(n.args[0]).some((r) => g.nodes.find((m) => m.name === r)?.op === 'aten.slice.Tensor')),
  );
}

/** The slice next to the MoE all-reduce: its reader before the hoist, its input after. */
function moeSlice(g: Graph | undefined): string | null {
  const ar = moeAllReduce(g);
  if (!g || !ar) return null;
  return (
    readersOf(g, ar.name).find((u) => u.op === 'aten.slice.Tensor')?.name ??
    refsOf(ar.args[0]).find((r) => g.nodes.find((m) => m.name === r)?.op === 'aten.slice.Tensor') ??
    null
  );
}

/** The fused all-reduce + norm the hoist freed: the one whose allreduce_in is the hoisted slice. */
function fusedMoeSite(g: Graph | undefined): string | null {
  if (!g) return null;
  const slices = new Set(g.nodes.filter((n) => n.op === 'aten.slice.Tensor').map((n) => n.name));
  return (
    g.nodes.find(
      (n) => calledOp(n) === FUSED_OP && refsOf(n.kwargs.allreduce_in ?? null).some((r) => slices.has(r)),
    )?.name ?? null
  );
}

const FUSED_OP = 'vllm.flashinfer_trtllm_fused_allreduce_norm.default';

/** Sites the all-reduce fusion takes in a graph as imported (before any hoist), per graph. */
const fusedBeforeHoist = new WeakMap<Graph, number>();

/**
 * The loaded sample's own fusion counts: before the change (the fusion alone on the imported
 * graph) and after it (the latest stage's fused sites), or null before the tour's steps are in.
 */
function sampleCounts(s: AppState): { before: number; after: number } | null {
  const base = s.stages[0]?.graph;
  const last = s.stages[s.stages.length - 1];
  if (!base || !last || last.step?.pass !== 'allreduce-rmsnorm') return null;
  let before = fusedBeforeHoist.get(base);
  if (before === undefined) {
    before = PASSES['allreduce-rmsnorm'](base, s.gates).matches.length;
    fusedBeforeHoist.set(base, before);
  }
  return { before, after: last.matches.length };
}

/** "Running… (compiling kernels, 40 %)": the run's phase while it goes. */
function runningNote(s: AppState): string {
  const p = s.progress;
  if (!p) return 'Running…';
  return `Running… (${p.phase}${p.fraction === null ? '' : `, ${Math.round(p.fraction * 100)} %`})`;
}

/** Loads the tour's sample with the given rewrite steps, unless that is already the state. */
async function ensure(passes: string[]) {
  const s = useStore.getState();
  const same =
    s.source &&
    'sample' in s.source &&
    s.source.sample === TOUR_SAMPLE &&
    s.cursor === passes.length &&
    s.steps.slice(0, s.cursor).every((st, i) => st.pass === passes[i] && st.site === undefined);
  if (!same) await s.loadSample(TOUR_SAMPLE, { steps: passes.map((pass) => ({ pass })) });
}

export const TOUR: TourStep[] = [
  {
    title: 'The MoE block pads its input',
    body: 'GPT-OSS-20B has hidden size 2880. Before the experts run, constant_pad_nd pads each row to 3072 columns so the MoE kernels get aligned tiles. Under tensor parallelism every rank holds a partial sum of the MoE output, still 3072 wide.',
    enter: async () => {
      await ensure([]);
      const st = useStore.getState();
      st.select(firstNode(latest(st), 'aten.constant_pad_nd.default'), 'after', true);
    },
  },
  {
    title: 'The partial sums are all-reduced, then sliced',
    body: 'vllm.all_reduce sums the 3072-wide partials over the ranks; only then does aten.slice cut the padding back to 2880 columns. The all-reduce moves 6.25 % more bytes than the model needs.',
    enter: async () => {
      await ensure([]);
      const st = useStore.getState();
      st.select(moeAllReduce(latest(st))?.name ?? null, 'after', true);
    },
  },
  {
    title: 'The slice blocks the fusion',
    body: 'vLLM fuses all_reduce followed directly by fused_add_rms_norm into one FlashInfer kernel. Here the slice sits between them, so the pattern does not match: the "why" list names the slice as the blocker.',
    enter: async () => {
      await ensure([]);
      const st = useStore.getState();
      st.select(moeSlice(latest(st)), 'after', true);
    },
  },
  {
    title: 'Hoisting the slice is legal',
    body: 'An all-reduce is an elementwise sum over ranks, and slicing picks elements: slice(Σᵣ xᵣ) = Σᵣ slice(xᵣ). So slice-hoist moves the slice above the all-reduce. The result is the same, bit for bit, and the reduction is 6.25 % smaller.',
    enter: async () => {
      await ensure(['slice-hoist']);
      const st = useStore.getState();
      st.select(moeSlice(latest(st)), 'after', true);
    },
  },
  {
    title: 'All-reduce and norm become one kernel',
    body: 'With the slice out of the way, allreduce-rmsnorm replaces the pair by flashinfer_trtllm_fused_allreduce_norm: one kernel reduces over the peers, adds the residual and normalizes, without a round trip through memory in between.',
    enter: async () => {
      await ensure(['slice-hoist', 'allreduce-rmsnorm']);
      const st = useStore.getState();
      st.select(fusedMoeSite(latest(st)), 'after', true);
    },
  },
  {
    title: 'Run both graphs and compare',
    body: (s) => {
      const intro =
        'The Run tab executes the graph before and after the rewrite on two ranks with the same seeded inputs. The fused kernel rounds the norm once where the unfused pair rounds twice, so the proof is the exact check: the after-graph rerun with the fused norm rounded as the pair must be bitwise equal to before.';
      if (s.runStatus === 'running') return `${intro} ${runningNote(s)}`;
      if (s.runStatus === 'error') return `${intro} The run failed: ${s.runError}`;
      if (!s.report) return `${intro} Press Run before & after.`;
      const r = s.report;
      const worst = r.outputs.reduce((a, o) => (o.ulps > a.ulps ? o : a), r.outputs[0]);
      const exact = r.exact
        ? r.exact.skipped
          ? 'The exact check could not run on this backend.'
          : r.exact.pass
            ? 'This run: the exact check is bitwise equal.'
            : 'This run: the exact check FAILED.'
        : '';
      return `${intro} ${exact} The fused outputs differ from before by at most ${worst.ulps} bf16 ulp${worst.ulps === 1 ? '' : 's'} (max rel ${worst.maxRel.toExponential(2)}, ${worst.name}): ${worst.tolerance}.`;
    },
    enter: async () => {
      await ensure(['slice-hoist', 'allreduce-rmsnorm']);
      const st = useStore.getState();
      // Settings a laptop runs in seconds: the tiny preset on two ranks.
      st.setRunSettings({
        backend: typeof navigator !== 'undefined' && 'gpu' in navigator ? 'webgpu' : 'cpu',
        ranks: 2,
        preset: 'tiny',
      });
      st.setBottomTab('run');
      // A report of other steps (stale) is not this step's run: run again.
      if ((!st.report || reportIsStale(st)) && st.runStatus !== 'running') void st.run();
    },
  },
  {
    title: 'What it buys on real hardware',
    body: (s) => {
      const counts = sampleCounts(s);
      const layers = counts ? counts.after - counts.before : null;
      const here =
        counts && layers !== null
          ? `In this ${layers}-layer sample ${counts.before} site${counts.before === 1 ? '' : 's'} fuse before the change and ${counts.after} after (L+1 → 2L+1); at gpt-oss-20b's 24 layers that is 25 → 49.`
          : "At gpt-oss-20b's 24 layers 25 sites fuse before the change and 49 after (L+1 → 2L+1).";
      const tp = s.costTp ?? s.gates.worldSize;
      return `${here} On 8×B200 the PR measured +3.8 % output throughput for gpt-oss-20b. The Cost tab, set to B200 at this graph's TP${tp === undefined ? '' : ` ${tp}`}, predicts the saving from bytes moved, kernel launches and collective cost.`;
    },
    enter: async () => {
      await ensure(['slice-hoist', 'allreduce-rmsnorm']);
      const st = useStore.getState();
      // The PR measured on B200; the prediction stays at the graph's own TP (the world-size gate),
      // so the cost model is not left at a TP the graph was not made for.
      st.setProfile('B200-NVLink');
      st.setCostTp(null);
      st.setBottomTab('cost');
    },
  },
];
