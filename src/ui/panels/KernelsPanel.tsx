// The Kernels tab: Inductor's output code, its provenance mapping and a profiler trace loaded beside
// the graph. Per graph: its kernels and launches by kind, where each grouping of nodes came from,
// each launch's measured time, and before / after a pass how the kernel list changes. The graph
// views draw each launch around its nodes (kernelOverlay.ts); the Inspector names a node's kernel.

import { useMemo, useState } from 'react';
import type { Graph } from '../../graph/ir.ts';
import {
  kernelCounts,
  kernelListChange,
  MAPPING_SOURCE_LABEL,
  type KernelGroup,
} from '../../graph/artifacts/outputCode.ts';
import {
  predictKernelChange,
  stageSteps,
  type KernelChangePrediction,
  type PassKernelChange,
} from '../../graph/artifacts/kernelDiff.ts';
import { graphKernels, kernelLabel, type GraphKernels } from '../graph/kernelOverlay.ts';
import { shownStage, useStore, type AppState } from '../store/index.ts';
import type { CodeSide } from '../store/kernelsSlice.ts';
import { formatMicros } from '../units.ts';

/** The last result per graph: the views, the overlay, the Inspector and this panel ask for the same one. */
const cache = new WeakMap<Graph, { key: readonly unknown[]; value: GraphKernels }>();

/**
 * The kernels of `graph`: its own output code's when it has one (the imported graph's, or the after
 * graph's); a rewritten graph without its own, those of the imported graph's code followed through
 * the rewrite steps up to it (kernelDiff.ts).
 */
export function kernelsOfGraph(
  s: Pick<AppState, 'stages' | 'outputCode' | 'provenance' | 'profilerTrace'>,
  graph: Graph,
): GraphKernels {
  const at = s.stages.findIndex((st) => st.graph === graph);
  const side: CodeSide = at === 0 ? 'before' : 'after';
  const code = s.outputCode[side]?.code ?? null;
  const from = !code && at > 0 && s.outputCode.before ? kernelsOfGraph(s, s.stages[0].graph) : null;
  const key = [code, s.provenance, s.profilerTrace, from];
  const hit = cache.get(graph);
  if (hit && hit.key.every((k, i) => k === key[i])) return hit.value;
  const predicted = from && predictKernelChange(from.groups, s.stages[0].graph, stageSteps(s.stages, at));
  const value = graphKernels(
    graph,
    code,
    s.provenance?.mapping ?? null,
    s.profilerTrace?.trace ?? null,
    predicted,
  );
  cache.set(graph, { key, value });
  return value;
}

/** The kernels of a pane's graph, or undefined when no output code or trace is loaded. */
export function useGraphKernels(graph: Graph | undefined): GraphKernels | undefined {
  const stages = useStore((s) => s.stages);
  const outputCode = useStore((s) => s.outputCode);
  const provenance = useStore((s) => s.provenance);
  const profilerTrace = useStore((s) => s.profilerTrace);
  return useMemo(() => {
    if (!graph || (!outputCode.before && !outputCode.after && !profilerTrace)) return undefined;
    return kernelsOfGraph({ stages, outputCode, provenance, profilerTrace }, graph);
  }, [graph, stages, outputCode, provenance, profilerTrace]);
}

/** The kernels each pane draws: the two sides of a split view, or the one graph shown alone. */
export function usePaneKernels(
  first: Graph | undefined,
  second?: Graph,
): readonly [readonly KernelGroup[] | undefined, readonly KernelGroup[] | undefined] {
  const a = useGraphKernels(first)?.drawn;
  const b = useGraphKernels(second)?.drawn;
  return useMemo(() => [a, b] as const, [a, b]);
}

/** Per graph, the loaded trace's time of each node (kernelOverlay.ts), and the trace's name; null without a trace. */
export function useTraceTimes(): {
  file: string;
  events: number;
  of: (g: Graph) => ReadonlyMap<string, number>;
} | null {
  const stages = useStore((s) => s.stages);
  const outputCode = useStore((s) => s.outputCode);
  const provenance = useStore((s) => s.provenance);
  const profilerTrace = useStore((s) => s.profilerTrace);
  return useMemo(
    () =>
      profilerTrace && {
        file: profilerTrace.file,
        events: profilerTrace.trace.total,
        of: (g: Graph) => kernelsOfGraph({ stages, outputCode, provenance, profilerTrace }, g).times,
      },
    [stages, outputCode, provenance, profilerTrace],
  );
}

