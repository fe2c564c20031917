// The pipeline: each pass with how many sites it would rewrite now, apply all or one site,
// undo/redo, and a scrubber over the intermediate graphs.

import { useMemo, useState } from 'react';
import { formatSavedBytes, passSavings, type PassSaving } from '../../graph/cost/passSavings.ts';
import { PROFILES } from '../../graph/cost/profiles.ts';
import type { Graph } from '../../graph/ir.ts';
import { resolveOptions } from '../../graph/passes/options.ts';
import type { PassName, PassOptions } from '../../graph/passes/pipeline.ts';
import { shownStage, useStore } from '../store/index.ts';
import { PASS_LIST } from '../store/passesSlice.ts';
import { PASS_DESCRIPTIONS } from '../../graph/passes/pipeline.ts';
import { PassWhyList } from './PassWhyList.tsx';
import { calledOp } from '../../graph/call.ts';
import { opKind } from '../../graph/ops.ts';
import { DumpStages } from './DumpStages.tsx';
import { UnevaluatedGates } from './UnevaluatedGates.tsx';
import { useResolvedPassConfig } from './PassConfigPanel.tsx';
import type { ResolvedPassConfig } from '../store/passConfigSlice.ts';

/** The allreduce-rmsnorm pass's count is the headline: how many all-reduces would fuse now. */
export const FUSION_PASS = 'allreduce-rmsnorm';

/** Graphs above this size are not priced per pass on every change (each pass would run again). */
export const PRICE_PASSES_UP_TO_NODES = 3000;

/** What each pass would save on the shown graph, in the cost model's terms (the Cost tab's settings). */
function usePassSavings(graph: Graph | undefined, gates: PassOptions): Map<string, PassSaving> | null {
  const profileId = useStore((s) => s.profileId);
  const tokens = useStore((s) => s.tokens);
  const costTp = useStore((s) => s.costTp);
  return useMemo(() => {
    if (!graph || graph.nodes.length > PRICE_PASSES_UP_TO_NODES) return null;
    const profile = PROFILES[profileId] ?? Object.values(PROFILES)[0]!;
    const tp = costTp ?? resolveOptions(graph, gates).worldSize;
    try {
      const rows = passSavings(graph, PASS_LIST as PassName[], gates, profile, { tp, tokens });
      return new Map(rows.map((r) => [r.pass, r]));
    } catch {
      return null; // a pass that throws says so when applied; the list stays without prices
    }
  }, [graph, gates, profileId, tokens, costTp]);
}

function savingLabel(s: PassSaving): string {
  return `−${s.launches} launch${s.launches === 1 ? '' : 'es'} · ${formatSavedBytes(s.hbmBytes)}`;
}

/**
 * While vLLM's config drives the pipeline: the pass's price beside it (in the sites badge's title
 * otherwise), and whether the config runs it in the chosen range, with the bound that left it out.
 */
function PassVllmNotes({
  pass,
  saved,
  vllm,
}: {
  pass: PassName;
  saved: PassSaving | undefined;
  vllm: ResolvedPassConfig | null;
}) {
  if (!vllm) return null;
  const outOfRange = vllm.outOfRange.find((o) => o.pass === pass);
  return (
    <>
      {saved && saved.sites > 0 && (
        <span
          className="pass-saves muted"
          data-testid={`saves-${pass}`}
          title={`The cost model on this graph: ${saved.launches} kernel launches and ${formatSavedBytes(saved.hbmBytes)} of HBM traffic saved (link ${formatSavedBytes(saved.linkBytesPerRank)} per rank), ${saved.us.toFixed(1)} µs`}
        >
          {savingLabel(saved)}
        </span>
      )}
      {(outOfRange || !vllm.passes.includes(pass)) && (
        <span
          className="pass-vllm muted"
          data-testid={`vllm-${pass}`}
          title={outOfRange?.why ?? "vLLM's config does not run this pass"}
        >
          {outOfRange ? 'not applicable in this range' : 'not in vLLM config'}
        </span>
      )}
    </>
  );
}

function stepLabel(step: { pass: string; site?: string } | null): string {
  if (!step) return 'imported graph';
  return step.site ? `${step.pass} @ ${step.site}` : step.pass;
}

