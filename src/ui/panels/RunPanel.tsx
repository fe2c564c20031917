// Run the graph before and after the rewrite on the chosen backend and compare the outputs.

import { PRESETS } from '../../runtime/presets.ts';
import { useStore } from '../store/index.ts';
import type { RunSettings } from '../store/runSlice.ts';
import { VerdictLine } from './VerdictLine.tsx';

const RANKS = [1, 2, 4, 8];
const TIMED_RUNS = [1, 3, 5, 9];
const ALGORITHMS: { id: RunSettings['allreduce']; label: string }[] = [
  { id: 'one-shot', label: 'one-shot' },
  { id: 'two-shot', label: 'two-shot' },
  { id: 'ring', label: 'ring (RS + AG)' },
];

export function RunPanel() {
  const settings = useStore((s) => s.runSettings);
  const set = useStore((s) => s.setRunSettings);
  const status = useStore((s) => s.runStatus);
  const progress = useStore((s) => s.progress);
  const runError = useStore((s) => s.runError);
  const report = useStore((s) => s.report);
  const run = useStore((s) => s.run);
  const cancelRun = useStore((s) => s.cancelRun);
  const hasGraph = useStore((s) => s.base !== null);
  const cursor = useStore((s) => s.cursor);
  const agentAddress = useStore((s) => s.agentAddress);
  const setAgentAddress = useStore((s) => s.setAgentAddress);
  const agentInfo = useStore((s) => s.agentInfo);
  const timedRuns = useStore((s) => s.timedRuns);
  const setTimedRuns = useStore((s) => s.setTimedRuns);
  const gpu = typeof navigator !== 'undefined' && 'gpu' in navigator;
  const running = status === 'running';
  return (
    <section className="run-panel" aria-label="Run">
      <div className="form-grid run-form">
        <label htmlFor="run-backend">Backend</label>
        <select
          id="run-backend"
          value={settings.backend}
          onChange={(e) => set({ backend: e.target.value as RunSettings['backend'] })}
          disabled={running}
        >
          <option value="webgpu" disabled={!gpu}>
            WebGPU ranks{gpu ? '' : ' (no navigator.gpu)'}
          </option>
          <option value="cpu">CPU reference</option>
          <option value="agent">Native agent (CUDA, local)</option>
        </select>
        {settings.backend === 'agent' && (
          <>
            <label htmlFor="agent-url">Agent address</label>
            <input
              id="agent-url"
              type="text"
              value={agentAddress.url}
              spellCheck={false}
              disabled={running}
              onChange={(e) => setAgentAddress({ url: e.target.value.trim() })}
            />
            <label htmlFor="agent-token">Agent token</label>
            <input
              id="agent-token"
              type="password"
              value={agentAddress.token}
              autoComplete="off"
              disabled={running}
              placeholder="printed by npm run agent"
              onChange={(e) => setAgentAddress({ token: e.target.value.trim() })}
            />
          </>
        )}
        <label htmlFor="run-ranks">Ranks</label>
        <select
          id="run-ranks"
          value={settings.ranks}
          onChange={(e) => set({ ranks: Number(e.target.value) })}
          disabled={running}
        >
          {RANKS.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
        <label htmlFor="run-preset">Preset</label>
        <select
          id="run-preset"
          value={settings.preset}
          onChange={(e) => set({ preset: e.target.value as RunSettings['preset'] })}
          disabled={running}
        >
          {Object.values(PRESETS).map((p) => (
            <option key={p.name} value={p.name} title={p.doc}>
              {p.name}
            </option>
          ))}
        </select>
        <label htmlFor="run-dtype">Dtype</label>
        <select
          id="run-dtype"
          value={settings.dtype}
          onChange={(e) => set({ dtype: e.target.value as RunSettings['dtype'] })}
          disabled={running}
        >
          <option value="bf16">bf16</option>
          <option value="f32">f32</option>
        </select>
        <label htmlFor="run-allreduce">All-reduce</label>
        <select
          id="run-allreduce"
          value={settings.allreduce}
          onChange={(e) => set({ allreduce: e.target.value as RunSettings['allreduce'] })}
          disabled={running}
        >
          {ALGORITHMS.map((a) => (
            <option key={a.id} value={a.id}>
              {a.label}
            </option>
          ))}
        </select>
        <label htmlFor="run-workers">Rank workers</label>
        <input
          id="run-workers"
          type="checkbox"
          checked={settings.workers}
          onChange={(e) => set({ workers: e.target.checked })}
          disabled={running}
        />
        <label htmlFor="run-timed">Timed runs</label>
        <select
          id="run-timed"
          value={timedRuns}
          onChange={(e) => setTimedRuns(Number(e.target.value))}
          disabled={running}
          title="After one warm-up run of each graph (it compiles the kernels and is not timed): this many runs of each, alternating; times are their median and spread"
        >
          {TIMED_RUNS.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </div>
      <div className="run-actions">
        <button type="button" className="primary" onClick={() => void run()} disabled={!hasGraph || running}>
          {running ? 'Running…' : 'Run before & after'}
        </button>
        {running && (
          <button type="button" onClick={cancelRun}>
            Cancel
          </button>
        )}
        <span className="muted">
          {cursor === 0
            ? 'no rewrite applied: both sides are the imported graph'
            : `after = ${cursor} rewrite step${cursor > 1 ? 's' : ''}`}
        </span>
      </div>
      <p className="muted run-note">
        Preset {settings.preset} — {PRESETS[settings.preset].doc}. Inputs and weights are seeded, the same on
        both sides; each graph runs once to warm up (compiling its kernels), then
        {` ${timedRuns}`} timed run{timedRuns > 1 ? 's' : ''} each;
        {settings.workers ? ' each rank runs in its own Web Worker.' : ' ranks share the page thread.'}
      </p>
      {running && progress && (
        <div className="progress" role="status" aria-label="Run progress">
          <span>{progress.phase}</span>
          <progress max={1} value={progress.fraction ?? undefined} aria-label={progress.phase} />
        </div>
      )}
      {settings.backend === 'agent' && agentInfo && <p className="muted">agent: {agentInfo}</p>}
      {runError && (
        <p className="error" role="alert" data-testid="run-error">
          {runError}
        </p>
      )}
      {status === 'done' && report && <VerdictLine />}
    </section>
  );
}
