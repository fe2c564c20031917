// The SVG renderer: one element per node, so tests and screen readers reach every node. The
// <svg> sits in an HTML layer that pan/zoom transforms (see usePanZoom): a transform on the <svg>
// itself would make Blink lay out every SVG text again on each frame.

import { memo, useMemo } from 'react';
import type { GraphLayout, LaidEdge, LaidGroup, LaidNode } from '../layout.ts';
import { changesByGroup, groupTitle, type SceneNode } from '../scene.ts';
import { edgeBounds, edgePath, valueLabels, type ValueLabel } from '../edgePath.ts';
import { GROUP_HEADER } from '../hitGrid.ts';
import { inkOn, type PaneOverlay } from '../overlay.ts';
import { formatOverlayValue } from '../OverlayLegend.tsx';
import type { ViewTransform } from '../viewCentre.ts';
import type { KernelGroup } from '../../../graph/artifacts/outputCode.ts';
import { kernelBoxes, kernelBoxTitle, type KernelBox } from '../kernelOverlay.ts';
import type { Ghost } from './useRewriteAnimation.ts';
import type { ViewRefs } from './viewRefs.ts';

export type NodeMark = 'added' | 'removed' | 'moved' | 'fused';

/** What the SVG draws of a layout. Edges keep their index in the whole layout as their key. */
interface SceneParts {
  nodes: LaidNode[];
  edges: { e: LaidEdge; i: number }[];
  groups: LaidGroup[];
  labels: ValueLabel[];
}

function wholeLayout(layout: GraphLayout): SceneParts {
  return {
    nodes: layout.nodes,
    edges: layout.edges.map((e, i) => ({ e, i })),
    groups: layout.groups,
    labels: valueLabels(layout),
  };
}

/** What a new graph's first frame draws: what lies within a screen of the view `t` (see useFirstFrame). */
function nearTheView(layout: GraphLayout, t: ViewTransform, height: number): SceneParts {
  const all = wholeLayout(layout);
  const bounds = edgeBounds(layout);
  const y0 = (-t.y - height) / t.k,
    y1 = (2 * height - t.y) / t.k;
  const near = (top: number, bottom: number) => bottom >= y0 && top <= y1;
  return {
    nodes: all.nodes.filter((n) => near(n.y, n.y + n.h)),
    edges: all.edges.filter(({ i }) => near(bounds[i * 4 + 1], bounds[i * 4 + 3])),
    groups: all.groups.filter((g) => near(g.y, g.y + g.h)),
    labels: all.labels.filter((l) => near(l.y - 12, l.y)),
  };
}

export interface SvgStageProps {
  /** The stage is the surface, the layer the scene, the boxes' group the viewport. */
  refs: ViewRefs;
  /** Takes the stage element (`refs.surface`). */
  surfaceRef: (el: HTMLDivElement | null) => void;
  layout: GraphLayout | null;
  /** A new graph's first frame: the view it shows, whose surroundings alone are drawn. */
  firstView: ViewTransform | null;
  /** The view's height, for what the first frame draws. */
  height: number;
  byName: ReadonlyMap<string, SceneNode>;
  marks?: Map<string, NodeMark>;
  selected: string | null;
  matches: ReadonlySet<string>;
  overlay?: PaneOverlay;
  /** Inductor's launches on this graph, drawn as boxes around the nodes each fused. */
  kernels?: readonly KernelGroup[];
  ghosts: Ghost[];
  onToggleGroup?: (group: string) => void;
  onClick(e: React.MouseEvent): void;
}

export function SvgStage(props: SvgStageProps) {
  const { refs, surfaceRef, layout, onClick } = props;
  // The layer's transform as this render finds it (pan/zoom writes it directly after).
  const t = refs.transform.current;
  return (
    <div ref={surfaceRef} className="fl-surface fl-stage" onClick={onClick}>
      <div
        ref={refs.scene}
        className="fl-scene-layer"
        style={{ transform: `translate(${t.x}px,${t.y}px) scale(${t.k})` }}
      >
        <svg
          className="fl-scene"
          xmlns="http://www.w3.org/2000/svg"
          width={layout ? Math.ceil(layout.width) : 0}
          height={layout ? Math.ceil(layout.height) : 0}
        >
          <defs>
            <marker
              id="fl-arrow"
              viewBox="0 0 8 8"
              refX="7"
              refY="4"
              markerWidth="7"
              markerHeight="7"
              orient="auto-start-reverse"
            >
              <path d="M0,0.8 L7.2,4 L0,7.2 z" fill="var(--fl-edge)" />
            </marker>
          </defs>
          {layout && <SvgScene {...props} layout={layout} />}
        </svg>
      </div>
    </div>
  );
}

