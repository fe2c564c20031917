// vLLM's gates on the all-reduce + RMSNorm fusion. Changing one replays the rewrite steps, so the
// counts and the reasons below recount at once.

import { useState } from 'react';
import { reduceGroups } from '../../graph/passes/fusionGate.ts';
import { DEFAULT_TP_GROUP, resolveOptions } from '../../graph/passes/options.ts';
import type { PassOptions } from '../../graph/passes/pipeline.ts';
import { shownStage, useStore } from '../store/index.ts';
import { Choice, type ChoiceOption, type ChoiceProps } from './Choice.tsx';

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

/** The gates chosen from a list, each with the value the passes use when it is unset. */
type ListedGate = 'gpu' | 'tokenGate' | 'tpGroup';

/** One gate's drop-down, in its field; an unset gate shows the value it falls back to. */
function GateField<K extends ListedGate>(props: {
  gate: K;
  id: string;
  label: string;
  fallback: NonNullable<PassOptions[K]>;
  options: ChoiceProps<NonNullable<PassOptions[K]>>['options'];
  title?: string;
}) {
  const { gate, fallback, ...choice } = props;
  const value = useStore((s) => s.gates[gate]);
  const setGates = useStore((s) => s.setGates);
  return (
    <div className="field">
      <Choice {...choice} value={value ?? fallback} onChange={(v) => setGates({ [gate]: v })} />
    </div>
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
        <GateField gate="gpu" id="gate-gpu" label="GPU" fallback="hopper" options={GPUS} />
        <GateField
          gate="tokenGate"
          id="gate-token-rule"
          label="Token gate"
          fallback="runtime-fallback"
          options={TOKEN_GATES}
          title="runtime fallback: the pattern always fires and the fused op falls back above max_token_num (the vLLM of PR #28841). compile range: graphs whose token count exceeds max_token_num stay unfused (later vLLM)."
        />
        <GateField
          gate="tpGroup"
          id="gate-tp-group"
          label="TP group"
          fallback={DEFAULT_TP_GROUP}
          options={[...new Set([gates.tpGroup ?? DEFAULT_TP_GROUP, ...groups])]}
          title="vLLM's patterns match only all_reduce over the tensor-parallel group (tensor_model_parallel_all_reduce); all-reduces over other groups stay unfused."
        />
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
