// "Why didn't it fire": every all-reduce a fusion pattern does not fuse, with the node or gate
// that blocked it. A blocking node is a link that selects it; a blocking gate focuses its
// control; a fix that is a pass ("run slice-hoist") is a button that applies it. Below, every
// other pass's refusals in the shown graph, grouped by pass in pipeline order (each folded).

import { useMemo } from 'react';
import type { Diagnostic } from '../../graph/passes/pipeline.ts';
import { shownStage, useStore } from '../store/index.ts';
import { PASS_ORDER } from '../store/passesSlice.ts';
import { PassWhyList } from './PassWhyList.tsx';
import { OutOfRangeNotes } from './PassConfigPanel.tsx';
import { isFusable, refusalsByPass } from './whyGroups.ts';

/** Gate blockers the pass reports by name, and the control that changes each. */
const GATE_CONTROLS: Record<string, string> = {
  'world size': 'gate-world',
  'too many tokens': 'gate-tokens',
};

/** The pass a diagnostic's fix names ("run slice-hoist"), if it is one. */
function fixPassOf(d: Diagnostic): string | undefined {
  return d.fix ? PASS_ORDER.find((p) => d.fix === `run ${p}`) : undefined;
}

export function WhyPanel() {
  const diagnostics = useStore((s) => s.diagnostics);
  const shown = useStore(shownStage);
  const applyPass = useStore((s) => s.applyPass);
  const sites = useStore((s) => s.sites);
  const nodeNames = useMemo(() => new Set(shown?.graph.nodes.map((n) => n.name)), [shown]);
  const blocked = diagnostics.filter((d) => !isFusable(d));
  const fusable = diagnostics.length - blocked.length;
  // A pass that fixes several entries is offered once for all of them, above the list.
  const fixPasses = [...new Set(blocked.map((d) => fixPassOf(d)).filter((p) => p !== undefined))];
  return (
    <section className="panel why-panel" aria-labelledby="why-panel-title">
      <header className="panel-head">
        <h2 id="why-panel-title">Why didn't it fire?</h2>
        <span className={`badge${blocked.length ? ' warn-badge' : ''}`} aria-label="blocked all-reduces">
          {blocked.length}
        </span>
      </header>
      <p className="muted why-summary">
        {diagnostics.length === 0
          ? 'No unfused all-reduce in this graph.'
          : `${diagnostics.length} all-reduce${diagnostics.length > 1 ? 's' : ''}: ${fusable} would fuse, ${blocked.length} blocked.`}
      </p>
      <OutOfRangeNotes />
      {fixPasses.length > 0 && (
        <div className="why-actions why-fix-all">
          {fixPasses.map((pass) => (
            <button
              key={pass}
              type="button"
              className="small"
              onClick={() => applyPass(pass)}
              aria-label={`run ${pass} at every site`}
            >
              run {pass} everywhere ({sites[pass]?.length ?? 0})
            </button>
          ))}
        </div>
      )}
      {blocked.length > 0 && (
        <ul className="why-list" aria-label="Blocked fusions">
          {blocked.map((d, i) => (
            <BlockedAllReduce key={`${d.node}-${i}`} d={d} nodeNames={nodeNames} />
          ))}
        </ul>
      )}
      <RefusalGroups />
    </section>
  );
}

/** One blocked all-reduce: its node, what blocked it (a node to select or a gate to focus), why, and its fix. */
function BlockedAllReduce({ d, nodeNames }: { d: Diagnostic; nodeNames: ReadonlySet<string> }) {
  const select = useStore((s) => s.select);
  const applyPass = useStore((s) => s.applyPass);
  const sites = useStore((s) => s.sites);
  const fixPass = fixPassOf(d);
  const gate = d.blocker ? GATE_CONTROLS[d.blocker] : undefined;
  return (
    <li className="why-item">
      <div className="why-head">
        <button
          type="button"
          className="linklike mono"
          onClick={() => select(d.node, 'after', true)}
          aria-label={`Select ${d.node}`}
        >
          {d.node}
        </button>
        {d.blocker && nodeNames.has(d.blocker) && (
          <button
            type="button"
            className="small blocker"
            onClick={() => select(d.blocker!, 'after', true)}
            aria-label={`Select blocker ${d.blocker}`}
          >
            blocked by <span className="mono">{d.blocker}</span>
          </button>
        )}
        {d.blocker && !nodeNames.has(d.blocker) && (
          <button
            type="button"
            className="small gate"
            disabled={!gate}
            onClick={() => gate && document.getElementById(gate)?.focus()}
            aria-label={`Gate ${d.blocker}`}
          >
            gate: {d.blocker}
          </button>
        )}
      </div>
      <div className="why-reason">{d.reason}</div>
      {d.fix && (
        <div className="why-actions">
          {fixPass && sites[fixPass]?.includes(d.node) && (
            <button
              type="button"
              className="small primary"
              onClick={() => applyPass(fixPass, d.node)}
              aria-label={`${d.fix} at ${d.node}`}
            >
              {d.fix} here
            </button>
          )}
          {!(fixPass && sites[fixPass]?.includes(d.node)) && <span className="muted">fix: {d.fix}</span>}
        </div>
      )}
    </li>
  );
}

/** Every other pass's refusals in the shown graph, one folded group per pass in pipeline order. */
function RefusalGroups() {
  const passWhy = useStore((s) => s.passWhy);
  return refusalsByPass(passWhy).map(({ pass, refused }) => (
    <details key={pass} className="why-group">
      <summary>
        <span className="mono">{pass}</span> refused {refused.length}
      </summary>
      <PassWhyList pass={pass} diagnostics={refused} />
    </details>
  ));
}