function SvgScene(props: SvgStageProps & { layout: GraphLayout }) {
  const { layout, firstView, height, byName, marks, selected, matches, overlay, ghosts, onToggleGroup } =
    props;
  const { kernels } = props;
  const shown = useMemo(
    () => (firstView ? nearTheView(layout, firstView, height) : wholeLayout(layout)),
    // firstView is read afresh each render; whether there is one is what matters.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [layout, !!firstView, height],
  );
  const changes = useMemo(() => changesByGroup(marks, byName), [marks, byName]);
  const boxes = useMemo(() => (kernels ? kernelBoxes(layout.nodes, kernels) : []), [layout, kernels]);
  const hotEdges = useMemo(
    () =>
      new Set(
        selected
          ? layout.edges.filter(
              (e) => e.from === selected || e.to === selected || e.from.startsWith(`ref:${selected}@`),
            )
          : [],
      ),
    [layout, selected],
  );
  return (
    <g ref={props.refs.viewport} className="fl-viewport">
      <g className="fl-groups">
        {shown.groups.map((g) => (
          <GroupBox key={g.id} g={g} changes={changes.get(g.id) ?? 0} onToggle={onToggleGroup} />
        ))}
      </g>
      <g className="fl-kernels">
        {boxes.map((b) => (
          <KernelBoxView key={b.id} b={b} />
        ))}
      </g>
      <g className="fl-edges">
        {shown.edges.map(({ e, i }) => (
          <path
            key={i}
            className={`fl-edge${hotEdges.has(e) ? ' fl-hot' : ''}`}
            d={edgePath(e.points)}
            markerEnd="url(#fl-arrow)"
            data-from={e.from}
            data-to={e.to}
          />
        ))}
        {shown.labels.map((l) => (
          <text key={`l${l.from}`} className="fl-edge-label" x={l.x} y={l.y}>
            {l.label}
          </text>
        ))}
      </g>
      <g className="fl-nodes">
        {shown.nodes.map((n) =>
          n.name.startsWith('group:') ? null : (
            <NodeBox
              key={n.name}
              n={n}
              sn={byName.get(n.name)}
              mark={marks?.get(n.name)}
              selected={selected === n.name}
              match={matches.has(n.name)}
              fill={overlay ? (overlay.fills.get(n.name) ?? null) : undefined}
              value={overlayValue(overlay, n.name)}
            />
          ),
        )}
      </g>
      <g className="fl-ghosts" pointerEvents="none">
        {ghosts.map((gh) => (
          <GhostBox key={gh.n.name} gh={gh} />
        ))}
      </g>
    </g>
  );
}

function overlayValue(overlay: PaneOverlay | undefined, name: string): string | undefined {
  const v = overlay?.values.get(name);
  return overlay && v !== undefined ? formatOverlayValue(overlay.legend.metric, v) : undefined;
}

const NodeBox = memo(function NodeBox(props: {
  n: LaidNode;
  sn: SceneNode | undefined;
  mark?: NodeMark;
  selected: boolean;
  match: boolean;
  /** The overlay's fill (null: no data for this node); undefined: coloured by kind. */
  fill?: string | null;
  /** The overlay's value, as the legend writes it. */
  value?: string;
}) {
  const { n, sn, mark, selected, match, fill, value } = props;
  if (n.ref) {
    return (
      <g className="fl-ref" data-ref={n.ref} transform={`translate(${n.x},${n.y})`}>
        <title>{`${n.ref} (produced further up)`}</title>
        <rect width={n.w} height={n.h} rx={n.h / 2} />
        <text x={9} y={n.h / 2 + 3.5}>{`↗ ${n.ref}`}</text>
      </g>
    );
  }
  const kind = sn?.kind ?? 'opaque';
  const small = sn?.op === 'getitem';
  const input = kind === 'input';
  return (
    <g
      className={`fl-node${small ? ' fl-small' : ''}${input ? ' fl-input' : ''}`}
      data-node={n.name}
      data-op={sn?.op ?? ''}
      data-kind={kind}
      data-mark={mark}
      data-selected={selected ? 'true' : undefined}
      data-match={match ? 'true' : undefined}
      data-overlay={fill === undefined ? undefined : fill === null ? 'none' : 'value'}
      data-ink={fill ? inkOn(fill) : undefined}
      transform={`translate(${n.x},${n.y})`}
    >
      <title>
        {sn ? `${sn.name} = ${sn.op}${sn.type ? ` → ${sn.type}` : ''}` : n.name}
        {fill === undefined ? '' : `\n${value ?? 'no data'}`}
      </title>
      <rect
        className="fl-box"
        width={n.w}
        height={n.h}
        rx={small || input ? n.h / 2 : 5}
        style={{
          stroke: `var(--fl-kind-${kind})`,
          fill: fill === undefined ? `var(--fl-kind-${kind}-fill)` : (fill ?? 'var(--fl-overlay-none)'),
        }}
      />
      {!small && !input && (
        <rect
          className="fl-accent"
          x={0}
          y={4}
          width={3}
          height={n.h - 8}
          style={{ fill: `var(--fl-kind-${kind})` }}
        />
      )}
      {small ? (
        <text
          className="fl-title"
          x={n.w / 2}
          y={n.h / 2 + 3.5}
          textAnchor="middle"
        >{`${sn?.title ?? ''} ${n.name}`}</text>
      ) : sn && sn.subtitle && sn.subtitle !== sn.title ? (
        <>
          <text className="fl-title fl-title2" x={12} y={input ? 15 : 17}>
            {sn.title}
          </text>
          <text className="fl-sub" x={12} y={input ? 28 : 31}>
            {sn.subtitle}
          </text>
        </>
      ) : (
        <text className="fl-title" x={12} y={n.h / 2 + 4}>
          {sn?.title ?? n.name}
        </text>
      )}
      <rect
        className="fl-ring"
        x={-3}
        y={-3}
        width={n.w + 6}
        height={n.h + 6}
        rx={small || input ? n.h / 2 + 3 : 8}
      />
    </g>
  );
});