export function PassPanel() {
  const sites = useStore((s) => s.sites);
  const passWhy = useStore((s) => s.passWhy);
  const steps = useStore((s) => s.steps);
  const cursor = useStore((s) => s.cursor);
  const stages = useStore((s) => s.stages);
  const scrub = useStore((s) => s.scrub);
  const rewriteError = useStore((s) => s.rewriteError);
  const shown = useStore(shownStage);
  const applyPass = useStore((s) => s.applyPass);
  const applyPipeline = useStore((s) => s.applyPipeline);
  const undo = useStore((s) => s.undo);
  const redo = useStore((s) => s.redo);
  const setScrub = useStore((s) => s.setScrub);
  const select = useStore((s) => s.select);
  const [open, setOpen] = useState<string | null>(null);
  const gates = useStore((s) => s.gates);
  const savings = usePassSavings(shown?.graph, gates);
  const vllm = useResolvedPassConfig();

  const fused = shown ? shown.graph.nodes.filter((n) => opKind(calledOp(n)) === 'fused').length : 0;
  const shownIndex = scrub ?? stages.length - 1;

  return (
    <section className="panel pass-panel" aria-labelledby="pass-panel-title">
      <header className="panel-head">
        <h2 id="pass-panel-title">Rewrite</h2>
        <div className="toolbar">
          <button
            type="button"
            onClick={undo}
            disabled={cursor === 0}
            aria-label="Undo"
            title="Undo (Ctrl+Z)"
          >
            ↶
          </button>
          <button
            type="button"
            onClick={redo}
            disabled={cursor >= steps.length}
            aria-label="Redo"
            title="Redo (Ctrl+Shift+Z)"
          >
            ↷
          </button>
        </div>
      </header>
      <div className="headline" aria-live="polite">
        <div className="stat" data-testid="fusable-sites">
          <span className="stat-value">{sites[FUSION_PASS]?.length ?? 0}</span>
          <span className="stat-label">fusable sites</span>
        </div>
        <div className="stat" data-testid="fused-nodes">
          <span className="stat-value">{fused}</span>
          <span className="stat-label">fused nodes</span>
        </div>
      </div>
      <ol className="pass-list">
        {PASS_LIST.map((pass) => {
          const list = sites[pass] ?? [];
          const why = passWhy[pass] ?? [];
          const saved = savings?.get(pass);
          return (
            <li key={pass} className="pass-row">
              <div className="pass-line">
                <button
                  type="button"
                  className="disclosure"
                  aria-expanded={open === pass}
                  aria-label={`Sites of ${pass}`}
                  onClick={() => setOpen(open === pass ? null : pass)}
                  disabled={list.length === 0 && why.length === 0}
                >
                  {open === pass ? '▾' : '▸'}
                </button>
                <span className="pass-name" title={PASS_DESCRIPTIONS[pass]}>
                  {pass}
                </span>
                <span
                  className={`badge${list.length ? ' live' : ''}`}
                  aria-label={`${pass} sites`}
                  title={saved && saved.sites > 0 ? `saves ${savingLabel(saved)} (cost model)` : undefined}
                >
                  {list.length}
                </span>
                <PassVllmNotes pass={pass} saved={saved} vllm={vllm} />
                <button
                  type="button"
                  onClick={() => applyPass(pass)}
                  disabled={list.length === 0}
                  aria-label={`Apply ${pass}`}
                >
                  Apply
                </button>
              </div>
              {open === pass && why.length > 0 && <PassWhyList pass={pass} diagnostics={why} />}
              {open === pass && list.length > 0 && (
                <ul className="site-list" aria-label={`${pass} sites list`}>
                  {list.map((site) => (
                    <li key={site}>
                      <button type="button" className="linklike" onClick={() => select(site, 'after', true)}>
                        {site}
                      </button>
                      <button
                        type="button"
                        className="small"
                        onClick={() => applyPass(pass, site)}
                        aria-label={`Apply ${pass} at ${site}`}
                      >
                        apply
                      </button>
                    </li>
                  ))}
                </ul>
              )}
            </li>
          );
        })}
      </ol>
      <button type="button" className="primary wide" onClick={applyPipeline}>
        Run pipeline
      </button>
      {rewriteError && (
        <p className="error" role="alert">
          {rewriteError}
        </p>
      )}
      <div className="scrubber">
        <label htmlFor="stage-scrubber">
          Stage {shownIndex} / {stages.length - 1}:{' '}
          <span className="mono">{stepLabel(stages[shownIndex]?.step ?? null)}</span>
        </label>
        <input
          id="stage-scrubber"
          type="range"
          min={0}
          max={Math.max(0, stages.length - 1)}
          value={shownIndex}
          onChange={(e) => setScrub(Number(e.target.value))}
          disabled={stages.length < 2}
          aria-label="Rewrite stage"
        />
      </div>
      <UnevaluatedGates />
      <DumpStages />
    </section>
  );
}
