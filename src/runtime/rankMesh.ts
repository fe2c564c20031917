// The simulated ranks as vLLM lays them out, and the one map from a collective's process-group
// name to the ranks it spans; every backend (CPU reference, WebGPU, the agent) reads it.
//
// vLLM (vllm/distributed/parallel_state.py, initialize_model_parallel) arranges the world as
// ExternalDP × DP × PP × PCP × TP, TP innermost (`torch.arange(world).reshape(-1, dp, pp, pcp, tp)`),
// and cuts one group per kind: tp `view(-1, tp)`, dcp `reshape(-1, dcp)` (inside a TP group), pcp
// `transpose(3, 4)`, pp `transpose(2, 4)`, dp `transpose(1, 4)`, ep `transpose(1, 2)` into
// dp·pcp·tp, and the world group (init_world_group) of every rank. Each GroupCoordinator takes the
// name `f"{kind}:{n}"` from a per-process counter (_get_unique_name), so in every process 'tp:0' is
// the first TP group it created: the TP group that contains the calling rank. A group name is
// therefore a kind, resolved per rank to the group of that kind holding it.
//
// A run's mesh: tp = the run's ranks (as before), dp from the options (default 1); ExternalDP, PP,
// PCP and DCP are 1, so a run simulates dp × tp ranks, global rank = dp_rank · tp + tp_rank.

import { RunError } from './runError.ts';

export interface RankMesh {
  /** Tensor-parallel size: the run's `ranks`. */
  tp: number;
  /** Data-parallel size (default 1). */
  dp: number;
}

/** Sizes a run states for the kinds other than TP, when it states none. */
export const MESH_DEFAULTS = { dp: 1 } as const;

export function rankMesh(tp: number, dp: number = MESH_DEFAULTS.dp): RankMesh {
  if (!Number.isInteger(dp) || dp < 1)
    throw new RunError('input', `the data-parallel size must be a positive integer, got ${dp}`);
  return { tp, dp };
}

/** How many ranks the run simulates. */
export const worldSize = (m: RankMesh): number => m.tp * m.dp;

/** A rank's place in its TP group (the MoE's shard, the bias-holding rank 0). */
export const tpRankOf = (m: RankMesh, rank: number): number => rank % m.tp;

/** The group kinds vLLM names, each as the partition of the world it cuts (each group in group-rank order). */
const GROUP_KINDS: Record<'tp' | 'dcp' | 'pcp' | 'pp' | 'dp' | 'ep' | 'world', (m: RankMesh) => number[][]> =
  {
    tp: (m) => Array.from({ length: m.dp }, (_, d) => Array.from({ length: m.tp }, (_, t) => d * m.tp + t)),
    // DCP, PCP and PP are size 1 here: every rank is its own group.
    dcp: (m) => singletons(m),
    pcp: (m) => singletons(m),
    pp: (m) => singletons(m),
    dp: (m) => Array.from({ length: m.tp }, (_, t) => Array.from({ length: m.dp }, (_, d) => d * m.tp + t)),
    // dp · pcp · tp ranks with PP = 1: the whole world.
    ep: (m) => [everyRank(m)],
    world: (m) => [everyRank(m)],
  };
type GroupKind = keyof typeof GROUP_KINDS;

const everyRank = (m: RankMesh) => Array.from({ length: worldSize(m) }, (_, r) => r);
const singletons = (m: RankMesh) => everyRank(m).map((r) => [r]);

/**
 * A collective's group: the partition of the world it runs over (each rank meets the others of
 * its own group). `unknown` says why the run cannot tell which ranks the name spans; the
 * collective then runs over the whole world (what every collective did before groups), and no
 * comparison through it may claim proof.
 */
export interface ResolvedGroup {
  groups: number[][];
  unknown?: string;
}

/**
 * The ranks the group `name` spans on this mesh. `statedSize`: the size the graph states for a
 * name that is not vLLM's (a c10d process group's `group_size`): such a group is known only when
 * that is the whole world.
 */
export function resolveGroup(m: RankMesh, name: string, statedSize?: number): ResolvedGroup {
  const world = [everyRank(m)];
  const vllm = /^([a-z_]+):(\d+)$/.exec(name);
  if (vllm && Object.prototype.hasOwnProperty.call(GROUP_KINDS, vllm[1])) {
    if (vllm[2] === '0') return { groups: GROUP_KINDS[vllm[1] as GroupKind](m) };
    return {
      groups: world,
      unknown: `'${name}' is the ${Number(vllm[2]) + 1}th '${vllm[1]}' group one process created; the run models only the first`,
    };
  }
  if (vllm)
    return {
      groups: world,
      unknown: `'${name}': the run knows the groups ${Object.keys(GROUP_KINDS)
        .map((k) => `'${k}:0'`)
        .join(', ')}, not '${vllm[1]}'`,
    };
  if (statedSize === worldSize(m)) return { groups: world };
  return {
    groups: world,
    unknown:
      statedSize === undefined
        ? `process group '${name}' states neither its kind nor its size`
        : `process group '${name}' has ${statedSize} ranks of the run's ${worldSize(m)}, and its name does not say which`,
  };
}

/** The group holding `rank` in a partition, and the rank's place in it. */
export function groupOfRank(groups: number[][], rank: number): { ranks: number[]; index: number } {
  for (const ranks of groups) {
    const index = ranks.indexOf(rank);
    if (index >= 0) return { ranks, index };
  }
  throw new Error(`rank ${rank} is in no group of the partition`);
}

/** The `ranks` a step's cost counts (KERNEL_COST): its group's size for a collective, else TP's (an MoE's shards). */
export function costRanks(m: RankMesh, step: object): number {
  return 'group' in step && typeof step.group === 'string'
    ? resolveGroup(m, step.group).groups[0].length
    : m.tp;
}
