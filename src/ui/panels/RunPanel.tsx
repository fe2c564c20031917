// Run the graph before and after the rewrite on the chosen backend and compare the outputs.

import { PRESETS } from '../../runtime/presets.ts';
import { useStore } from '../store/index.ts';
import type { RunSettings } from '../store/runSlice.ts';
import { VerdictLine } from './VerdictLine.tsx';
import { Choice, type ChoiceOption, type ChoiceProps } from './Choice.tsx';

const RANKS = [1, 2, 4, 8];
const TIMED_RUNS = [1, 3, 5, 9];
const ALGORITHMS: ChoiceOption<RunSettings['allreduce']>[] = [
  { value: 'one-shot' },
  { value: 'two-shot' },
  { value: 'ring', label: 'ring (RS + AG)' },
];
const DTYPES: RunSettings['dtype'][] = ['bf16', 'f32'];
const PRESET_CHOICES = Object.values(PRESETS).map((p) => ({ value: p.name, title: p.doc }));
const backends = (gpu: boolean): ChoiceOption<RunSettings['backend']>[] => [
  { value: 'webgpu', label: `WebGPU ranks${gpu ? '' : ' (no navigator.gpu)'}`, disabled: !gpu },
  { value: 'cpu', label: 'CPU reference' },
  { value: 'agent', label: 'Native agent (CUDA, local)' },
];

/** The run settings chosen from a list. */
type ListedSetting = 'backend' | 'ranks' | 'preset' | 'dtype' | 'allreduce';

/** A drop-down of one run setting (its id `run-<setting>`), off while a run is going. */
function RunChoice<K extends ListedSetting>(props: {
  setting: K;
  label: string;
  options: ChoiceProps<RunSettings[K]>['options'];
}) {
  const { setting, label, options } = props;
  const value = useStore((s) => s.runSettings[setting]);
  const set = useStore((s) => s.setRunSettings);
  const running = useStore((s) => s.runStatus === 'running');
  return (
    <Choice
      id={`run-${setting}`}
      label={label}
      value={value}
      options={options}
      onChange={(v) => set({ [setting]: v })}
      disabled={running}
    />
  );
}

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
        <RunChoice setting="backend" label="Backend" options={backends(gpu)} />
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
        <RunChoice setting="ranks" label="Ranks" options={RANKS} />
        <RunChoice setting="preset" label="Preset" options={PRESET_CHOICES} />
        <RunChoice setting="dtype" label="Dtype" options={DTYPES} />
        <RunChoice setting="allreduce" label="All-reduce" options={ALGORITHMS} />
        <label htmlFor="run-workers">Rank workers</label>
        <input
          id="run-workers"
          type="checkbox"
          checked={settings.workers}
          onChange={(e) => set({ workers: e.target.checked })}
          disabled={running}
        />
        <Choice
          id="run-timed"
          label="Timed runs"
          value={timedRuns}
          options={TIMED_RUNS}
          onChange={setTimedRuns}
          disabled={running}
          title="After one warm-up run of each graph (it compiles the kernels and is not timed): this many runs of each, alternating; times are their median and spread"
        />
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
