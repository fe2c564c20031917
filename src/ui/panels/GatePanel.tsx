// vLLM's gates on the all-reduce + RMSNorm fusion. Changing one replays the rewrite steps, so the
// counts and the reasons below recount at once.

import { useState } from 'react';
import { reduceGroups } from '../../graph/passes/fusionGate.ts';
import { DEFAULT_TP_GROUP, resolveOptions } from '../../graph/passes/options.ts';
import type { PassOptions } from '../../graph/passes/pipeline.ts';
import { shownStage, useStore } from '../store/index.ts';
import { Choice, type ChoiceOption } from './Choice.tsx';

const WORLD_SIZES = [1, 2, 3, 4, 6, 8];
const GPUS: ChoiceOption<NonNullable<PassOptions['gpu']>>[] = [
  { value: 'hopper', label: 'Hopper' },
  { value: 'blackwell', label: 'Blackwell' },
];
const TOKEN_GATES: ChoiceOption<NonNullable<PassOptions['tokenGate']>>[] = [
  { value: 'runtime-fallback', label: 'at run time' },
  { value: 'compile-range', label: 'at compile' },
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
          <Choice
            id="gate-world"
            label="World size"
            value={gates.worldSize}
            unset={{
              label:
                resolved?.worldSizeFrom === 'graph'
                  ? `graph: ${resolved.worldSize}`
                  : `default: ${resolved?.worldSize ?? 4}`,
              choose: () => setGates({ worldSize: undefined }),
            }}
            options={WORLD_SIZES}
            onChange={(worldSize) => setGates({ worldSize })}
          />
        </div>
        <div className="field">
          <Choice
            id="gate-gpu"
            label="GPU"
            value={gates.gpu ?? 'hopper'}
            options={GPUS}
            onChange={(gpu) => setGates({ gpu })}
          />
        </div>
        <div className="field">
          <Choice
            id="gate-token-rule"
            label="Token gate"
            value={gates.tokenGate ?? 'runtime-fallback'}
            options={TOKEN_GATES}
            onChange={(tokenGate) => setGates({ tokenGate })}
            title="runtime fallback: the pattern always fires and the fused op falls back above max_token_num (the vLLM of PR #28841). compile range: graphs whose token count exceeds max_token_num stay unfused (later vLLM)."
          />
        </div>
        <div className="field">
          <Choice
            id="gate-tp-group"
            label="TP group"
            value={gates.tpGroup ?? DEFAULT_TP_GROUP}
            options={[...new Set([gates.tpGroup ?? DEFAULT_TP_GROUP, ...groups])]}
            onChange={(tpGroup) => setGates({ tpGroup })}
            title="vLLM's patterns match only all_reduce over the tensor-parallel group (tensor_model_parallel_all_reduce); all-reduces over other groups stay unfused."
          />
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
