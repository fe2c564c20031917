// A folder of graph dumps as an ordered list of stages: vLLM's debug dump
// (compilation_config.debug_dump_path / VLLM_DEBUG_DUMP_PATH: one file per stage, named
// `{before|after}_{pass}-{rank}.py` by VllmInductorPass.dump_graph at PR #28841's vLLM, or
// `post_grad.{i}.{Pass}.{before|after}` by later ones, under `rank_N/` with computation_graph.py)
// and TORCH_COMPILE_DEBUG's Inductor folder (fx_graph_readable.py before the post-grad
// passes, fx_graph_transformed.py after). Pure: the caller reads the files (CLI: fs; app: a folder
// picker or drop). Files that are not graphs are listed with the reason, never a crash.

import { GraphImportError } from './errors.ts';
import type { ImportWarning } from './errors.ts';
import { importGraph, type FormatId } from './formats.ts';
import type { Graph } from './ir.ts';

/** A dump folder holds a few dozen files; more than this is the wrong folder (CLI and app alike). */
export const MAX_FOLDER_FILES = 2000;

export interface StageFile {
  path: string;
  text: string;
}
export interface DumpStage {
  name: string;
  path: string;
  graph: Graph;
  warnings: ImportWarning[];
  format: FormatId;
}
export interface SkippedFile {
  path: string;
  reason: string;
}
export interface StageFolder {
  stages: DumpStage[];
  skipped: SkippedFile[];
  /** The TP world size the file names state (see dumpWorldSize); undefined when they state none. */
  worldSize?: number;
}

/** Files a dump folder holds that are not graphs, and what they are. */
const NOT_GRAPHS: [RegExp, string][] = [
  [/^patterns\..*\.py$/, "vLLM's pattern dump (VllmPatternMatcherPass.dump_patterns), not a graph"],
  [/^transformed_code.*\.py$/, "Dynamo's transformed bytecode as Python, not a graph"],
  [/^fx_graph_runnable\.py$/, 'the same graph as fx_graph_readable.py, as a runnable script'],
  [/^output_code\.py$/, "Inductor's generated kernels, not an FX graph"],
  [/^ir_(pre|post)_fusion\.txt$/, "Inductor's scheduler IR, not an FX graph"],
];
const GRAPH_EXTENSIONS = /\.(py|txt|json|fx)$/;

const baseName = (p: string) => p.slice(p.lastIndexOf('/') + 1);
const dirOf = (p: string) => p.slice(0, Math.max(0, p.lastIndexOf('/')));
const stem = (p: string) => baseName(p).replace(/\.(py|txt|json|fx)$/, '');

/**
 * PostGradPassManager's order (vllm/compilation/pass_manager.py, configure): no-op elimination,
 * sequence parallelism, async TP, the all-reduce fusion, RMSNorm/activation quant fusion,
 * attention fusion, cleanup; fix_functionalization runs last. A stage names its pass in snake case.
 */
const PASS_ORDER: [RegExp, number][] = [
  [/noop/, 0],
  [/sequence_parallel/, 1],
  [/async_tp/, 2],
  [/all_?reduce|collective/, 3],
  [/activation_quant|act_quant/, 5],
  [/attn/, 6],
  [/fusion/, 4],
  [/cleanup/, 7],
  [/fix_functionalization/, 8],
];
const passRank = (name: string) => PASS_ORDER.find(([re]) => re.test(name))?.[1] ?? 4.5;

/**
 * Where a file sits in the compile: [phase, index, before/after]. computation_graph.py (the graph
 * vLLM splits and compiles) comes first; then Inductor's pre-pass graph; the post-grad pass dumps
 * in pass order; then the transformed graph. Unknown names keep a natural order after those.
 */
function stageKey(path: string): [number, number, number] {
  const s = stem(path);
  if (s === 'computation_graph') return [0, 0, 0];
  if (s === 'fx_graph_readable') return [1, 0, 0];
  const pg = /^post_grad(?:\.(\d+))?\.[A-Za-z0-9_]+\.(before|after)$/.exec(s);
  if (pg) return [2, Number(pg[1] ?? 0), pg[2] === 'before' ? 0 : 1];
  const ba = /^(before|after)_(.+?)(?:-\d+)?$/.exec(s);
  if (ba) return [2, passRank(ba[2]!), ba[1] === 'before' ? 0 : 1];
  if (s === 'fx_graph_transformed') return [3, 0, 0];
  return [4, 0, 0];
}

