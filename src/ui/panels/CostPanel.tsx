// The cost model's prediction for the graph before and after the rewrite on a hardware profile,
// next to what the last run measured. Absolute times are not comparable across machines (the
// run is SwiftShader or a local GPU; the profile is an H100/H200/B200 node), so the panel sets the
// relative changes side by side.

import { useMemo } from 'react';
import { diffGraphs } from '../../graph/diff.ts';
import { graphTotals, predictGraph, type Algorithm, type GraphTotals } from '../../graph/cost/model.ts';
import type { Graph } from '../../graph/ir.ts';
import { kernelLabel } from '../graph/kernelOverlay.ts';
import { formatMicros } from '../units.ts';
import { useGraphKernels } from './KernelsPanel.tsx';
import { PROFILES } from '../../graph/cost/profiles.ts';
import { resolveOptions } from '../../graph/passes/options.ts';
import type { Spread } from '../../runtime/timing.ts';
import { reportIsStale } from '../store/runSlice.ts';
import { CLOCK } from './ResultsTable.tsx';
import { shownStage, useStore } from '../store/index.ts';
import { formatBytes } from './Inspector.tsx';
import { Choice } from './Choice.tsx';
import { changedNodes, measuredEffect, type EffectPart } from './measuredEffect.ts';
import { runCaption } from './runCaption.ts';

const TP_CHOICES = [1, 2, 4, 8];
const ALGORITHMS: Algorithm[] = ['ring', 'one-shot', 'two-shot'];
const PROFILE_CHOICES = Object.entries(PROFILES).map(([id, p]) => ({ value: id, title: p.name }));

const range = (s: Spread) => `${s.min.toFixed(1)}–${s.max.toFixed(1)}`;

const pct = (before: number, after: number) =>
  before === 0 ? '—' : `${after >= before ? '+' : ''}${((100 * (after - before)) / before).toFixed(2)} %`;

/** A before / after / change table's head, its first column saying what the rows are. */
function ChangeHead({ title }: { title: string }) {
  return (
    <thead>
      <tr>
        <th>{title}</th>
        <th className="num">before</th>
        <th className="num">after</th>
        <th className="num">change</th>
      </tr>
    </thead>
  );
}

function Row({
  label,
  before,
  after,
  format,
}: {
  label: string;
  before: number;
  after: number;
  format: (v: number) => string;
}) {
  return (
    <tr>
      <td>{label}</td>
      <td className="num">{format(before)}</td>
      <td className="num">{format(after)}</td>
      <td className={`num ${after < before ? 'ok' : after > before ? 'error' : 'muted'}`}>
        {pct(before, after)}
      </td>
    </tr>
  );
}

/**
 * A measured part: medians with their min–max spread; the change is called (coloured, with a sign)
 * only when the spreads are apart, else it reads as noise.
 */
function MeasuredRow({ label, part, testId }: { label: string; part: EffectPart; testId: string }) {
  const { before, after, call } = part;
  const called = call === 'faster' || call === 'slower';
  return (
    <tr data-testid={testId} data-call={call}>
      <td>{label}</td>
      <td className="num" title={`min–max ${range(before)} µs`}>
        {before.median.toFixed(1)} <span className="dim">({range(before)})</span>
      </td>
      <td className="num" title={`min–max ${range(after)} µs`}>
        {after.median.toFixed(1)} <span className="dim">({range(after)})</span>
      </td>
      <td className={`num ${called ? (call === 'faster' ? 'ok' : 'error') : 'muted'}`}>
        {called ? `${pct(before.median, after.median)} (${call})` : call}
      </td>
    </tr>
  );
}

