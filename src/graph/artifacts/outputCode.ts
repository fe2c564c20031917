// Inductor's output code (`output_code.py` of a TORCH_COMPILE_DEBUG folder or a TORCH_TRACE log):
// the kernels it generated, the extern kernels and custom ops between them, the order `call()`
// launches them, and the FX nodes each one covers.
//
// Which nodes a kernel covers depends on what the run wrote (torch/_inductor/utils.py,
// `get_kernel_metadata`; torch/_inductor/debug.py, `create_node_mapping_kernel_to_post_grad`):
//  - the provenance mapping (`inductor_provenance_tracking_node_mappings.json`, debug runs): its
//    `cppCodeToPost` names post-grad nodes per `kernel:handle`, the handle written in `call()` as
//    `# [Provenance debug handles] kernel:N` — the only source for C++ kernels on CPU;
//  - `# Source node to ATen node mapping:` lines (`src => post, post`): post-grad names on the right;
//  - `# Source Nodes: [...]` (torch before the sorted form): post-grad names;
//  - `# Topologically Sorted Source Nodes: [...]`: the Dynamo graph's names (`from_node[0]`), not
//    the post-grad graph's — mapped through the provenance file's `preToPost` when there is one,
//    else matched to post-grad nodes of the same name only.
// Pure: no DOM, no Node APIs.

export type KernelKind = 'triton' | 'cpp' | 'extern' | 'custom';

/** Where a launch's nodes came from, strongest first; shown on screen beside each grouping. */
export const MAPPING_SOURCES = [
  'provenance',
  'aten-mapping',
  'source-nodes',
  'dynamo-names',
  'predicted',
  'none',
] as const;
export type MappingSource = (typeof MAPPING_SOURCES)[number];

export const MAPPING_SOURCE_LABEL: Record<MappingSource, string> = {
  provenance: 'provenance mapping (inductor_provenance_tracking_node_mappings.json)',
  'aten-mapping': "'Source node to ATen node mapping' comment (post-grad names)",
  'source-nodes': "'Source Nodes' comment (post-grad names)",
  'dynamo-names': "'Topologically Sorted Source Nodes' comment (Dynamo names, matched by name)",
  predicted:
    "predicted: the imported graph's kernels followed through the rewrite (no output code of this graph)",
  none: 'no mapping in the files',
};

/** What the comments above a kernel's definition or launch say. */
export interface KernelComments {
  /** `Source Nodes: [...]` as written. */
  sourceNodes: string[];
  /** True for `Topologically Sorted` / `Unsorted Source Nodes`: Dynamo names. */
  dynamoNames: boolean;
  originalAten: string[];
  /** `Source node to ATen node mapping`: source name → post-grad names. */
  atenMapping: Map<string, string[]>;
  /** `# [Provenance debug handles] kernel:N`. */
  debugHandle?: string;
}

export interface KernelDefinition {
  name: string;
  kind: 'triton' | 'cpp';
  /** 1-based line of `name = async_compile.…(`. */
  line: number;
  comments: KernelComments;
  /**
   * The name a profiler records the kernel under, when its source says (C++ kernels generated
   * with TORCHINDUCTOR_CPP_ENABLE_KERNEL_PROFILE=1: `RAIIAtenRecordFunctionHandle …("graph_2_cpp_fused_…")`,
   * torch/_inductor/codegen/cpp.py). The `graph_<n>` tells this graph's kernels from another's of the same name.
   */
  recordName?: string;
}

export interface KernelLaunch {
  /** 0-based position in `call()`'s launch order. */
  index: number;
  /** The kernel's name (`cpp_fused_mul_silu_1`), or the called op (`extern_kernels.mm`, `torch.ops.vllm.all_reduce.default`). */
  kernel: string;
  kind: KernelKind;
  line: number;
  comments: KernelComments;
  /** The definition's `recordName`. */
  recordName?: string;
}

export interface OutputCode {
  kernels: KernelDefinition[];
  launches: KernelLaunch[];
}

/** `inductor_provenance_tracking_node_mappings.json`: the parts read here. */
export interface ProvenanceMapping {
  preToPost: Record<string, string[]>;
  cppCodeToPost: Record<string, string[]>;
}

export class OutputCodeError extends Error {
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(line === undefined ? message : `line ${line}: ${message}`);
    this.name = 'OutputCodeError';
  }
}