/** A node a rewrite removed, drawn where it was while it fades or merges into its replacement. */
function GhostBox({ gh }: { gh: Ghost }) {
  return (
    <g className="fl-ghost" transform={`translate(${gh.n.x},${gh.n.y})`}>
      <g className="fl-node" data-mark="removed" data-kind={gh.sn?.kind}>
        <rect
          className="fl-box"
          width={gh.n.w}
          height={gh.n.h}
          rx={5}
          style={{
            stroke: `var(--fl-kind-${gh.sn?.kind ?? 'opaque'})`,
            fill: `var(--fl-kind-${gh.sn?.kind ?? 'opaque'}-fill)`,
          }}
        />
        <text className="fl-title" x={12} y={17}>
          {gh.sn?.title}
        </text>
        <text className="fl-sub" x={12} y={31}>
          {gh.n.name}
        </text>
        <rect className="fl-ring" x={-3} y={-3} width={gh.n.w + 6} height={gh.n.h + 6} rx={8} />
      </g>
    </g>
  );
}

/** A kernel's box: the group box's look (graph.css `.fl-kernel`), labelled with its launch. */
function KernelBoxView({ b }: { b: KernelBox }) {
  return (
    <g
      className="fl-kernel"
      data-kernel={b.index}
      data-source={b.source}
      transform={`translate(${b.x},${b.y})`}
      pointerEvents="none"
    >
      <title>{kernelBoxTitle(b)}</title>
      <rect className="fl-group-box" width={b.w} height={b.h} rx={6} />
      <text className="fl-group-title" x={6} y={11}>
        {b.label}
      </text>
    </g>
  );
}

function GroupBox({
  g,
  changes,
  onToggle,
}: {
  g: LaidGroup;
  /** Changed nodes inside: a folded layer names them, so folding never hides a change. */
  changes: number;
  onToggle?: (id: string) => void;
}) {
  return (
    <g
      className="fl-group"
      data-group={g.id}
      data-collapsed={g.collapsed ? 'true' : 'false'}
      data-changes={changes}
      transform={`translate(${g.x},${g.y})`}
    >
      <rect className="fl-group-box" width={g.w} height={g.h} rx={8} />
      <g
        className="fl-group-toggle"
        role="button"
        tabIndex={0}
        aria-expanded={!g.collapsed}
        aria-label={`${g.collapsed ? 'Expand' : 'Collapse'} ${g.label}`}
        onClick={(e) => {
          e.stopPropagation();
          onToggle?.(g.id);
        }}
        onKeyDown={(e) => {
          if (e.key !== 'Enter' && e.key !== ' ') return;
          e.preventDefault();
          e.stopPropagation();
          onToggle?.(g.id);
        }}
      >
        <rect width={g.collapsed ? g.w : GROUP_HEADER.w} height={g.collapsed ? g.h : GROUP_HEADER.h} rx={8} />
        <text className="fl-group-title" x={12} y={g.collapsed ? g.h / 2 + 4 : 17}>
          {groupTitle(g, changes)}
        </text>
      </g>
    </g>
  );
}
