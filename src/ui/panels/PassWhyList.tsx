// A pass's own "why not" entries in the pass list: what it refused in the shown graph, each with
// the node that blocked it (a link that selects it) and the reason — for the passes whose
// refusals the all-reduce why panel does not cover (sequence parallelism, async TP, moe-unpad).

import type { Diagnostic } from '../../graph/passes/pipeline.ts';
import { useStore } from '../store/index.ts';

const SHOWN = 20;

export function PassWhyList({ pass, diagnostics }: { pass: string; diagnostics: Diagnostic[] }) {
  const select = useStore((s) => s.select);
  return (
    <ul className="site-list pass-why" aria-label={`Why ${pass} did not fire`}>
      {diagnostics.slice(0, SHOWN).map((d, i) => (
        <li key={`${d.node}-${i}`}>
          <button type="button" className="linklike mono" onClick={() => select(d.node, 'after', true)}>
            {d.node}
          </button>
          <span className="why-reason">{d.reason}</span>
        </li>
      ))}
      {diagnostics.length > SHOWN && <li className="muted">… and {diagnostics.length - SHOWN} more</li>}
    </ul>
  );
}