/** Whether a text looks like Inductor's output code (what the loaders route on). */
export function isOutputCode(text: string): boolean {
  return /\basync_compile\b/.test(text.slice(0, 200_000)) && /\bdef call\(/.test(text);
}

const DEFINITION = /^(\w+)\s*=\s*async_compile\.(triton|cpp_pybinding|cpp)\(/;
const COMMENT = /^\s*#\s?(.*)$/;
const RECORD = /RAIIAtenRecordFunctionHandle\s+\w+\("([^"]+)"/;

function splitList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

function emptyComments(): KernelComments {
  return { sourceNodes: [], dynamoNames: false, originalAten: [], atenMapping: new Map() };
}

/** Reads a block of comment lines (without their `#`). */
function readComments(lines: readonly string[]): KernelComments {
  const c = emptyComments();
  let inMapping = false;
  for (const l of lines) {
    const src = /(Topologically Sorted |Unsorted )?Source Nodes: \[([^\]]*)\]/.exec(l);
    if (src) {
      c.sourceNodes = splitList(src[2]);
      c.dynamoNames = src[1] !== undefined;
      const aten = /Original ATen: \[([^\]]*)\]/.exec(l);
      if (aten) c.originalAten = splitList(aten[1]);
      inMapping = false;
      continue;
    }
    const handle = /^\[Provenance debug handles\]\s+(\S+)/.exec(l.trim());
    if (handle) {
      c.debugHandle = handle[1];
      continue;
    }
    if (/^Source node to ATen node mapping:/.test(l.trim())) {
      inMapping = true;
      continue;
    }
    const pair = /^\s+(\S+)\s+=>\s+(.*)$/.exec(l);
    if (inMapping && pair) {
      c.atenMapping.set(pair[1], splitList(pair[2]));
      continue;
    }
    inMapping = false;
  }
  return c;
}

