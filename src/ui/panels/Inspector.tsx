// The selected node: what it runs, its arguments, result type and size, where it came from in
// the source, and which pass made it. Inputs and users are links, so the graph can be walked.

import type { ReactNode } from 'react';
import {
  DTYPE_BYTES,
  refsOf,
  usersOf,
  type Arg,
  type Graph,
  type Node,
  type ValueType,
} from '../../graph/ir.ts';
import { lookupOp, opKind, typeIndex } from '../../graph/ops.ts';
import { METRIC_INFO } from '../graph/overlay.ts';
import { formatOverlayValue } from '../graph/OverlayLegend.tsx';
import { usePaneOverlays } from './ColourBy.tsx';
import { NodeKernel } from './KernelsPanel.tsx';
import { shownStage, useStore } from '../store/index.ts';
import { calledOp, callArg, callForm } from '../../graph/call.ts';

/** Result size in bytes: a number when every dim is known, else a formula over the symbols. */
export function bytesOf(t: ValueType | null): string {
  if (!t || t.kind !== 'tensor') return '—';
  const elem = DTYPE_BYTES[t.dtype];
  let known = elem;
  const symbols: string[] = [];
  for (const d of t.shape) {
    if (typeof d === 'number') known *= d;
    else symbols.push(d.includes('*') || d.includes('+') ? `(${d})` : d);
  }
  const n = formatBytes(known);
  return symbols.length ? `${symbols.join(' × ')} × ${n}` : n;
}

/** Sums sizes that may be symbolic: numbers add up, each symbolic term is kept as written. */
function sumSizes(types: (ValueType | null | undefined)[]): string {
  let known = 0;
  const terms = new Map<string, number>();
  for (const t of types) {
    if (!t || t.kind !== 'tensor') continue;
    const s = bytesOf(t);
    const sym = t.shape.some((d) => typeof d !== 'number');
    if (!sym) known += DTYPE_BYTES[t.dtype] * t.shape.reduce<number>((a, d) => a * (d as number), 1);
    else terms.set(s, (terms.get(s) ?? 0) + 1);
  }
  const parts = [...terms].map(([s, n]) => (n > 1 ? `${n} × (${s})` : s));
  if (known > 0 || parts.length === 0) parts.push(formatBytes(known));
  return parts.join(' + ');
}

/** What a node reads (its tensor arguments) and, for mutating ops, the arguments it overwrites. */
export function bytesMoved(
  node: Node,
  types: Map<string, ValueType | null>,
): { reads: string; writes: string | null } {
  const args = [...node.args, ...Object.values(node.kwargs)];
  const reads = sumSizes([...new Set(args.flatMap((a) => refsOf(a)))].map((r) => types.get(r)));
  const def = lookupOp(calledOp(node));
  const mutated =
    def?.args
      .map((a, i) => (a.mutates ? callArg(node, i, a.name) : undefined))
      .filter((a): a is Arg => a !== undefined && a !== null) ?? [];
  const writes = mutated.length ? sumSizes(mutated.flatMap((a) => refsOf(a)).map((r) => types.get(r))) : null;
  return { reads, writes };
}

export function formatBytes(b: number): string {
  if (b < 1024) return `${b} B`;
  if (b < 1024 ** 2) return `${(b / 1024).toFixed(b % 1024 ? 1 : 0)} KiB`;
  if (b < 1024 ** 3) return `${(b / 1024 ** 2).toFixed(1)} MiB`;
  return `${(b / 1024 ** 3).toFixed(2)} GiB`;
}

function typeText(t: ValueType | null): string {
  if (!t) return '(tuple)';
  return t.kind === 'sym' ? `Sym(${t.expr})` : `${t.dtype}[${t.shape.join(', ')}]`;
}

function ArgValue({
  a,
  onRef,
  types,
}: {
  a: Arg;
  onRef: (name: string) => void;
  types?: Map<string, ValueType | null>;
}): ReactNode {
  if (a === null) return <span className="lit">None</span>;
  if (typeof a === 'boolean') return <span className="lit">{a ? 'True' : 'False'}</span>;
  if (typeof a === 'number') return <span className="lit">{a}</span>;
  if (typeof a === 'string') return <span className="str">'{a}'</span>;
  if (Array.isArray(a))
    return (
      <>
        [
        {a.map((x, i) => (
          <span key={i}>
            {i > 0 && ', '}
            <ArgValue a={x} onRef={onRef} types={types} />
          </span>
        ))}
        ]
      </>
    );
  switch (a.kind) {
    case 'ref': {
      const t = types?.get(a.name);
      return (
        <>
          <button type="button" className="linklike mono" onClick={() => onRef(a.name)}>
            {a.name}
          </button>
          {t && <span className="ty">{typeText(t)}</span>}
        </>
      );
    }
    case 'float':
      return <span className="lit">{Number.isInteger(a.value) ? a.value.toFixed(1) : String(a.value)}</span>;
    case 'op':
      return <span className="op-lit">{a.target}</span>;
    case 'tuple':
      return (
        <>
          (
          {a.items.map((x, i) => (
            <span key={i}>
              {i > 0 && ', '}
              <ArgValue a={x} onRef={onRef} types={types} />
            </span>
          ))}
          )
        </>
      );
    case 'expr':
      return <span className="lit">{a.text}</span>;
  }
}