const natural = new Intl.Collator('en', { numeric: true });

/** The rank a dump belongs to: its `rank_N` folder, or the `-N` of `{stage}-{rank}.py`; '' for none. */
function rankOf(path: string): string {
  const m = /(?:^|\/)(rank_\d+(?:_\d+)?)\//.exec(path);
  if (m) return m[1]!;
  const suffix = /^(?:before|after)_.+-(\d+)\.py$/.exec(baseName(path));
  return suffix ? `rank_${suffix[1]}` : '';
}

/**
 * The TP world size a dump's file names state. VllmInductorPass.dump_graph adds `-{tp_rank}` to a
 * stage's file only when the TP world size is over 1 (vllm/compilation/vllm_inductor_pass.py,
 * dump_graph: `parallel = p_is_init() and get_tp_world_size() > 1`), so one such file says at
 * least 2, and ranks up to N − 1 say N. `rank_N` folders are written at every world size, 1
 * included: there only the highest rank present says something.
 */
export function dumpWorldSize(paths: readonly string[]): number | undefined {
  let size: number | undefined;
  for (const p of paths) {
    const suffix = /^(?:before|after)_.+-(\d+)\.py$/.exec(baseName(p));
    const folder = /(?:^|\/)rank_(\d+)\//.exec(p);
    const least = suffix ? Math.max(2, Number(suffix[1]) + 1) : folder ? Number(folder[1]) + 1 : 0;
    if (least > 1) size = Math.max(size ?? 0, least);
  }
  return size;
}

export function importStageFolder(
  files: StageFile[],
  opts: { maxBytes?: number; maxNodes?: number } = {},
): StageFolder {
  const skipped: SkippedFile[] = [];
  // One rank's stages: every rank dumps the same passes.
  // Files outside any rank (computation_graph.py at the top, notes) belong to every rank.
  const ranks = [...new Set(files.map((f) => rankOf(f.path)).filter((r) => r !== ''))].sort(natural.compare);
  const shownRank = ranks[0] ?? '';
  const candidates: StageFile[] = [];
  for (const f of files) {
    const name = baseName(f.path);
    const rank = rankOf(f.path);
    if (rank !== '' && rank !== shownRank) {
      skipped.push({
        path: f.path,
        reason: `${rank}: another rank's copy of the stages (showing ${shownRank})`,
      });
      continue;
    }
    const known = NOT_GRAPHS.find(([re]) => re.test(name));
    if (known) {
      skipped.push({ path: f.path, reason: known[1] });
      continue;
    }
    if (!GRAPH_EXTENSIONS.test(name)) {
      skipped.push({ path: f.path, reason: 'not a graph file (.py, .txt, .json, .fx)' });
      continue;
    }
    candidates.push(f);
  }
  // One compiled graph per folder (TORCH_COMPILE_DEBUG: model__0_forward_1.0, …_2.0 for pieces):
  // its stages together, folders in natural order.
  candidates.sort((a, b) => {
    const byDir = natural.compare(dirOf(a.path), dirOf(b.path));
    if (byDir !== 0) return byDir;
    const ka = stageKey(a.path),
      kb = stageKey(b.path);
    for (let i = 0; i < 3; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
    return natural.compare(a.path, b.path);
  });
  const stages: DumpStage[] = [];
  for (const f of candidates) {
    try {
      const r = importGraph(f.text, { fileName: f.path, ...opts });
      stages.push({
        name: stem(f.path),
        path: f.path,
        graph: r.graph,
        warnings: r.warnings,
        format: r.format,
      });
    } catch (e) {
      // One bad file is listed, not fatal: the other stages still load.
      const reason =
        e instanceof GraphImportError
          ? `${f.path}:${e.line}:${e.col}: ${e.detail}`
          : `${f.path}: ${(e as Error).message}`;
      skipped.push({ path: f.path, reason });
    }
  }
  // Names say which stage; where two folders hold the same stage, their folder tells them apart.
  const count = new Map<string, number>();
  for (const st of stages) count.set(st.name, (count.get(st.name) ?? 0) + 1);
  for (const st of stages) if (count.get(st.name)! > 1) st.name = `${baseName(dirOf(st.path))}/${st.name}`;
  const worldSize = dumpWorldSize(files.map((f) => f.path));
  return worldSize === undefined ? { stages, skipped } : { stages, skipped, worldSize };
}
