// Fused sites of the shown step that passed a gate without evaluating it (a graph with no shapes,
// such as a str(graph) dump), and what was assumed instead — the same list the CLI report gives.

import { shownStage, useStore } from '../store/index.ts';

export function UnevaluatedGates() {
  const stage = useStore(shownStage);
  const open = stage?.matches.filter((m) => m.unevaluated?.length) ?? [];
  if (open.length === 0) return null;
  return (
    <details className="unevaluated-gates" data-testid="unevaluated-gates">
      <summary>
        {open.length} site{open.length > 1 ? 's' : ''} fused with a gate not evaluated
      </summary>
      <ul>
        {open.map((m) => (
          <li key={m.site}>
            <span className="mono">{m.site}</span>: {m.unevaluated!.join('; ')}
          </li>
        ))}
      </ul>
    </details>
  );
}
