// Compare fixes: one GPT-OSS layer three ways — the original, PR #28841's slice hoist, the
// re-land's unpadded MoE (#30647) — each drawn from the MoE's input to the norm it feeds, with its
// fused sites, the cost model's kernels, bytes and time on an H200, the run's, and whether its
// outputs equal the original's (bitwise, with fused norms rounded as the pair).

import { formatMicros, formatMicrosRange } from '../units.ts';
import { useState, type ReactNode } from 'react';
import type { Graph, Node } from '../../graph/ir.ts';
import { isRef } from '../../graph/ir.ts';
import { parseFx } from '../../graph/fx/parse.ts';
import { generateSample } from '../../graph/samples/index.ts';
import { FIXES } from '../../graph/passes/fixes.ts';
import { compareFixes, type FixesReport } from '../../runtime/compareFixes.ts';
import { RunError } from '../../runtime/index.ts';
import { useStore } from '../store/index.ts';
import { formatBytes } from './Inspector.tsx';
import { calledOp } from '../../graph/call.ts';
import { fusedChangeText, sameFunctionClaim } from './verdict.ts';
import { timingMethod } from './runCaption.ts';

const MOE = 'vllm.moe_forward.default';
const NORMS = [
  '_C.fused_add_rms_norm.default',
  '_C.rms_norm.default',
  'vllm.flashinfer_trtllm_fused_allreduce_norm.default',
];

/** The nodes from the MoE's input to the norm its output reaches (the part the fixes change). */
export function moeChain(g: Graph): Node[] {
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  const moe = g.nodes.find((n) => calledOp(n) === MOE);
  if (!moe) return [];
  const chain: Node[] = [];
  const hs = moe.kwargs['hidden_states'];
  const pad = hs && isRef(hs) ? byName.get(hs.name) : undefined;
  if (pad?.op === 'aten.constant_pad_nd.default') chain.push(pad);
  chain.push(moe);
  let cur = moe;
  for (let step = 0; step < 8; step++) {
    const next = g.nodes.find(
      (n) =>
        [...n.args, ...Object.values(n.kwargs)].some((a) => isRef(a) && a.name === cur.name) &&
        (n.op !== 'getitem' || n.args[1] === 0),
    );
    if (!next) break;
    if (next.op !== 'getitem') chain.push(next);
    cur = next;
    if (NORMS.includes(calledOp(next))) break;
  }
  return chain;
}

const shortOp = (n: Node) =>
  calledOp(n)
    .replace(/^(aten|vllm|_C)\./, '')
    .replace(/\.(default|Tensor)$/, '');
const shape = (n: Node) => (n.type?.kind === 'tensor' ? `[${n.type.shape.join(', ')}]` : '');

