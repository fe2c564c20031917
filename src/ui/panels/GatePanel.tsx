// vLLM's gates on the all-reduce + RMSNorm fusion. Changing one replays the rewrite steps, so the
// counts and the reasons below recount at once.

import { reduceGroups } from '../../graph/passes/fusionGate.ts';
import { DEFAULT_TP_GROUP, resolveOptions } from '../../graph/passes/options.ts';
import type { PassOptions } from '../../graph/passes/pipeline.ts';
import { shownStage, useStore } from '../store/index.ts';

const WORLD_SIZES = [1, 2, 3, 4, 6, 8];
const GPUS: { id: NonNullable<PassOptions['gpu']>; label: string }[] = [
  { id: 'hopper', label: 'Hopper' },
  { id: 'blackwell', label: 'Blackwell' },
];

export function GatePanel() {
  const gates = useStore((s) => s.gates);
  const setGates = useStore((s) => s.setGates);
  const shown = useStore(shownStage);
  // What the passes will use: the graph's own world size when the gate is left unset.
  const resolved = shown ? resolveOptions(shown.graph, gates) : undefined;
  const groups = shown ? reduceGroups(shown.graph) : [];
  return (
    <section className="panel gate-panel" aria-labelledby="gate-panel-title">
      <header className="panel-head"><h2 id="gate-panel-title">Gates</h2></header>
      <div className="gate-grid">
        <div className="field">
          <label htmlFor="gate-world">World size</label>
          <select id="gate-world" value={gates.worldSize ?? ''} onChange={(e) => setGates({ worldSize: e.target.value === '' ? undefined : Number(e.target.value) })}>
            <option value="">{resolved?.worldSizeFrom === 'graph' ? `graph: ${resolved.worldSize}` : `default: ${resolved?.worldSize ?? 4}`}</option>
            {WORLD_SIZES.map((w) => <option key={w} value={w}>{w}</option>)}
          </select>
        </div>
        <div className="field">
          <label htmlFor="gate-gpu">GPU</label>
          <select id="gate-gpu" value={gates.gpu ?? 'hopper'} onChange={(e) => setGates({ gpu: e.target.value as PassOptions['gpu'] })}>
            {GPUS.map((g) => <option key={g.id} value={g.id}>{g.label}</option>)}
          </select>
        </div>
        <div className="field">
          <label htmlFor="gate-token-rule">Token gate</label>
          <select id="gate-token-rule" value={gates.tokenGate ?? 'runtime-fallback'} onChange={(e) => setGates({ tokenGate: e.target.value as PassOptions['tokenGate'] })}
            title="runtime fallback: the pattern always fires and the fused op falls back above max_token_num (the vLLM of PR #28841). compile range: graphs whose token count exceeds max_token_num stay unfused (later vLLM).">
            <option value="runtime-fallback">at run time</option>
            <option value="compile-range">at compile</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="gate-tp-group">TP group</label>
          <select id="gate-tp-group" value={gates.tpGroup ?? DEFAULT_TP_GROUP} onChange={(e) => setGates({ tpGroup: e.target.value })}
            title="vLLM's patterns match only all_reduce over the tensor-parallel group (tensor_model_parallel_all_reduce); all-reduces over other groups stay unfused.">
            {[...new Set([gates.tpGroup ?? DEFAULT_TP_GROUP, ...groups])].map((g) => <option key={g} value={g}>{g}</option>)}
          </select>
        </div>
        <div className="field">
          <label htmlFor="gate-tokens">Max tokens</label>
          <input
            id="gate-tokens"
            type="number"
            min={1}
            step={256}
            value={gates.maxTokens ?? resolved?.maxTokens ?? ''}
            onChange={(e) => {
              const v = Number(e.target.value);
              if (Number.isFinite(v) && v >= 1) setGates({ maxTokens: Math.floor(v) });
            }}
          />
        </div>
      </div>
    </section>
  );
}