export function CostPanel() {
  const stages = useStore((s) => s.stages);
  const shown = useStore(shownStage);
  const gates = useStore((s) => s.gates);
  const profileId = useStore((s) => s.profileId);
  const setProfile = useStore((s) => s.setProfile);
  const tokens = useStore((s) => s.tokens);
  const setTokens = useStore((s) => s.setTokens);
  const tpChoice = useStore((s) => s.costTp);
  const setCostTp = useStore((s) => s.setCostTp);
  const algorithm = useStore((s) => s.costAlgorithm);
  const setCostAlgorithm = useStore((s) => s.setCostAlgorithm);

  const before = stages[0]?.graph;
  const after = shown?.graph;
  const report = useStore((s) => s.report);
  const ranSettings = useStore((s) => s.ranSettings);
  // With a run, the prediction is for the run's own ranks, so the two sit in one table.
  const worldSize = before ? resolveOptions(before, gates).worldSize : 1;
  const defaultTp = report && ranSettings ? ranSettings.ranks : worldSize;
  const tp = tpChoice ?? defaultTp;
  const profile = PROFILES[profileId] ?? Object.values(PROFILES)[0];
  const predicted = useMemo((): { before: GraphTotals; after: GraphTotals } | { error: string } | null => {
    if (!before || !after) return null;
    try {
      return {
        before: graphTotals(before, profile, { tp, tokens, algorithm }),
        after: graphTotals(after, profile, { tp, tokens, algorithm }),
      };
    } catch (e) {
      return { error: (e as Error).message };
    }
  }, [before, after, profile, tp, tokens, algorithm]);
  return (
    <div className="cost-panel">
      <div className="form-grid">
        <Choice
          id="cost-profile"
          label="Hardware"
          value={profileId}
          options={PROFILE_CHOICES}
          onChange={setProfile}
        />
        <Choice<number>
          id="cost-tp"
          label="TP degree"
          value={tpChoice}
          unset={{
            label: report && ranSettings ? `the run's ranks (${defaultTp})` : `world size (${worldSize})`,
            choose: () => setCostTp(null),
          }}
          options={TP_CHOICES}
          onChange={setCostTp}
        />
        <label htmlFor="cost-tokens">Tokens</label>
        <input
          id="cost-tokens"
          type="number"
          min={1}
          step={64}
          value={tokens}
          onChange={(e) => {
            const v = Math.floor(Number(e.target.value));
            if (v >= 1) setTokens(v);
          }}
        />
        <Choice
          id="cost-algorithm"
          label="All-reduce"
          value={algorithm}
          options={ALGORITHMS}
          onChange={setCostAlgorithm}
        />
        <span className="muted cost-profile-name">{profile.name}</span>
      </div>
      <div>
        {predicted && 'error' in predicted && (
          <p className="error" role="alert">
            Cost model: {predicted.error}
          </p>
        )}
        {predicted && !('error' in predicted) && (
          <PredictedCostTable
            predicted={predicted}
            title={`predicted on ${profileId}, TP${tp}, ${tokens} tokens`}
          />
        )}
        <MeasuredEffectTable tp={tp} />
        {before && <TraceBesidePrediction graph={before} profileId={profileId} tp={tp} />}
      </div>
    </div>
  );
}

/** The cost model's prediction, before and after: roofline time, launches, HBM and link bytes. */
function PredictedCostTable({
  predicted,
  title,
}: {
  predicted: { before: GraphTotals; after: GraphTotals };
  title: string;
}) {
  return (
    <table className="grid" aria-label="Predicted and measured cost" data-testid="cost-table">
      <ChangeHead title={title} />
      <tbody>
        <Row
          label="time (µs, serial roofline)"
          before={predicted.before.us}
          after={predicted.after.us}
          format={(v) => v.toFixed(1)}
        />
        <Row
          label="kernel launches"
          before={predicted.before.launches}
          after={predicted.after.launches}
          format={String}
        />
        <Row
          label="HBM traffic"
          before={predicted.before.hbmBytes}
          after={predicted.after.hbmBytes}
          format={formatBytes}
        />
        <Row
          label="link bytes per rank"
          before={predicted.before.linkBytesPerRank}
          after={predicted.after.linkBytesPerRank}
          format={formatBytes}
        />
      </tbody>
    </table>
  );
}

/**
 * The last run's measured effect beside the prediction: the nodes the rewrite changed apart from
 * the untouched ones (measuredEffect.ts), by the Results tab's method, named by the run.
 */