/** Source lines of the imported nodes a rewritten node was made from, following madeBy back. */
export function originLines(node: Node, stages: Graph[]): number[] {
  const byName = new Map<string, Node>();
  // Later stages first, so a name reused by a pass resolves to its newest meaning.
  for (const g of [...stages].reverse())
    for (const n of g.nodes) if (!byName.has(n.name)) byName.set(n.name, n);
  const base = new Map(stages[0]?.nodes.map((n) => [n.name, n]));
  const lines = new Set<number>();
  const seen = new Set<string>();
  const walk = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const b = base.get(name);
    if (b?.meta.line !== undefined) {
      lines.add(b.meta.line);
      return;
    }
    const n = byName.get(name);
    for (const f of n?.meta.madeBy?.from ?? []) walk(f);
  };
  for (const f of node.meta.madeBy?.from ?? []) walk(f);
  return [...lines].sort((a, b) => a - b);
}

/**
 * Whom a node's |Δ| is measured against: its counterpart by provenance (the diff's pairs), or
 * none, said as such rather than left as a bare "no data".
 */
export function deltaCounterpart(
  counterparts: { after: ReadonlyMap<string, string>; before: ReadonlyMap<string, string> },
  side: 'before' | 'after',
  name: string,
): string {
  const other = side === 'after' ? 'before' : 'after';
  const paired = counterparts[side].get(name);
  return paired === undefined ? `no counterpart ${other} the rewrite` : `vs ${other}: ${paired}`;
}

/** The node's value under the graph views' overlay, and for |Δ| whom it was compared with. */
function OverlayRow({ node, graph }: { node: Node; graph: Graph }) {
  const [overlay] = usePaneOverlays(graph);
  const counterparts = useStore((s) =>
    s.nodeDeltas?.report === s.report ? s.nodeDeltas.counterparts : null,
  );
  const paneSide = useStore((s) => (s.stages[0]?.graph === graph ? 'before' : 'after'));
  if (!overlay) return null;
  const overlayValue = overlay.values.get(node.name);
  const comparedWith =
    overlay.legend.metric === 'delta' && counterparts
      ? deltaCounterpart(counterparts, paneSide, node.name)
      : null;
  return (
    <>
      <dt>{METRIC_INFO[overlay.legend.metric].label}</dt>
      <dd className="mono" data-testid="inspector-overlay" title={overlay.legend.source}>
        {overlayValue === undefined ? 'no data' : formatOverlayValue(overlay.legend.metric, overlayValue)}
      </dd>
      {comparedWith && (
        <dd className="mono" data-testid="inspector-counterpart">
          {comparedWith}
        </dd>
      )}
    </>
  );
}

/** The first rows of a node's details, for an op node and a graph input alike. */
function NameAndOp({ name, op }: { name: string; op: string }) {
  return (
    <>
      <dt>name</dt>
      <dd className="mono" data-testid="inspector-name">
        {name}
      </dd>
      <dt>op</dt>
      <dd className="mono" data-testid="inspector-op">
        {op}
      </dd>
    </>
  );
}

