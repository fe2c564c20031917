// "Colour by": what the graph views' node fills show, for every pane at once (kind, measured time,
// bytes, |Δ| before vs after), and the per-pane overlays the views draw from the last run.

import { useEffect, useMemo } from 'react';
import type { Graph } from '../../graph/ir.ts';
import { launchesKernel, nodeCost, typeLookup } from '../../graph/cost/model.ts';
import {
  METRIC_INFO,
  OVERLAY_METRICS,
  nodeFills,
  overlayScale,
  rankLabel,
  valuesForRank,
  type OverlayLegendModel,
  type PaneOverlay,
} from '../graph/overlay.ts';
import { overlayUnavailable, shownOverlay } from '../store/overlaySlice.ts';
import { useStore } from '../store/index.ts';
import { useTraceTimes } from './KernelsPanel.tsx';

export function ColourByControl() {
  const metric = useStore((s) => s.overlayMetric);
  const rank = useStore((s) => s.overlayRank);
  const setMetric = useStore((s) => s.setOverlayMetric);
  const setRank = useStore((s) => s.setOverlayRank);
  const report = useStore((s) => s.report);
  const timing = useStore((s) => s.timing);
  const base = useStore((s) => s.base);
  const steps = useStore((s) => s.steps);
  const cursor = useStore((s) => s.cursor);
  const gates = useStore((s) => s.gates);
  const reportFor = useStore((s) => s.reportFor);
  const profilerTrace = useStore((s) => s.profilerTrace);
  const why = useMemo(
    () => overlayUnavailable({ report, timing, base, steps, cursor, gates, reportFor, profilerTrace }),
    [report, timing, base, steps, cursor, gates, reportFor, profilerTrace],
  );
  const shown = why[metric] === null ? metric : 'kind';
  const computeNodeDeltas = useStore((s) => s.computeNodeDeltas);
  // A new run while |Δ| is shown: its values are computed for it.
  useEffect(() => {
    if (shown === 'delta') computeNodeDeltas();
  }, [shown, report, computeNodeDeltas]);
  const ranks = report?.before.ranks ?? 0;
  const perRank = (shown === 'time' && !profilerTrace) || (shown === 'bytes' && why.time === null);
  return (
    <div className="colour-by" role="group" aria-label="Node colour">
      {/* Named by the label, read as "Colour: …" on screen, so the bar fits at 1024 px. */}
      <label htmlFor="colour-by" className="sr-only">
        Colour by
      </label>
      <select
        id="colour-by"
        value={shown}
        onChange={(e) => setMetric(e.target.value as typeof metric)}
        title={OVERLAY_METRICS.map((m) => (why[m] ? `${METRIC_INFO[m].label}: ${why[m]}` : ''))
          .filter(Boolean)
          .join('\n')}
      >
        {OVERLAY_METRICS.map((m) => (
          <option key={m} value={m} disabled={why[m] !== null} title={why[m] ?? undefined}>
            {`Colour: ${METRIC_INFO[m].label}`}
          </option>
        ))}
      </select>
      {perRank && ranks > 1 && (
        <>
          <label htmlFor="colour-rank" className="sr-only">
            Rank
          </label>
          <select
            id="colour-rank"
            value={String(rank)}
            onChange={(e) => setRank(e.target.value === 'max' ? 'max' : Number(e.target.value))}
          >
            <option value="max">{rankLabel('max')}</option>
            {Array.from({ length: ranks }, (_, r) => (
              <option key={r} value={r}>
                {rankLabel(r)}
              </option>
            ))}
          </select>
        </>
      )}
    </div>
  );
}

/**
 * The overlay of each given graph (a pane's graph), on one scale, or undefined for every pane
 * while the views colour by kind. A pane's graph is the run's before or after graph by identity;
 * another stage (scrubbed to) has no measured values, only the cost model's bytes.
 */