/** A node's kernel and its measured time, for the Inspector. */
export function NodeKernel({ graph, node }: { graph: Graph; node: string }) {
  const k = useGraphKernels(graph);
  const g = k?.kernelOf.get(node);
  const t = k?.times.get(node);
  if (!k || (!g && t === undefined)) return null;
  const launchTime = g ? k.match?.byLaunch.get(g.launch.index) : undefined;
  return (
    <>
      {g && (
        <>
          <dt>kernel</dt>
          <dd className="mono" data-testid="inspector-kernel" title={MAPPING_SOURCE_LABEL[g.source]}>
            {kernelLabel(g)} <span className="muted">({g.launch.kind})</span>
          </dd>
        </>
      )}
      {t !== undefined && (
        <>
          <dt>measured</dt>
          <dd className="mono" data-testid="inspector-kernel-time">
            {formatMicros(t)}
            {launchTime && (
              <span className="muted">
                {' '}
                (trace, median of {launchTime.occurrences}
                {g && g.nodes.length > 1 ? `, the kernel's time, shared by its ${g.nodes.length} nodes` : ''})
              </span>
            )}
          </dd>
        </>
      )}
    </>
  );
}

function KernelTable({ k, label, title = label }: { k: GraphKernels; label: string; title?: string }) {
  const counts = kernelCounts({ kernels: [], launches: k.groups.map((g) => g.launch) });
  const kinds = Object.entries(counts.byKind)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${n} ${kind}`)
    .join(', ');
  return (
    <section aria-label={`Kernels of the ${label} graph`} data-testid={`kernels-${label}`}>
      <h3>
        {title}:{' '}
        <span data-testid="kernel-counts">{`${counts.kernels} kernels, ${counts.launches} launches`}</span>{' '}
        <span className="muted">({kinds})</span>
      </h3>
      {k.sources.map((s) => (
        <p key={s} className="muted" data-testid="kernel-source">
          nodes from: {MAPPING_SOURCE_LABEL[s]}
        </p>
      ))}
      <table className="grid" aria-label={`Launches of the ${label} graph`}>
        <thead>
          <tr>
            <th className="num">#</th>
            <th>kernel</th>
            <th>kind</th>
            <th>nodes</th>
            <th className="num">measured</th>
          </tr>
        </thead>
        <tbody>
          {k.groups.map((g) => {
            const t = k.match?.byLaunch.get(g.launch.index);
            return (
              <tr key={g.launch.index} data-testid="kernel-row" data-kernel={g.launch.kernel}>
                <td className="num">{g.launch.index}</td>
                <td className="mono">{g.launch.kernel}</td>
                <td>{g.launch.kind}</td>
                <td className="mono" title={MAPPING_SOURCE_LABEL[g.source]}>
                  {g.nodes.join(', ') || '—'}
                </td>
                <td className="num">{t ? formatMicros(t.us) : k.match ? 'not in trace' : ''}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {k.match?.notes.map((n) => (
        <p key={n} className="warn" data-testid="kernel-note">
          {n}
        </p>
      ))}
    </section>
  );
}

/** `torch.ops._C.rms_norm_static_fp8_quant.default` → `_C.rms_norm_static_fp8_quant`, as a reader names the op. */
function opName(kernel: string): string {
  return kernel.replace(/^torch\.ops\./, '').replace(/\.default$/, '');
}

/** One pass's predicted change: the launches that went or shrank into its fused ops, the count before → after. */
function PassChange({ c }: { c: PassKernelChange }) {
  const added = new Map<string, number>();
  for (const a of c.added) added.set(a.kernel, (added.get(a.kernel) ?? 0) + 1);
  const into = (ks: readonly string[]) => ks.map((k) => `+ ${opName(k)}`).join(', ');
  return (
    <li data-testid="kernel-pass-change" data-pass={c.pass}>
      <strong>{c.pass}</strong>:{' '}
      <span data-testid="kernel-pass-launches">{`launches ${c.launches.before} → ${c.launches.after}`}</span>
      {[...added].map(([k, n]) => (
        <span key={k} className="mono" data-testid="kernel-added">
          {' '}
          + {n} × {opName(k)}
        </span>
      ))}
      <ul>
        {c.gone.map((g, i) => (
          <li key={`g${i}`} className="mono" data-testid="kernel-gone">
            − #{g.index} {g.kernel} ({g.what}) → {into(g.into)}
          </li>
        ))}
        {c.shrunk.map((g, i) => (
          <li key={`s${i}`} className="mono" data-testid="kernel-shrunk">
            ~ #{g.index} {g.kernel} loses {g.what} → {into(g.into)}
          </li>
        ))}
      </ul>
    </li>
  );
}

function PredictedChange({ p }: { p: KernelChangePrediction }) {
  return (
    <section aria-label="Predicted kernel list change" data-testid="kernel-prediction">
      <h3>before → after, per pass (predicted from the imported graph's output code)</h3>
      <ul>
        {p.passes.map((c, i) => (
          <PassChange key={`${c.pass}-${i}`} c={c} />
        ))}
      </ul>
      <p className="muted">
        A kernel goes when a fused op took every node it computed; one that keeps code shrinks. How Inductor
        fuses what is left shows only in the after graph's own output_code.py (load it for the after graph to
        compare).
      </p>
    </section>
  );
}

/** Before / after a pass: the kernels that went, came and merged, or why there is nothing to compare. */
function KernelChange({ before, after }: { before: GraphKernels; after: GraphKernels | undefined }) {
  if (!after) return null;
  if (after.predicted) return <PredictedChange p={after.predicted} />;
  if (!after.own)
    return (
      <p className="muted" data-testid="kernels-after-note">
        The after graph has no output code of its own: Inductor's kernels are drawn only on the graph they
        were generated from (the imported one). Load the rewritten graph's output_code.py for the after side
        to see how the kernel list changes.
      </p>
    );
  const c = kernelListChange(before.groups, after.groups);
  return (
    <section aria-label="Kernel list change" data-testid="kernel-change">
      <h3>before → after</h3>
      <p>gone: {c.gone.join(', ') || 'none'}</p>
      <p>added: {c.added.join(', ') || 'none'}</p>
      {c.merged.map((m) => (
        <p key={m.into}>
          merged into {m.into}: {m.from.join(' + ')}
        </p>
      ))}
    </section>
  );
}

export function KernelsPanel() {
  const load = useStore((s) => s.loadKernelFile);
  const clear = useStore((s) => s.clearKernels);
  const error = useStore((s) => s.kernelsError);
  const loading = useStore((s) => s.traceLoading);
  const outputCode = useStore((s) => s.outputCode);
  const provenance = useStore((s) => s.provenance);
  const trace = useStore((s) => s.profilerTrace);
  const cursor = useStore((s) => s.cursor);
  const before = useStore((s) => s.stages[0]?.graph);
  const shown = useStore(shownStage);
  const after = cursor > 0 ? shown?.graph : undefined;
  const [side, setSide] = useState<CodeSide>('before');
  const kBefore = useGraphKernels(before);
  const kAfter = useGraphKernels(after);
  const files = [
    outputCode.before && `output code (imported graph): ${outputCode.before.file}`,
    outputCode.after && `output code (after graph): ${outputCode.after.file}`,
    provenance && `provenance mapping: ${provenance.file}`,
    trace && `profiler trace: ${trace.file} (${trace.trace.count} of ${trace.trace.total} events kept)`,
  ].filter(Boolean);
  return (
    <div className="kernels-panel">
      <div className="form-grid">
        <label htmlFor="kernel-files">Inductor output code, provenance mapping, profiler trace</label>
        <input
          id="kernel-files"
          type="file"
          multiple
          accept=".py,.json,.gz"
          onChange={async (e) => {
            const input = e.currentTarget;
            for (const f of [...(input.files ?? [])]) await load(f, f.name, side);
            input.value = '';
          }}
        />
        <label htmlFor="kernel-side">Output code of</label>
        <select id="kernel-side" value={side} onChange={(e) => setSide(e.target.value as CodeSide)}>
          <option value="before">the imported graph</option>
          <option value="after">the after graph</option>
        </select>
        <button type="button" onClick={clear} disabled={files.length === 0}>
          Clear
        </button>
      </div>
      {loading && (
        <p data-testid="trace-progress">
          Reading {loading.file}… <progress value={loading.read} max={loading.total || 1} />{' '}
          {Math.round((100 * loading.read) / Math.max(1, loading.total))} %
        </p>
      )}
      {error && (
        <p className="error" role="alert" data-testid="kernels-error">
          {error}
        </p>
      )}
      <ul className="muted" data-testid="kernel-files">
        {files.map((f) => (
          <li key={f as string}>{f}</li>
        ))}
      </ul>
      {kBefore?.own && <KernelTable k={kBefore} label={after ? 'before' : 'imported'} />}
      {kAfter?.own && <KernelTable k={kAfter} label="after" />}
      {kAfter?.predicted && <KernelTable k={kAfter} label="predicted" title="after (predicted)" />}
      {kBefore?.own && <KernelChange before={kBefore} after={kAfter} />}
      {trace && !kBefore?.own && (
        <p className="muted">
          Without output code, the trace is matched to the graph's custom-op and collective nodes only.
        </p>
      )}
    </div>
  );
}