/** A node's arguments, positional (named by the op's schema where it has one) then keyword. */
function ArgumentsTable({
  node,
  argNames,
  onRef,
  types,
}: {
  node: Node;
  argNames: string[];
  onRef: (name: string) => void;
  types: Map<string, ValueType | null>;
}) {
  // auto_functionalized (v1, v2) passes the op it runs first: shown above, not as an argument.
  const positional = callForm(node) === 'plain' ? node.args : node.args.slice(1);
  return (
    <table className="args" data-testid="inspector-args">
      <colgroup>
        <col className="name" />
        <col />
      </colgroup>
      <tbody>
        {positional.map((a, i) => (
          <tr key={`p${i}`}>
            <th>{argNames[i] ?? i}</th>
            <td className="mono">
              <ArgValue a={a} onRef={onRef} types={types} />
            </td>
          </tr>
        ))}
        {Object.entries(node.kwargs).map(([k, v]) => (
          <tr key={k}>
            <th>{k}</th>
            <td className="mono">
              <ArgValue a={v} onRef={onRef} types={types} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function NodeDetails({ node, graph }: { node: Node; graph: Graph }) {
  const select = useStore((s) => s.select);
  const side = useStore((s) => s.selectedSide);
  const onRef = (name: string) => select(name, side, true);
  const op = calledOp(node);
  const def = lookupOp(op);
  const argNames = def?.args.map((a) => a.name) ?? [];
  const users = usersOf(graph).get(node.name) ?? [];
  const types = typeIndex(graph);
  const stageGraphs = useStore((s) => s.stages).map((st) => st.graph);
  const origins = node.meta.line === undefined && node.meta.madeBy ? originLines(node, stageGraphs) : [];
  const traffic = bytesMoved(node, types);
  return (
    <dl className="kv" aria-label="Node details">
      <NameAndOp name={node.name} op={op} />
      {op !== node.op && (
        <>
          <dt>via</dt>
          <dd className="mono">{node.op}</dd>
        </>
      )}
      <dt>kind</dt>
      <dd>
        <span className={`kind-chip kind-${opKind(op)}`}>{opKind(op)}</span>
      </dd>
      {def && (
        <>
          <dt>does</dt>
          <dd className="doc">{def.doc}</dd>
        </>
      )}
      <dt>type</dt>
      <dd className="mono" data-testid="inspector-type">
        {typeText(node.type)}
      </dd>
      <dt>bytes</dt>
      <dd className="mono" data-testid="inspector-bytes">
        {node.type ? <div>result {bytesOf(node.type)}</div> : null}
        <div>reads {traffic.reads}</div>
        {traffic.writes && <div>writes in place {traffic.writes}</div>}
      </dd>
      <OverlayRow node={node} graph={graph} />
      <NodeKernel node={node.name} graph={graph} />
      <dt className="wide">arguments</dt>
      <dd className="wide">
        <ArgumentsTable node={node} argNames={argNames} onRef={onRef} types={types} />
      </dd>
      <dt>users</dt>
      <dd className="mono">
        {users.length === 0
          ? '—'
          : users.map((u, i) => (
              <span key={u}>
                {i > 0 && ', '}
                {u === 'output' ? (
                  'output'
                ) : (
                  <button type="button" className="linklike mono" onClick={() => onRef(u)}>
                    {u}
                  </button>
                )}
              </span>
            ))}
      </dd>
      <dt>source</dt>
      <dd data-testid="inspector-source">
        {node.meta.line !== undefined ? (
          <>line {node.meta.line}</>
        ) : origins.length > 0 ? (
          <>
            made from line{origins.length > 1 ? 's' : ''} {origins.join(', ')}
          </>
        ) : (
          <span className="muted">{node.meta.madeBy ? 'made by a rewrite' : 'no source line'}</span>
        )}
        {node.meta.file && <div className="mono file">{node.meta.file}</div>}
      </dd>
      {node.meta.madeBy && (
        <>
          <dt>made by</dt>
          <dd data-testid="inspector-made-by">
            <span className="mono">{node.meta.madeBy.pass}</span> from{' '}
            {node.meta.madeBy.from.map((f, i) => (
              <span key={f} className="mono">
                {i > 0 && ', '}
                {f}
              </span>
            ))}
          </dd>
        </>
      )}
    </dl>
  );
}

export function Inspector() {
  const selected = useStore((s) => s.selected);
  const preferred = useStore((s) => s.selectedSide);
  const stages = useStore((s) => s.stages);
  const shown = useStore(shownStage);
  const graphOf = (side: 'before' | 'after') => (side === 'before' ? stages[0]?.graph : shown?.graph);
  const has = (side: 'before' | 'after') =>
    !!graphOf(side)?.nodes.some((n) => n.name === selected) ||
    !!graphOf(side)?.inputs.some((i) => i.name === selected);
  // The side the selection was made in, else the other one (a link or URL may name a removed node).
  const side = has(preferred)
    ? preferred
    : has(preferred === 'after' ? 'before' : 'after')
      ? preferred === 'after'
        ? 'before'
        : 'after'
      : preferred;
  const graph = graphOf(side);
  const node = graph?.nodes.find((n) => n.name === selected);
  const input = graph?.inputs.find((i) => i.name === selected);
  return (
    <section className="panel inspector" aria-labelledby="inspector-title">
      <header className="panel-head">
        <h2 id="inspector-title">Inspector</h2>
        {selected && (
          <span className="muted" data-testid="inspector-side">
            {stages.length < 2 ? 'imported' : side}
          </span>
        )}
      </header>
      {!selected && <p className="muted">Select a node in a graph, the why list or a site list.</p>}
      {selected && node && graph && <NodeDetails node={node} graph={graph} />}
      {selected && !node && input && (
        <dl className="kv">
          <NameAndOp name={input.name} op="placeholder (graph input)" />
          <dt>type</dt>
          <dd className="mono">{typeText(input.type)}</dd>
          <dt>bytes</dt>
          <dd className="mono">{bytesOf(input.type)}</dd>
        </dl>
      )}
      {selected && !node && !input && (
        <p className="muted">
          <span className="mono">{selected}</span> is not in the {side} graph.
        </p>
      )}
    </section>
  );
}