export function CompareFixesPanel() {
  const runSettings = useStore((s) => s.runSettings);
  const [backend, setBackend] = useState<'cpu' | 'webgpu'>(
    runSettings.backend === 'webgpu' ? 'webgpu' : 'cpu',
  );
  const [ranks, setRanks] = useState(2);
  const [report, setReport] = useState<FixesReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const compare = async () => {
    setBusy(true);
    setError(null);
    try {
      const layer = parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: ranks })).graph;
      // Tokens divisible by every rank count offered, so the run never refuses the split.
      setReport(
        await compareFixes(layer, {
          ...runSettings,
          backend,
          ranks,
          preset: 'tiny',
          tokens: 8,
          workers: false,
        }),
      );
    } catch (e) {
      setError(e instanceof RunError ? e.message : `Compare failed: ${(e as Error).message ?? String(e)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="panel compare-fixes" aria-labelledby="compare-fixes-title">
      <header className="panel-head">
        <h2 id="compare-fixes-title">Compare fixes</h2>
        <div className="toolbar">
          <label>
            Backend{' '}
            <select
              aria-label="Compare backend"
              value={backend}
              onChange={(e) => setBackend(e.target.value as 'cpu' | 'webgpu')}
            >
              <option value="cpu">CPU reference</option>
              <option value="webgpu">WebGPU</option>
            </select>
          </label>
          <label>
            Ranks{' '}
            <select
              aria-label="Compare ranks"
              value={ranks}
              onChange={(e) => setRanks(Number(e.target.value))}
            >
              {[1, 2, 4, 8].map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </label>
          <button type="button" className="primary" onClick={() => void compare()} disabled={busy}>
            {busy ? 'Comparing…' : 'Compare'}
          </button>
        </div>
      </header>
      <p className="muted">
        One GPT-OSS-20B layer: the original, PR #28841's slice hoist, and the re-land (#30647), each ending in
        the all-reduce + RMSNorm fusion. Model: {report?.profile ?? 'H200'} at T = {report?.tokens ?? 8}; run:
        tiny sizes
        {report && (
          <span data-testid="fixes-run">
            {' '}
            on {report.backend}, {report.ranks} rank{report.ranks === 1 ? '' : 's'} ({report.device}), each
            variant {timingMethod(report.rows[0]?.measured.runs ?? 0)}
          </span>
        )}
        .
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {report && (
        <div className="fix-columns" role="list" aria-label="Fixes">
          {report.rows.map((r) => (
            <FixColumn key={r.id} row={r} />
          ))}
        </div>
      )}
    </section>
  );
}

/** One fix: what it is, the MoE output's chain of ops in its graph (blockers marked), its numbers. */
function FixColumn({ row: r }: { row: FixesReport['rows'][number] }) {
  return (
    <article className="fix-column" role="listitem" aria-label={r.label}>
      <h3>{r.label}</h3>
      <p className="muted">{FIXES[r.id].doc}</p>
      <ol className="fix-chain" aria-label={`${r.label} graph`}>
        {moeChain(r.graph).map((n) => (
          <li
            key={n.name}
            className={`fix-node kind-${n.op === 'aten.slice.Tensor' || n.op === 'aten.constant_pad_nd.default' ? 'blocker' : 'op'}`}
          >
            <span className="mono">{shortOp(n)}</span> <span className="muted mono">{shape(n)}</span>
          </li>
        ))}
      </ol>
      <FixNumbers row={r} />
    </article>
  );
}

/**
 * A fix's numbers: fused sites, the model's prediction, the run's measurement (its own kernels, the
 * busiest rank's time with its spread, the Run tab's method), and the verdict in the Run's words.
 */
function FixNumbers({ row: r }: { row: FixesReport['rows'][number] }) {
  const m = r.measured;
  const numbers: [label: string, value: ReactNode, testId?: string][] = [
    ['fused sites', r.fusions, `fusions-${r.id}`],
    ['model: kernels', r.model.launches, `model-kernels-${r.id}`],
    ['model: HBM bytes', formatBytes(r.model.hbmBytes)],
    ['model: link bytes / rank', formatBytes(r.model.linkBytesPerRank)],
    ['model: time', formatMicros(r.model.us)],
    [
      'run: kernels',
      m.steps > m.kernels ? `${m.kernels} (${m.steps} steps)` : m.kernels,
      `run-kernels-${r.id}`,
    ],
    ['run: bytes', formatBytes(m.bytes)],
    [
      `run: time (busiest rank, ${timingMethod(m.runs)}; ${m.timing})`,
      `${formatMicros(m.us)} (${formatMicrosRange(m.spread)})`,
      `run-time-${r.id}`,
    ],
  ];
  const failed = r.check.filter((c) => !c.pass).length;
  return (
    <>
      <table className="fix-numbers">
        <tbody>
          {numbers.map(([label, value, testId]) => (
            <tr key={label}>
              <td>{label}</td>
              <td className="num" data-testid={testId}>
                {value}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className={r.equal ? 'ok' : 'error'} data-testid={`equal-${r.id}`}>
        {r.equal
          ? `proven: ${sameFunctionClaim(r.check.length, r.fusions)}`
          : `not equivalent: ${failed} of ${r.check.length} outputs differ from the original with the fused norms rounded as the unfused pair`}
      </p>
      <p className="muted" data-testid={`fused-change-${r.id}`}>
        {fusedChangeText({
          sites: r.fusions,
          firstSite: r.drift.firstSite,
          maxUlps: r.drift.maxUlps,
          maxRel: r.drift.maxRel,
          gated: false,
        })}
      </p>
    </>
  );
}
