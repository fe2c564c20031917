// vLLM's gates on the all-reduce + RMSNorm fusion. Changing one replays the rewrite steps, so the
// counts and the reasons below recount at once.

import { useState } from 'react';
import { reduceGroups } from '../../graph/passes/fusionGate.ts';
import { DEFAULT_TP_GROUP, resolveOptions } from '../../graph/passes/options.ts';
import type { PassOptions } from '../../graph/passes/pipeline.ts';
import { shownStage, useStore } from '../store/index.ts';

const WORLD_SIZES = [1, 2, 3, 4, 6, 8];
const GPUS: { id: NonNullable<PassOptions['gpu']>; label: string }[] = [
  { id: 'hopper', label: 'Hopper' },
  { id: 'blackwell', label: 'Blackwell' },
];

/**
 * Typing is free (an empty field, a half-typed number); the gate takes the value when it is a
 * whole number ≥ 1, at each keystroke, and the field shows the gate again when it loses focus.
 */
function MaxTokensInput({ value, onCommit }: { value: number | undefined; onCommit: (v: number) => void }) {
  const [draft, setDraft] = useState<string | null>(null);
  const invalid = (draft !== null && !/^\d+$/.test(draft.trim())) || (draft !== null && Number(draft) < 1);
  return (
    <>
      <input
        id="gate-tokens"
        type="text"
        inputMode="numeric"
        value={draft ?? (value === undefined ? '' : String(value))}
        aria-invalid={invalid ? 'true' : 'false'}
        title={invalid ? 'max tokens must be a whole number ≥ 1' : undefined}
        onFocus={(e) => {
          setDraft(e.target.value);
        }}
        onChange={(e) => {
          setDraft(e.target.value);
          const t = e.target.value.trim();
          if (/^\d+$/.test(t) && Number(t) >= 1) onCommit(Number(t));
        }}
        onBlur={() => setDraft(null)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') (e.target as HTMLInputElement).blur();
        }}
      />
      {invalid && (
        <span className="error field-error" role="alert">
          whole number ≥ 1
        </span>
      )}
    </>
  );
}

export function GatePanel() {
  const gates = useStore((s) => s.gates);
  const setGates = useStore((s) => s.setGates);
  const shown = useStore(shownStage);
  // What the passes will use: the graph's own world size when the gate is left unset.
  const resolved = shown ? resolveOptions(shown.graph, gates) : undefined;
  const groups = shown ? reduceGroups(shown.graph) : [];
  return (
    <section className="panel gate-panel" aria-labelledby="gate-panel-title">
      <header className="panel-head">
        <h2 id="gate-panel-title">Gates</h2>
      </header>
      <div className="gate-grid">
        <div className="field">
          <label htmlFor="gate-world">World size</label>
          <select
            id="gate-world"
            value={gates.worldSize ?? ''}
            onChange={(e) =>
              setGates({ worldSize: e.target.value === '' ? undefined : Number(e.target.value) })
            }
          >
            <option value="">
              {resolved?.worldSizeFrom === 'graph'
                ? `graph: ${resolved.worldSize}`
                : `default: ${resolved?.worldSize ?? 4}`}
            </option>
            {WORLD_SIZES.map((w) => (
              <option key={w} value={w}>
                {w}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="gate-gpu">GPU</label>
          <select
            id="gate-gpu"
            value={gates.gpu ?? 'hopper'}
            onChange={(e) => setGates({ gpu: e.target.value as PassOptions['gpu'] })}
          >
            {GPUS.map((g) => (
              <option key={g.id} value={g.id}>
                {g.label}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="gate-token-rule">Token gate</label>
          <select
            id="gate-token-rule"
            value={gates.tokenGate ?? 'runtime-fallback'}
            onChange={(e) => setGates({ tokenGate: e.target.value as PassOptions['tokenGate'] })}
            title="runtime fallback: the pattern always fires and the fused op falls back above max_token_num (the vLLM of PR #28841). compile range: graphs whose token count exceeds max_token_num stay unfused (later vLLM)."
          >
            <option value="runtime-fallback">at run time</option>
            <option value="compile-range">at compile</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="gate-tp-group">TP group</label>
          <select
            id="gate-tp-group"
            value={gates.tpGroup ?? DEFAULT_TP_GROUP}
            onChange={(e) => setGates({ tpGroup: e.target.value })}
            title="vLLM's patterns match only all_reduce over the tensor-parallel group (tensor_model_parallel_all_reduce); all-reduces over other groups stay unfused."
          >
            {[...new Set([gates.tpGroup ?? DEFAULT_TP_GROUP, ...groups])].map((g) => (
              <option key={g} value={g}>
                {g}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="gate-tokens">Max tokens</label>
          <MaxTokensInput
            value={gates.maxTokens ?? resolved?.maxTokens}
            onCommit={(v) => setGates({ maxTokens: v })}
          />
        </div>
      </div>
    </section>
  );
}
