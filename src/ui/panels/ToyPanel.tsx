// "Why is the hoist legal?" with numbers: the two-rank toy of sliceSumToy.ts run on the same
// backend the Run tab would use, and the reason the slice stops the fusion, quoted from the passes.

import { useState } from 'react';
import { useStore } from '../store/index.ts';
import { runToy, type ToyResult } from './sliceSumToy.ts';

const fmt = (v: number) => v.toFixed(4);

export function ToyPanel() {
  const [result, setResult] = useState<ToyResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [running, setRunning] = useState(false);
  // The live reason, from the graph on screen, when a slice blocks a fusion there.
  const blocked = useStore((s) => s.diagnostics.find((d) => d.fix === 'run slice-hoist'));
  // Whether the graph on screen already had its slices hoisted (a step up to the shown stage).
  const hoisted = useStore((s) =>
    s.steps.slice(0, s.scrub ?? s.cursor).some((st) => st.pass === 'slice-hoist'),
  );
  const gptOss = useStore(
    (s) => s.source !== null && 'sample' in s.source && s.source.sample.startsWith('gpt-oss'),
  );
  const gpu = typeof navigator !== 'undefined' && 'gpu' in navigator;
  const run = async () => {
    setRunning(true);
    setError(null);
    try {
      setResult(await runToy(gpu ? 'webgpu' : 'cpu'));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setRunning(false);
    }
  };
  return (
    <section className="toy-panel pad" aria-label="Why the hoist is legal">
      <p>
        Two ranks each hold a partial sum <span className="mono">xᵣ</span>, 6 columns wide (a matmul with the
        rank's own weight shard, as the MoE's padded output). <span className="mono">all_reduce</span> adds
        them; <span className="mono">slice</span> keeps 4 columns. A sum works column by column, so slicing
        before or after it picks the same sums:
        <b> slice(Σᵣ xᵣ) = Σᵣ slice(xᵣ)</b>, and the all-reduce moves 4 columns instead of 6.
      </p>
      <button type="button" className="primary" onClick={() => void run()} disabled={running}>
        {running ? 'Running…' : `Run both orders on two ${gpu ? 'WebGPU' : 'CPU'} ranks`}
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {result && <ToyTable result={result} />}
      <p className="muted">
        Why the slice stops the fusion: vLLM fuses an all-reduce directly followed by its RMSNorm; a slice in
        between breaks the pattern.{' '}
        {blocked ? (
          <>
            In the graph on screen: <span className="mono">{blocked.reason}</span>
          </>
        ) : hoisted ? (
          'In the graph on screen slice-hoist has moved the slice above the all-reduce: nothing stands between the all-reduce and its norm.'
        ) : gptOss ? (
          'No slice blocks a fusion in the graph on screen.'
        ) : (
          'Load a GPT-OSS sample to see it named in the graph.'
        )}
      </p>
    </section>
  );
}

/** Both ranks' partials, the two orders' sums of the four kept columns, and whether they agree. */
function ToyTable({ result }: { result: ToyResult }) {
  return (
    <>
      <table className="grid toy-table" aria-label="Toy values" data-testid="toy-table">
        <thead>
          <tr>
            <th>row 0 of</th>
            {[0, 1, 2, 3, 4, 5].map((c) => (
              <th key={c} className="num">
                col {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {result.partials.map((p, r) => (
            <tr key={r}>
              <td>
                x{r === 0 ? '₀' : '₁'} (rank {r}&apos;s partial)
              </td>
              {p.map((v, c) => (
                <td key={c} className={`num${c >= 4 ? ' dim' : ''}`}>
                  {fmt(v)}
                </td>
              ))}
            </tr>
          ))}
          <SlicedRow
            testId="toy-before"
            label="slice(Σ x): all-reduce, then slice"
            values={result.sumThenSlice}
          />
          <SlicedRow
            testId="toy-after"
            label="Σ slice(x): slice-hoist applied"
            values={result.sliceThenSum}
          />
        </tbody>
      </table>
      <p className={result.bitwiseEqual ? 'ok' : 'error'} data-testid="toy-verdict">
        {result.bitwiseEqual ? 'bitwise equal on both ranks' : 'the two orders differ'} · {result.backend} on{' '}
        {result.device}
      </p>
    </>
  );
}

/** A row of the sliced result: its four columns, and the two the slice drops left empty. */
function SlicedRow({ testId, label, values }: { testId: string; label: string; values: readonly number[] }) {
  return (
    <tr data-testid={testId}>
      <td>{label}</td>
      {values.map((v, c) => (
        <td key={c} className="num">
          {fmt(v)}
        </td>
      ))}
      <td />
      <td />
    </tr>
  );
}
