// vLLM's PassConfig with vLLM's own names: the -O level's defaults for the platform, each
// pass_config flag (the level's default shown, an override marked), TP, the custom-op list, the
// compile range, and a box for a pasted `vllm serve` command line. When it is on, it drives the
// pipeline: "Run pipeline" runs the passes vLLM runs on the chosen range's graph.

import { useMemo, useState } from 'react';
import {
  FLAG_PASSES,
  VLLM_FLAGS,
  VLLM_PLATFORMS,
  formatRange,
  resolveVllmConfig,
  type CompileRange,
  type OptimizationLevel,
  type VllmFlag,
} from '../../graph/passes/vllmConfig.ts';
import { useStore } from '../store/index.ts';
import {
  choiceArgs,
  resolvePassConfig,
  type PassConfigChoice,
  type ResolvedPassConfig,
} from '../store/passConfigSlice.ts';
import { Choice } from './Choice.tsx';

const LEVELS: OptimizationLevel[] = [0, 1, 2, 3];
const TPS = [1, 2, 4, 8];
const rangeKey = (r: CompileRange) => `${r.start}-${r.end}`;

/** The custom-op list as typed: names separated by commas or spaces ('none' when empty). */
function parseCustomOps(text: string): string[] {
  const ops = text.split(/[\s,]+/).filter((x) => x.length > 0);
  return ops.length ? ops : ['none'];
}

function CommandLineBox() {
  const commandLine = useStore((s) => s.commandLine);
  const error = useStore((s) => s.commandLineError);
  const paste = useStore((s) => s.pasteCommandLine);
  const [draft, setDraft] = useState<string | null>(null);
  const text = draft ?? commandLine;
  return (
    <form
      className="pass-config-paste"
      onSubmit={(e) => {
        e.preventDefault();
        void paste(text).then(() => setDraft(null));
      }}
    >
      <label htmlFor="vllm-command-line">vLLM command line</label>
      <textarea
        id="vllm-command-line"
        rows={2}
        spellCheck={false}
        placeholder="-O2 -tp 2 -cc.pass_config.fuse_norm_quant=true --compilation-config '{…}'"
        value={text}
        aria-invalid={error ? 'true' : 'false'}
        onChange={(e) => setDraft(e.target.value)}
      />
      <button type="submit" className="small">
        Apply command line
      </button>
      {error && (
        <p className="error" role="alert" data-testid="command-line-error">
          {error}
        </p>
      )}
    </form>
  );
}

function CustomOpsInput({ value, onCommit }: { value: string[]; onCommit(ops: string[]): void }) {
  const [draft, setDraft] = useState<string | null>(null);
  const commit = () => {
    if (draft !== null) onCommit(parseCustomOps(draft));
    setDraft(null);
  };
  return (
    <>
      <label htmlFor="vllm-custom-ops" title="compilation_config.custom_ops: +name on, -name off, none / all">
        custom_ops
      </label>
      <input
        id="vllm-custom-ops"
        type="text"
        spellCheck={false}
        value={draft ?? value.join(',')}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === 'Enter') commit();
        }}
      />
    </>
  );
}

interface Resolved {
  choice: PassConfigChoice;
  resolved: ResolvedPassConfig;
}