function MeasuredEffectTable({ tp }: { tp: number }) {
  const stages = useStore((s) => s.stages);
  const cursor = useStore((s) => s.cursor);
  const report = useStore((s) => s.report);
  const ranSettings = useStore((s) => s.ranSettings);
  const runNumber = useStore((s) => s.runNumber);
  const timing = useStore((s) => s.timing);
  const stale = useStore(reportIsStale);
  const before = stages[0]?.graph;
  const runAfter = stages[cursor]?.graph;
  const effect = useMemo(() => {
    if (!timing || !before || !runAfter) return null;
    const diff = diffGraphs(
      before,
      runAfter,
      stages.slice(1, cursor + 1).flatMap((st) => st.matches),
    );
    return measuredEffect(timing, changedNodes(diff));
  }, [timing, before, runAfter, stages, cursor]);
  const caption =
    report && ranSettings ? runCaption({ number: runNumber, settings: ranSettings, timing }) : null;
  return (
    <>
      {effect && timing && caption && (
        <table className="grid" aria-label="Measured effect" data-testid="cost-measured">
          <ChangeHead title={`${stale ? 'stale: ' : ''}measured, ${caption} (µs, busiest rank)`} />
          <tbody>
            <MeasuredRow
              testId="measured-changed"
              label={`nodes the rewrite changed (${effect.changed.nodes.before} → ${effect.changed.nodes.after})`}
              part={effect.changed}
            />
            <MeasuredRow
              testId="measured-rest"
              label={`untouched nodes (${effect.rest.nodes.after}), apart`}
              part={effect.rest}
            />
          </tbody>
        </table>
      )}
      {!effect && (
        <p className="muted">Run before &amp; after to see the measured change beside the prediction.</p>
      )}
      {effect && timing && (
        <p className="muted" data-testid="cost-measured-note">
          A change is called only where the {timing.runs} runs' min–max spreads are apart;{' '}
          {CLOCK[timing.before.clock]} on {report?.before.device}.
          {tp !== ranSettings?.ranks &&
            ` The prediction above is for TP${tp}; the run had ${ranSettings?.ranks} ranks.`}
          {stale && ' The steps or gates changed since this run.'}
        </p>
      )}
    </>
  );
}

/**
 * The user's profiler trace beside the prediction, kernel by kernel: the trace's time of each of
 * Inductor's launches and the model's for the nodes that launch fused (summed as separate kernels).
 * The trace ran on the user's machine, the prediction is for the profile: the columns sit side by
 * side, not as a ratio.
 */
function TraceBesidePrediction({ graph, profileId, tp }: { graph: Graph; profileId: string; tp: number }) {
  const k = useGraphKernels(graph);
  const tokens = useStore((s) => s.tokens);
  const algorithm = useStore((s) => s.costAlgorithm);
  const trace = useStore((s) => s.profilerTrace);
  const perNode = useMemo(() => {
    try {
      const p = PROFILES[profileId] ?? Object.values(PROFILES)[0];
      return new Map(predictGraph(graph, p, { tp, tokens, algorithm }).perNode.map((t) => [t.name, t.us]));
    } catch {
      return null;
    }
  }, [graph, profileId, tp, tokens, algorithm]);
  if (!k?.match || !trace) return null;
  const rows = k.drawn.filter((g) => k.match!.byLaunch.has(g.launch.index));
  return (
    <table className="grid" aria-label="Predicted and traced, per kernel" data-testid="cost-trace">
      <thead>
        <tr>
          <th>{`kernel (imported graph) · trace ${trace.file}`}</th>
          <th className="num">nodes</th>
          <th className="num">{`predicted on ${profileId}`}</th>
          <th className="num">trace</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((g) => {
          const predicted = perNode ? g.nodes.reduce((s, n) => s + (perNode.get(n) ?? 0), 0) : null;
          return (
            <tr key={g.launch.index} data-testid="cost-trace-row" data-kernel={g.launch.kernel}>
              <td className="mono">{kernelLabel(g)}</td>
              <td className="num">{g.nodes.length}</td>
              <td className="num">{predicted === null ? '—' : formatMicros(predicted)}</td>
              <td className="num">{formatMicros(k.match!.byLaunch.get(g.launch.index)!.us)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
