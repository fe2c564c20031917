// The guided tour of PR #28841. Each step puts the app in the state it talks about (loads the
// sample, selects the node, applies the pass, opens the tab), so the views show what the text says.
// Nodes are found by op, not by name, so the tour follows the sample generator's naming.

import type { Graph } from '../../graph/ir.ts';
import { useStore, type AppState } from '../store/index.ts';
import { innerOp } from '../panels/nodeOp.ts';

export const TOUR_SAMPLE = 'gpt-oss-20b-l1-tp4';

export interface TourStep {
  title: string;
  body: string;
  /** Drives the app into this step's state. */
  enter(): void;
}

/** The graph a step's text talks about: the latest stage (the tour never scrubs). */
const latest = (s: AppState) => s.stages[s.stages.length - 1]?.graph;

function firstNode(g: Graph | undefined, op: string): string | null {
  return g?.nodes.find((n) => innerOp(n) === op)?.name ?? null;
}

/** Loads the tour's sample with the given rewrite steps, unless that is already the state. */
function ensure(passes: string[]) {
  const s = useStore.getState();
  const same = s.source && 'sample' in s.source && s.source.sample === TOUR_SAMPLE
    && s.cursor === passes.length && s.steps.slice(0, s.cursor).every((st, i) => st.pass === passes[i] && st.site === undefined);
  if (!same) s.loadSample(TOUR_SAMPLE, { steps: passes.map((pass) => ({ pass })) });
}

export const TOUR: TourStep[] = [
  {
    title: 'The MoE block pads its input',
    body: 'GPT-OSS-20B has hidden size 2880. Before the experts run, constant_pad_nd pads each row to 3072 columns so the MoE kernels get aligned tiles. Under tensor parallelism every rank holds a partial sum of the MoE output, still 3072 wide.',
    enter: () => {
      ensure([]);
      const st = useStore.getState();
      st.select(firstNode(latest(st), 'aten.constant_pad_nd.default'), 'after', true);
    },
  },
  {
    title: 'The partial sums are all-reduced, then sliced',
    body: 'vllm.all_reduce sums the 3072-wide partials over the ranks; only then does aten.slice cut the padding back to 2880 columns. The all-reduce moves 6.25 % more bytes than the model needs.',
    enter: () => {
      ensure([]);
      const st = useStore.getState();
      st.select(firstNode(latest(st), 'vllm.all_reduce.default'), 'after', true);
    },
  },
  {
    title: 'The slice blocks the fusion',
    body: 'vLLM fuses all_reduce followed directly by fused_add_rms_norm into one FlashInfer kernel. Here the slice sits between them, so the pattern does not match: the "why" list names the slice as the blocker.',
    enter: () => {
      ensure([]);
      const st = useStore.getState();
      st.select(firstNode(latest(st), 'aten.slice.Tensor'), 'after', true);
    },
  },
  {
    title: 'Hoisting the slice is legal',
    body: 'An all-reduce is an elementwise sum over ranks, and slicing picks elements: slice(Σᵣ xᵣ) = Σᵣ slice(xᵣ). So slice-hoist moves the slice above the all-reduce. The result is the same, bit for bit, and the reduction is 6.25 % smaller.',
    enter: () => {
      ensure(['slice-hoist']);
      const st = useStore.getState();
      st.select(firstNode(latest(st), 'aten.slice.Tensor'), 'after', true);
    },
  },
  {
    title: 'All-reduce and norm become one kernel',
    body: 'With the slice out of the way, allreduce-rmsnorm replaces the pair by flashinfer_trtllm_fused_allreduce_norm: one kernel reduces over the peers, adds the residual and normalizes, without a round trip through memory in between.',
    enter: () => {
      ensure(['slice-hoist', 'allreduce-rmsnorm']);
      const st = useStore.getState();
      st.select(firstNode(latest(st), 'vllm.flashinfer_trtllm_fused_allreduce_norm.default'), 'after', true);
    },
  },
  {
    title: 'Run both graphs and compare',
    body: 'The Run tab executes the graph before and after the rewrite on several WebGPU ranks with the same seeded inputs. Hoisting alone is bitwise equal; the fused kernel rounds once where the unfused pair rounds twice, so they differ by a few bf16 ulps, within tolerance.',
    enter: () => {
      const st = useStore.getState();
      // Settings a laptop runs in seconds: the tiny preset on two ranks.
      st.setRunSettings({ backend: typeof navigator !== 'undefined' && 'gpu' in navigator ? 'webgpu' : 'cpu', ranks: 2, preset: 'tiny' });
      st.setBottomTab('run');
    },
  },
  {
    title: 'What it buys on real hardware',
    body: 'At 24 layers 25 sites fuse before the change and 49 after (2L+1). On 8×B200 the PR measured +3.8 % output throughput for gpt-oss-20b. The Cost tab, set to B200 at TP8, predicts the saving from bytes moved, kernel launches and collective cost.',
    enter: () => {
      const st = useStore.getState();
      // The PR's measurement: gpt-oss-20b at TP8 on B200.
      st.setProfile('B200-NVLink');
      st.setCostTp(8);
      st.setBottomTab('cost');
    },
  },
];