function FlagRows({ choice, resolved }: Resolved) {
  const setPassConfig = useStore((s) => s.setPassConfig);
  // The level's own value of each flag, as if nothing were set on top of it.
  const defaults = useMemo(
    () => resolveVllmConfig({ ...choiceArgs(choice), passConfig: {} }, { platform: choice.platform }).flags,
    [choice],
  );
  const setFlag = (flag: VllmFlag, on: boolean | undefined) => {
    const flags = { ...choice.flags };
    if (on === undefined) delete flags[flag];
    else flags[flag] = on;
    void setPassConfig({ flags });
  };
  return (
    <table className="pass-config-flags">
      <caption className="muted">pass_config at -O{choice.level}</caption>
      <tbody>
        {VLLM_FLAGS.map((flag, i) => {
          const f = resolved.config.flags[i]!;
          const d = defaults[i]!;
          const overridden = choice.flags[flag] !== undefined;
          const out = resolved.outOfRange.find((o) => o.flag === flag);
          const pass = FLAG_PASSES[flag].pass;
          return (
            <tr key={flag} data-flag={flag} className={overridden ? 'override' : undefined}>
              <td>
                <input
                  id={`flag-${flag}`}
                  type="checkbox"
                  checked={f.on}
                  title={f.why}
                  onChange={(e) => setFlag(flag, e.target.checked)}
                />
                <label htmlFor={`flag-${flag}`} className="mono">
                  {flag}
                </label>
              </td>
              <td className="muted" title={d.why}>
                -O{choice.level}: {d.on ? 'on' : 'off'}
              </td>
              <td>
                {overridden && (
                  <button
                    type="button"
                    className="small linklike"
                    aria-label={`Reset ${flag} to the level's default`}
                    onClick={() => setFlag(flag, undefined)}
                  >
                    override ×
                  </button>
                )}
              </td>
              <td className="mono" title={FLAG_PASSES[flag].vllmPass}>
                {pass ?? <span className="muted">no fusionlab pass</span>}
                {out && f.on && (
                  <span className="warn" title={out.why}>
                    {' '}
                    not applicable in this range
                  </span>
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function RangeChoice({ resolved: r }: Resolved) {
  const setPassConfig = useStore((s) => s.setPassConfig);
  const compiled = r.ranges.ranges.some((x) => rangeKey(x) === rangeKey(r.range));
  const known = [...r.ranges.ranges, ...(compiled ? [] : [r.range])];
  return (
    <Choice
      id="vllm-compile-range"
      label="compile range"
      value={rangeKey(r.range)}
      options={known.map((x) => ({ value: rangeKey(x), label: formatRange(x) }))}
      onChange={(key) => void setPassConfig({ range: known.find((x) => rangeKey(x) === key) ?? null })}
      title={r.ranges.endpoints.map((e) => `${e.at}: ${e.why}`).join('\n')}
    />
  );
}

/** Which range the graph was compiled for, and the passes vLLM runs there (and those it leaves out). */
function RangeSummary({ resolved: r }: Resolved) {
  return (
    <>
      <p className="muted pass-config-range" data-testid="compile-range">
        Graph compiled for {formatRange(r.range)}
        {r.rangeFrom === 'dump' ? " (the dump's log)" : r.rangeFrom === 'first' ? ' (the first range)' : ''};
        the config makes {r.ranges.ranges.map(formatRange).join(', ')}.
      </p>
      <ol className="pass-config-passes" aria-label="Passes vLLM runs in this range">
        {r.passes.map((p) => (
          <li key={p} className="mono">
            {p}
          </li>
        ))}
        {r.outOfRange.map((o) => (
          <li key={o.flag} className="muted" title={o.why}>
            <s className="mono">{o.pass ?? o.vllmPass}</s> {o.why}
          </li>
        ))}
      </ol>
    </>
  );
}

/** The config resolved on the imported graph (its hidden size) and the dump's range; null when off. */
export function useResolvedPassConfig(): ResolvedPassConfig | null {
  const choice = useStore((s) => s.passConfig);
  const base = useStore((s) => s.stages[0]?.graph);
  const dumpRange = useStore((s) => s.dump?.compileRange);
  return useMemo(
    () => (choice ? resolvePassConfig(choice, base, dumpRange) : null),
    [choice, base, dumpRange],
  );
}

/** The Why panel's line for each pass the compile range leaves out, with the bound that did. */
export function OutOfRangeNotes() {
  const resolved = useResolvedPassConfig();
  if (!resolved || resolved.outOfRange.length === 0) return null;
  return (
    <ul className="why-out-of-range" aria-label="Passes not applicable in this compile range">
      {resolved.outOfRange.map((o) => (
        <li key={o.flag}>
          <span className="mono">{o.pass ?? o.vllmPass}</span> ({o.flag}): {o.why}
        </li>
      ))}
    </ul>
  );
}

export function PassConfigPanel() {
  const choice = useStore((s) => s.passConfig);
  const setPassConfig = useStore((s) => s.setPassConfig);
  const resolved = useResolvedPassConfig();
  return (
    <section className="panel pass-config-panel" aria-labelledby="pass-config-title">
      <header className="panel-head">
        <h2 id="pass-config-title">vLLM PassConfig</h2>
        <label className="toggle">
          <input
            type="checkbox"
            checked={choice !== null}
            aria-label="Run vLLM's passes"
            onChange={(e) => void setPassConfig(e.target.checked ? {} : null)}
          />{' '}
          drives the pipeline
        </label>
      </header>
      <CommandLineBox />
      {choice && resolved && (
        <>
          <div className="form-grid">
            <Choice
              id="vllm-level"
              label="level"
              value={choice.level}
              options={LEVELS.map((l) => ({ value: l, label: `-O${l}` }))}
              onChange={(level) => void setPassConfig({ level })}
            />
            <Choice
              id="vllm-platform"
              label="platform"
              value={choice.platform}
              options={VLLM_PLATFORMS.map((p) => ({ value: p, label: p === 'rocm' ? 'ROCm' : p }))}
              onChange={(platform) => void setPassConfig({ platform })}
            />
            <Choice
              id="vllm-tp"
              label="-tp"
              value={choice.tp}
              options={[...new Set([...TPS, choice.tp])].sort((a, b) => a - b)}
              onChange={(tp) => void setPassConfig({ tp })}
            />
            <CustomOpsInput
              value={choice.customOps}
              onCommit={(customOps) => void setPassConfig({ customOps })}
            />
            <RangeChoice choice={choice} resolved={resolved} />
          </div>
          <RangeSummary choice={choice} resolved={resolved} />
          <FlagRows choice={choice} resolved={resolved} />
        </>
      )}
    </section>
  );
}
