// The cost model's prediction for the graph before and after the rewrite on a hardware profile,
// next to what the last run measured. Absolute times are not comparable across machines (the
// run is SwiftShader or a local GPU; the profile is an H100/H200/B200 node), so the panel sets the
// relative changes side by side.

import { useMemo } from 'react';
import { graphTotals, type Algorithm, type GraphTotals } from '../../graph/cost/model.ts';
import { PROFILES } from '../../graph/cost/profiles.ts';
import { resolveOptions } from '../../graph/passes/options.ts';
import type { Spread } from '../../runtime/timing.ts';
import { reportIsStale } from '../store/runSlice.ts';
import { CLOCK } from './ResultsTable.tsx';
import { shownStage, useStore } from '../store/index.ts';
import { formatBytes } from './Inspector.tsx';
import { Choice } from './Choice.tsx';

const TP_CHOICES = [1, 2, 4, 8];
const ALGORITHMS: Algorithm[] = ['ring', 'one-shot', 'two-shot'];
const PROFILE_CHOICES = Object.entries(PROFILES).map(([id, p]) => ({ value: id, title: p.name }));

const spreadOverlaps = (a: Spread, b: Spread) => a.min <= b.max && b.min <= a.max;

const pct = (before: number, after: number) =>
  before === 0 ? '—' : `${after >= before ? '+' : ''}${((100 * (after - before)) / before).toFixed(2)} %`;

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

export function CostPanel() {
  const stages = useStore((s) => s.stages);
  const shown = useStore(shownStage);
  const gates = useStore((s) => s.gates);
  const report = useStore((s) => s.report);
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
  const tp = tpChoice ?? (before ? resolveOptions(before, gates).worldSize : 1);
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
  const timing = useStore((s) => s.timing);
  const stale = useStore(reportIsStale);
  // The same method as the Results tab: the timed runs' median, after a warm-up that is never counted.
  const measured = timing ? { before: timing.before.busiestUs, after: timing.after.busiestUs } : null;

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
            label: `world size (${before ? resolveOptions(before, gates).worldSize : '—'})`,
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
          <table className="grid" aria-label="Predicted and measured cost" data-testid="cost-table">
            <thead>
              <tr>
                <th>
                  predicted on {profileId}, TP{tp}, {tokens} tokens
                </th>
                <th className="num">before</th>
                <th className="num">after</th>
                <th className="num">change</th>
              </tr>
            </thead>
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
              {measured && report && timing && (
                <Row
                  label={`${stale ? 'stale: ' : ''}measured (µs, busiest rank, median of ${timing.runs} after a warm-up; ${report.before.backend}, ${report.before.ranks} ranks)`}
                  before={measured.before.median}
                  after={measured.after.median}
                  format={(v) => v.toFixed(1)}
                />
              )}
            </tbody>
          </table>
        )}
        {!measured && (
          <p className="muted">Run before &amp; after to see the measured change beside the prediction.</p>
        )}
        {measured && timing && (
          <p className="muted" data-testid="cost-measured-note">
            Measured spread (min–max of {timing.runs} runs): before {measured.before.min.toFixed(1)}–
            {measured.before.max.toFixed(1)} µs, after {measured.after.min.toFixed(1)}–
            {measured.after.max.toFixed(1)} µs; {CLOCK[timing.before.clock]} on {report?.before.device}.
            {spreadOverlaps(measured.before, measured.after) &&
              ' The spreads overlap: the measured change is within the noise.'}
            {stale && ' The steps or gates changed since this run.'}
          </p>
        )}
      </div>
    </div>
  );
}