export function usePaneOverlays(
  first: Graph | undefined,
  second?: Graph,
): [PaneOverlay | undefined, PaneOverlay | undefined] {
  const shown = useStore(shownOverlay);
  const rank = useStore((s) => s.overlayRank);
  const timing = useStore((s) => s.timing);
  const report = useStore((s) => s.report);
  // Values of an earlier report are never shown against this one.
  const deltas = useStore((s) => (s.nodeDeltas?.report === s.report ? s.nodeDeltas : null));
  const tokens = useStore((s) => s.tokens);
  const runBefore = useStore((s) => s.stages[0]?.graph);
  const runAfter = useStore((s) => s.stages[s.cursor]?.graph);
  const trace = useTraceTimes();
  return useMemo(() => {
    const graphs = [first, second].filter((g): g is Graph => g !== undefined);
    if (shown === 'kind') return [undefined, undefined];
    // Checked by overlayUnavailable: a shown time or |Δ| has a current run behind it.
    const sideOf = (g: Graph) => (g === runBefore ? 'before' : g === runAfter ? 'after' : null);
    const measured = shown !== 'bytes' || (timing !== null && graphs.every((g) => sideOf(g) !== null));
    let source: string;
    let empty: string | undefined;
    let valuesOf: (g: Graph) => Map<string, number> | ReadonlyMap<string, number>;
    const runs = timing?.runs ?? 0;
    const from = `${runs} timed run${runs === 1 ? '' : 's'} after a warm-up · ${rankLabel(rank)} · ${report?.before.backend ?? ''}`;
    if (shown === 'time' && trace) {
      source = `source: trace · ${trace.file} (${trace.events} events) · median per kernel, shared by the nodes it fused`;
      valuesOf = trace.of;
    } else if (shown === 'time') {
      source = `median of ${from}`;
      valuesOf = (g) => {
        const side = sideOf(g);
        return side && timing
          ? valuesForRank(
              timing[side].nodes.map((t) => ({ node: t.node, rank: t.rank, value: t.us.median })),
              rank,
            )
          : new Map();
      };
    } else if (shown === 'bytes' && measured) {
      source = `the run's trace · ${rankLabel(rank)}`;
      valuesOf = (g) => {
        const side = sideOf(g)!;
        return valuesForRank(
          timing![side].nodes.map((t) => ({ node: t.node, rank: t.rank, value: t.bytes })),
          rank,
        );
      };
    } else if (shown === 'bytes') {
      source = `cost model at ${tokens} tokens (no current run of this stage)`;
      valuesOf = (g) => {
        const m = new Map<string, number>();
        const typeOf = typeLookup(g);
        for (const n of g.nodes)
          if (launchesKernel(n)) {
            const c = nodeCost(g, n, { tokens }, typeOf);
            m.set(n.name, c.bytesRead + c.bytesWritten);
          }
        return m;
      };
    } else {
      source = `on the run's inputs · CPU reference · max over ranks`;
      empty =
        deltas?.status === 'computing'
          ? `computing on the CPU reference… ${Math.round((deltas.fraction ?? 0) * 100)} %`
          : deltas?.status === 'error'
            ? `could not compute: ${deltas.error}`
            : undefined;
      valuesOf = (g) => {
        const side = sideOf(g);
        return side && deltas?.status === 'done' ? deltas[side] : new Map();
      };
    }
    const values = graphs.map(valuesOf);
    const scale = overlayScale(
      values.flatMap((v) => [...v.values()]),
      shown !== 'delta',
    );
    const legend: OverlayLegendModel = { metric: shown, source, scale, empty };
    const overlays = graphs.map((g, i) => ({
      values: values[i],
      legend,
      fills: nodeFills([...g.inputs.map((n) => n.name), ...g.nodes.map((n) => n.name)], values[i], scale),
    }));
    return [overlays[0], overlays[1]];
  }, [shown, rank, timing, report, deltas, tokens, runBefore, runAfter, first, second, trace]);
}