/** The called name at the start of a statement: `extern_kernels.mm`, `triton_poi_fused_0.run`, `torch.ops.vllm.x.default`. */
const CALL = /^(?:[\w, ]+=\s*)?([A-Za-z_][\w.]*)\(/;

function launchOf(
  stmt: string,
  defined: ReadonlyMap<string, KernelDefinition>,
): { kernel: string; kind: KernelKind; recordName?: string } | undefined {
  const m = CALL.exec(stmt);
  if (!m) return undefined;
  const callee = m[1];
  const own = defined.get(callee.endsWith('.run') ? callee.slice(0, -4) : callee);
  if (own) return { kernel: own.name, kind: own.kind, recordName: own.recordName };
  if (callee.startsWith('extern_kernels.')) return { kernel: callee, kind: 'extern' };
  // `aten = torch.ops.aten` is the file's own alias.
  if (callee.startsWith('aten.')) return { kernel: `torch.ops.${callee}`, kind: 'extern' };
  if (callee.startsWith('torch.ops.aten.')) return { kernel: callee, kind: 'extern' };
  if (callee.startsWith('torch.ops.')) return { kernel: callee, kind: 'custom' };
  return undefined;
}

/** Lines of a function's body: those indented deeper than its `def`, up to the first that is not. */
function bodyOf(lines: readonly string[], defLine: number): number[] {
  const indent = /^\s*/.exec(lines[defLine])![0].length;
  const out: number[] = [];
  for (let i = defLine + 1; i < lines.length; i++) {
    const l = lines[i];
    if (l.trim() === '') continue;
    if (/^\s*/.exec(l)![0].length <= indent) break;
    out.push(i);
  }
  return out;
}

export function parseOutputCode(text: string): OutputCode {
  const lines = text.split('\n');
  const kernels: KernelDefinition[] = [];
  const defined = new Map<string, KernelDefinition>();
  const functions = new Map<string, number>();
  let pending: string[] = [];
  let inString: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (inString) {
      // A kernel's source: ends at the line that closes its quotes.
      const record = RECORD.exec(line);
      if (record && kernels.length) kernels[kernels.length - 1].recordName ??= record[1];
      if (line.includes(inString)) inString = null;
      continue;
    }
    const def = DEFINITION.exec(line);
    if (def) {
      const k: KernelDefinition = {
        name: def[1],
        kind: def[2] === 'triton' ? 'triton' : 'cpp',
        line: i + 1,
        comments: readComments(pending),
      };
      kernels.push(k);
      defined.set(k.name, k);
      const quote = /(r?)('''|""")/.exec(line.slice(def[0].length));
      if (quote) {
        const rest = line.slice(def[0].length + quote.index + quote[0].length);
        if (!rest.includes(quote[2])) inString = quote[2];
      }
      pending = [];
      continue;
    }
    const fn = /^\s*def (call|partition_\d+)\(/.exec(line);
    if (fn) functions.set(fn[1], i);
    const c = COMMENT.exec(line);
    if (c) pending.push(c[1]);
    else if (line.trim() !== '') pending = [];
  }
  const callAt = functions.get('call');
  if (callAt === undefined) throw new OutputCodeError('no `def call(` in the file: not Inductor output code');

  const launches: KernelLaunch[] = [];
  const visit = (defLine: number, seen: Set<string>) => {
    let block: string[] = [];
    let lastWasComment = false;
    for (const i of bodyOf(lines, defLine)) {
      const line = lines[i];
      const c = COMMENT.exec(line);
      if (c) {
        // A comment block after code starts afresh; it describes the next launch.
        if (!lastWasComment) block = [];
        block.push(c[1]);
        lastWasComment = true;
        continue;
      }
      lastWasComment = false;
      const stmt = line.trim();
      // A graph partition runs where call() calls it (cudagraph partitions, torch ≥ 2.8).
      const part = /^(?:\w+\s*=\s*)?(?:self\.)?(partition_\d+)\(/.exec(stmt);
      if (part && functions.has(part[1]) && !seen.has(part[1])) {
        visit(functions.get(part[1])!, new Set([...seen, part[1]]));
        continue;
      }
      const l = launchOf(stmt, defined);
      if (!l) continue;
      launches.push({ index: launches.length, ...l, line: i + 1, comments: readComments(block) });
      block = [];
    }
  };
  visit(callAt, new Set());
  return { kernels, launches };
}

/** Reads the provenance mapping JSON; a missing part reads as empty. */
export function parseProvenance(text: string): ProvenanceMapping {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new OutputCodeError(`provenance mapping: not JSON (${(e as Error).message})`);
  }
  const rec = (v: unknown): Record<string, string[]> =>
    v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, string[]>) : {};
  const d = rec(data) as unknown as Record<string, unknown>;
  if (!('cppCodeToPost' in d) && !('preToPost' in d))
    throw new OutputCodeError('provenance mapping: neither cppCodeToPost nor preToPost in the file');
  return { preToPost: rec(d.preToPost), cppCodeToPost: rec(d.cppCodeToPost) };
}

export function isProvenanceMapping(text: string): boolean {
  return /"(cppCodeToPost|preToPost)"/.test(text.slice(0, 4096));
}

/** One launch drawn on a graph: the nodes of that graph it covers and where they came from. */
export interface KernelGroup {
  launch: KernelLaunch;
  /** Nodes of the graph, in graph order. */
  nodes: string[];
  source: MappingSource;
}

/** The definition's comments where the launch's own say nothing (Triton kernels carry them above their source). */
function commentsOf(l: KernelLaunch, defs: ReadonlyMap<string, KernelDefinition>): KernelComments {
  const own = l.comments;
  const def = defs.get(l.kernel)?.comments;
  if (!def) return own;
  const names = own.sourceNodes.length ? own : def;
  return {
    sourceNodes: names.sourceNodes,
    dynamoNames: names.dynamoNames,
    originalAten: names.originalAten,
    atenMapping: own.atenMapping.size ? own.atenMapping : def.atenMapping,
    debugHandle: own.debugHandle,
  };
}

/** The nodes a launch covers, by the strongest source that names any node of `names`. */
function launchNodes(
  l: KernelLaunch,
  c: KernelComments,
  names: ReadonlySet<string> | null,
  prov: ProvenanceMapping | undefined,
): { nodes: string[]; source: MappingSource } {
  const keep = (xs: Iterable<string>) => [...new Set(xs)].filter((n) => !names || names.has(n));
  const tries: [MappingSource, () => string[]][] = [
    [
      'provenance',
      () => (prov ? (prov.cppCodeToPost[c.debugHandle ?? ''] ?? prov.cppCodeToPost[l.kernel] ?? []) : []),
    ],
    ['aten-mapping', () => [...c.atenMapping.values()].flat()],
    ['source-nodes', () => (c.dynamoNames ? [] : c.sourceNodes)],
    ['dynamo-names', () => (c.dynamoNames ? c.sourceNodes.flatMap((s) => prov?.preToPost[s] ?? [s]) : [])],
  ];
  for (const [source, nodesOf] of tries) {
    const nodes = keep(nodesOf());
    if (nodes.length) return { nodes, source };
  }
  return { nodes: [], source: 'none' };
}

/**
 * Each launch's nodes in a graph whose node names are `graphOrder` (post-grad names, in order);
 * with no graph (null), every name the files give, in the order they give them.
 * A node claimed by an earlier launch with a stronger source stays with it: the sorted comments
 * of extern kernels repeat the nodes of the C++ kernels before them.
 */
export function kernelGroups(
  code: OutputCode,
  graphOrder: readonly string[] | null,
  prov?: ProvenanceMapping,
): KernelGroup[] {
  const names = graphOrder && new Set(graphOrder);
  const order = new Map(graphOrder?.map((n, i) => [n, i]));
  const defs = new Map(code.kernels.map((k) => [k.name, k]));
  const found = code.launches.map((l) => ({
    launch: l,
    ...launchNodes(l, commentsOf(l, defs), names, prov),
  }));
  const rank = (s: MappingSource) => MAPPING_SOURCES.indexOf(s);
  const owner = new Map<string, { source: MappingSource; index: number }>();
  for (const g of found)
    for (const n of g.nodes) {
      const was = owner.get(n);
      if (!was || rank(g.source) < rank(was.source))
        owner.set(n, { source: g.source, index: g.launch.index });
    }
  return found.map((g) => ({
    ...g,
    nodes: g.nodes
      .filter((n) => owner.get(n)!.index === g.launch.index)
      .sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0)),
  }));
}

/** Kernels and launches of one graph's output code, by kind. */
export interface KernelCounts {
  kernels: number;
  launches: number;
  byKind: Record<KernelKind, number>;
}

export function kernelCounts(code: OutputCode): KernelCounts {
  const byKind: Record<KernelKind, number> = { triton: 0, cpp: 0, extern: 0, custom: 0 };
  for (const l of code.launches) byKind[l.kind]++;
  return {
    kernels: new Set(code.launches.map((l) => l.kernel)).size,
    launches: code.launches.length,
    byKind,
  };
}

/** How the kernel list changes from one output code to another (before / after a vLLM pass). */
export interface KernelListChange {
  /** Kernels only the before code launches. */
  gone: string[];
  /** Kernels only the after code launches. */
  added: string[];
  /** After kernels whose nodes include those of several before kernels: merged. */
  merged: { into: string; from: string[] }[];
}

/**
 * Kernel names match across the two codes as Inductor names them (`cpp_fused_<ops>_<n>`: the
 * index may shift, so the name without its trailing index is compared). Merges are read from the
 * nodes: an after kernel covering nodes that several before kernels covered (by name).
 */
export function kernelListChange(
  before: readonly KernelGroup[],
  after: readonly KernelGroup[],
): KernelListChange {
  const stem = (k: string) => k.replace(/_\d+$/, '');
  const count = (gs: readonly KernelGroup[]) => {
    const m = new Map<string, number>();
    for (const g of gs) m.set(stem(g.launch.kernel), (m.get(stem(g.launch.kernel)) ?? 0) + 1);
    return m;
  };
  const b = count(before),
    a = count(after);
  const gone: string[] = [],
    added: string[] = [];
  for (const [k, n] of b) for (let i = a.get(k) ?? 0; i < n; i++) gone.push(k);
  for (const [k, n] of a) for (let i = b.get(k) ?? 0; i < n; i++) added.push(k);
  const kernelOfBefore = new Map<string, string>();
  for (const g of before) for (const n of g.nodes) kernelOfBefore.set(n, g.launch.kernel);
  const merged: KernelListChange['merged'] = [];
  for (const g of after) {
    const from = [...new Set(g.nodes.map((n) => kernelOfBefore.get(n)).filter((k) => k !== undefined))];
    if (from.length > 1) merged.push({ into: g.launch.kernel, from });
  }
  return { gone, added, merged };
}
