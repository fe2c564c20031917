// One graph, laid out top to bottom: SVG (one element per node, so tests and screen readers
// can reach every node) up to SVG_LIMIT visible nodes, a canvas with level of detail beyond.
// Pan/zoom with d3-zoom, a minimap, search, keyboard navigation, collapsible layer groups, and
// the rewrite animation (unchanged nodes stay, moved ones glide, removed ones fade or merge
// into the node that replaced them, added ones appear).

import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import {
  easeCubicInOut,
  select,
  zoom as d3zoom,
  zoomIdentity,
  type ZoomBehavior,
  type ZoomTransform,
} from 'd3';
import type { Graph } from '../../graph/ir.ts';
import type { GraphLayout, LaidGroup, LaidNode } from './layout.ts';
import type { LayoutResult } from './layoutProtocol.ts';
import type { Scene, SceneNode } from './scene.ts';
import { layoutClient, type PartialLayout } from './layoutClient.ts';
import { edgePath, valueLabels } from './edgePath.ts';
import {
  drawCanvas,
  drawMinimap,
  drawMinimapBase,
  minimapFrame,
  minimapSize,
  LOD_DETAIL,
  LOD_TITLES,
} from './canvasRenderer.ts';
import { readPalette, type Palette } from './palette.ts';
import { GROUP_HEADER, HitGrid } from './hitGrid.ts';
import { NavIndex, type Direction } from './keyboardNavigation.ts';
import { searchNodes } from './search.ts';
import { recordLayoutProgress, registerView, type ViewHandle } from './viewRegistry.ts';
import { downloadImage } from './exportImage.ts';
import { VIEW_REST_MS, ZOOM_EXTENT, centreOf, transformAt, type ViewCentre } from './viewCentre.ts';
import { inkOn, type PaneOverlay } from './overlay.ts';
import { OverlayLegend, formatOverlayValue } from './OverlayLegend.tsx';
import './graph.css';

export interface ViewTransform {
  x: number;
  y: number;
  k: number;
}
export type NodeMark = 'added' | 'removed' | 'moved' | 'fused';

export interface GraphViewProps {
  graph: Graph;
  label?: string;
  marks?: Map<string, NodeMark>;
  selected: string | null;
  onSelect: (name: string | null) => void;
  view?: ViewTransform;
  onViewChange?: (v: ViewTransform) => void;
  collapsed?: ReadonlySet<string>;
  onToggleGroup?: (group: string) => void;
  /** Fold all / unfold all: the groups to fold (every one, or none). */
  onSetCollapsed?: (groups: string[]) => void;
  animateFrom?: { graph: Graph; mapping: Map<string, string> };
  /**
   * Nodes a rewrite just changed: once this graph is laid out, the view centres on the one
   * nearest to what it shows (animated, then still) and reports which through `onFocus`.
   */
  focus?: { names: readonly string[]; nonce: number } | null;
  /** Returns true when the parent now anchors the shared view at that node (see `anchor`). */
  onFocus?: (name: string) => boolean | void;
  /**
   * `view` and `onViewChange` carry the screen position of this node rather than of the graph's
   * origin, so two views with counterpart anchors (before | after) line up by provenance.
   */
  anchor?: string | null;
  /** Where a new graph's first view looks (a link's pan/zoom) when its node is laid out; else the top. */
  initialView?: ViewCentre | null;
  /** Called once the view has rested VIEW_REST_MS after moving (by the user or the app), not per frame. */
  onViewRest?: (c: ViewCentre) => void;
  testMode?: boolean;
  /** Every box of the complete layout is in the DOM and painted. */
  onReady?: () => void;
  /** The first frame of a complete layout is painted (for a new graph: the boxes near the view). */
  onPainted?: () => void;
  /** Node fills by a measured value instead of kind (see overlay.ts), with its legend. */
  overlay?: PaneOverlay;
}

/**
 * What the view shows: a complete layout, or (on a first load) the blocks laid out so far,
 * each already where the complete layout puts it, up to the frame's sideways shift.
 */
interface Shown {
  /** The graph this layout is of (a relayout keeps the previous one on screen until it is in). */
  graph: Graph;
  scene: Scene;
  layout: GraphLayout;
  previous?: LayoutResult['previous'];
  ms: number;
  complete: boolean;
}

/** Beyond this many visible nodes the view draws on a canvas. */
export const SVG_LIMIT = 1500;
const ANIM_MS = 750;
/**
 * A new graph with more boxes than this draws, in its first frame, only what lies within a screen
 * of the view; the rest follows once that frame is painted.
 */
const FIRST_FRAME_MIN_NODES = 300;
/** A layout still running after this long paints the blocks it has so far. */
const PARTIAL_PAINT_AFTER_MS = 120;
/** How long the view must rest after a zoom before its layer is rasterised again at the new scale. */
const RERASTER_REST_MS = 150;

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

function GroupBox({ g, onToggle }: { g: LaidGroup; onToggle?: (id: string) => void }) {
  return (
    <g
      className="fl-group"
      data-group={g.id}
      data-collapsed={g.collapsed ? 'true' : 'false'}
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
          {g.collapsed ? `▸ ${g.label} · ${g.count} node${g.count === 1 ? '' : 's'}` : `▾ ${g.label}`}
        </text>
      </g>
    </g>
  );
}

export const GraphView: React.FC<GraphViewProps> = (props) => {
  const {
    graph,
    label,
    marks,
    selected,
    onSelect,
    view,
    onViewChange,
    collapsed,
    onToggleGroup,
    onSetCollapsed,
    animateFrom,
    testMode,
    onReady,
    onPainted,
    focus,
    onFocus,
    anchor,
    initialView,
    onViewRest,
    overlay,
  } = props;
  const rootRef = useRef<HTMLDivElement>(null);
  // The element pan/zoom listens on: a stage div over the SVG scene, or the canvas.
  const surfaceRef = useRef<HTMLDivElement | HTMLCanvasElement | null>(null);
  // The layer pan/zoom transforms: an HTML box around the SVG. A transform on the <svg> element
  // itself makes Blink lay out every SVG text again on each frame (its font scale follows the
  // element's transform); on an HTML ancestor it stays a compositor-only change.
  const sceneRef = useRef<HTMLDivElement>(null);
  const viewportRef = useRef<SVGGElement>(null);
  const minimapRef = useRef<HTMLCanvasElement>(null);
  const searchRef = useRef<HTMLInputElement>(null);
  const zoomRef = useRef<ZoomBehavior<Element, unknown> | null>(null);
  const transformRef = useRef<ZoomTransform>(zoomIdentity);
  const [result, setResult] = useState<Shown | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [ready, setReady] = useState(false);
  // Blocks (layer groups and the ungrouped runs between them) of the current request laid out
  // so far / in all: the view's progress attributes.
  const [progress, setProgress] = useState({ done: 0, total: 0 });
  const [size, setSize] = useState({ w: 0, h: 0 });
  const sizeRef = useRef(size);
  sizeRef.current = size;
  const [query, setQuery] = useState('');
  // The minimap can be put away when it sits over the nodes the user wants to see.
  const [showMinimap, setShowMinimap] = useState(true);
  const [matchIndex, setMatchIndex] = useState(-1);
  const [ghosts, setGhosts] = useState<{ n: LaidNode; sn?: SceneNode; to?: LaidNode }[]>([]);
  const fittedFor = useRef<Shown | null>(null);
  // The view was fitted to a partial layout and the user has not moved it since: fit again.
  const provisionalView = useRef(false);
  const drawRef = useRef<() => void>(() => {});
  const onViewChangeRef = useRef(onViewChange);
  onViewChangeRef.current = onViewChange;
  const onReadyRef = useRef(onReady);
  onReadyRef.current = onReady;
  const onPaintedRef = useRef(onPainted);
  onPaintedRef.current = onPainted;
  const paintedFor = useRef<Shown | null>(null);
  const paintedOnce = useCallback((r: Shown) => {
    if (paintedFor.current === r) return;
    paintedFor.current = r;
    onPaintedRef.current?.();
  }, []);
  const onFocusRef = useRef(onFocus);
  onFocusRef.current = onFocus;
  const onViewRestRef = useRef(onViewRest);
  onViewRestRef.current = onViewRest;

  // --- layout ------------------------------------------------------------------------------
  const collapsedKey = collapsed ? [...collapsed].sort().join('\n') : '';
  useEffect(() => {
    let live = true;
    let frameId = 0;
    let latest: PartialLayout | null = null;
    let paintedBottom = -Infinity;
    setReady(false);
    setError(null);
    setProgress({ done: 0, total: 0 });
    // Blocks are painted as they arrive, at most once a frame, until they fill the window down
    // to its bottom edge: blocks further down would change nothing on screen and only take the
    // page's time from the layout. A rewrite's relayout is not painted in parts: the old graph
    // stays until the new one can animate from it.
    // A layout that is done within PARTIAL_PAINT_AFTER_MS is not painted in parts either: painting
    // the first blocks and then the whole would lay the SVG out twice.
    const requestedAt = performance.now();
    const onProgress = animateFrom
      ? undefined
      : (p: PartialLayout) => {
          latest = p;
          if (frameId || performance.now() - requestedAt < PARTIAL_PAINT_AFTER_MS) return;
          frameId = requestAnimationFrame(() => {
            frameId = 0;
            if (!live || !latest) return;
            const q = latest;
            setProgress({ done: q.blocksDone, total: q.blocks });
            const t = transformRef.current;
            if (paintedBottom >= (sizeRef.current.h - t.y) / t.k) return;
            const partial = q.assemble();
            paintedBottom = partial.height;
            setResult({ graph, scene: q.scene, layout: partial, ms: 0, complete: false });
          });
        };
    layoutClient
      .layout(
        {
          graph,
          collapsed: collapsedKey ? collapsedKey.split('\n') : [],
          previous: animateFrom ? { graph: animateFrom.graph, mapping: [...animateFrom.mapping] } : undefined,
        },
        onProgress,
      )
      .then(
        (r) => {
          if (!live) return;
          cancelAnimationFrame(frameId);
          frameId = 0;
          setResult({
            graph,
            scene: r.scene,
            layout: r.layout,
            previous: r.previous,
            ms: r.ms,
            complete: true,
          });
          setProgress({ done: r.blocks, total: r.blocks });
        },
        (e: unknown) => {
          if (live) setError(e instanceof Error ? e.message : String(e));
        },
      );
    return () => {
      live = false;
      cancelAnimationFrame(frameId);
    };
  }, [graph, collapsedKey, animateFrom]);

  const layout: GraphLayout | null = result?.layout ?? null;
  const complete = !!result?.complete;
  // Keyed on the scene, which stays the same object while a layout's blocks arrive.
  const scene = result?.scene;
  const byName = useMemo(() => new Map((scene?.nodes ?? []).map((n) => [n.name, n])), [scene]);
  const visibleCount = layout ? layout.nodes.length : 0;
  // A partial layout is drawn by the renderer the whole graph will likely need, so the view
  // does not switch from SVG to canvas halfway through.
  const expectedCount =
    result && !result.complete ? Math.max(visibleCount, result.scene.nodes.length) : visibleCount;
  const renderer: 'svg' | 'canvas' = expectedCount > SVG_LIMIT ? 'canvas' : 'svg';
  // Hit-testing and arrow keys wait for the whole layout rather than rebuild for every block.
  const hitGrid = useMemo(() => (layout && complete ? new HitGrid(layout) : null), [layout, complete]);
  const nav = useMemo(() => (layout && complete ? new NavIndex(layout) : null), [layout, complete]);
  const search = useMemo(() => searchNodes(scene?.nodes ?? [], query), [scene, query]);
  const matchSet = useMemo(() => new Set(search.matches), [search]);

  // The complete layout whose every box is in the DOM; until then a new graph's first frame has
  // only the boxes near the view (drawing 1,000 SVG boxes and laying out their text costs the first
  // frame ~100 ms here, against ~10 ms for the screenful that shows).
  const [drawnAll, setDrawnAll] = useState<Shown | null>(null);
  // Whether this render is a new graph's first frame: only what lies within a screen of the view.
  const firstFrame =
    !!result?.complete &&
    !!layout &&
    renderer === 'svg' &&
    drawnAll !== result &&
    (drawnAll === null || drawnAll.graph !== result.graph) &&
    !result.previous &&
    layout.nodes.length > FIRST_FRAME_MIN_NODES &&
    size.h > 0;

  // --- size ----------------------------------------------------------------------------------
  useLayoutEffect(() => {
    const el = rootRef.current;
    if (!el) return;
    const measure = () => setSize({ w: el.clientWidth, h: el.clientHeight });
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // --- drawing -------------------------------------------------------------------------------
  // Theme colours, read back from CSS once per theme rather than on every frame.
  const paletteCache = useRef<{ theme: string | undefined; palette: Palette } | null>(null);
  const palette = useCallback((root: HTMLElement): Palette => {
    const theme = document.documentElement.dataset.theme;
    if (!paletteCache.current || paletteCache.current.theme !== theme)
      paletteCache.current = { theme, palette: readPalette(root) };
    return paletteCache.current!.palette;
  }, []);

  const minimapBase = useRef<{
    layout: GraphLayout;
    w: number;
    h: number;
    palette: Palette;
    fills: PaneOverlay['fills'] | undefined;
    canvas: HTMLCanvasElement;
  } | null>(null);
  const drawMini = useCallback(() => {
    const mm = minimapRef.current,
      root = rootRef.current;
    // The minimap waits for the whole layout: redrawing its base for every arriving block
    // would take the page's time from the blocks themselves.
    if (!mm || !layout || !root || !complete) return;
    const dpr = window.devicePixelRatio || 1;
    const w = mm.clientWidth,
      h = mm.clientHeight;
    if (!w || !h) return;
    if (mm.width !== Math.round(w * dpr)) {
      mm.width = Math.round(w * dpr);
      mm.height = Math.round(h * dpr);
    }
    const ctx = mm.getContext('2d');
    if (!ctx) return;
    const pal = palette(root);
    let base = minimapBase.current;
    const fills = overlay?.fills;
    if (
      !base ||
      base.layout !== layout ||
      base.w !== w ||
      base.h !== h ||
      base.palette !== pal ||
      base.fills !== fills
    ) {
      base = {
        layout,
        w,
        h,
        palette: pal,
        fills,
        canvas: drawMinimapBase(w, h, dpr, layout, byName, pal, fills),
      };
      minimapBase.current = base;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const t = transformRef.current;
    drawMinimap(ctx, w, h, layout, base.canvas, pal, {
      x0: -t.x / t.k,
      y0: -t.y / t.k,
      x1: (size.w - t.x) / t.k,
      y1: (size.h - t.y) / t.k,
    });
    // showMinimap: hiding the map unmounts its canvas; a new callback redraws the one mounted when it is shown again.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [layout, complete, byName, size, palette, showMinimap, overlay]);

  const drawCanvasFrame = useCallback(() => {
    const c = surfaceRef.current,
      root = rootRef.current;
    if (!(c instanceof HTMLCanvasElement) || !layout || !root) return;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(size.w * dpr) || c.height !== Math.round(size.h * dpr)) {
      c.width = Math.round(size.w * dpr);
      c.height = Math.round(size.h * dpr);
    }
    const ctx = c.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    drawCanvas({
      ctx,
      width: size.w,
      height: size.h,
      transform: transformRef.current,
      layout,
      byName,
      palette: palette(root),
      marks,
      selected,
      matches: matchSet,
      fills: overlay?.fills,
    });
  }, [layout, byName, size, marks, selected, matchSet, palette, overlay]);

  const frame = useRef(0);
  const applyTransform = useCallback((t: ZoomTransform) => {
    transformRef.current = t;
    const root = rootRef.current;
    if (root) {
      root.classList.toggle('fl-lod-far', t.k < LOD_DETAIL);
      root.classList.toggle('fl-lod-tiny', t.k < LOD_TITLES * 0.6);
    }
    // The SVG scene moves as one composited layer: panning costs no repaint of 1,000 nodes.
    if (sceneRef.current) sceneRef.current.style.transform = `translate(${t.x}px,${t.y}px) scale(${t.k})`;
    cancelAnimationFrame(frame.current);
    frame.current = requestAnimationFrame(() => drawRef.current());
  }, []);
  drawRef.current = () => {
    drawCanvasFrame();
    drawMini();
  };
  // A composited layer keeps the resolution it was rasterised at; once the view has rested for
  // RERASTER_REST_MS after a zoom, redraw it sharp. Not on every 'end': a programmatic transform
  // (an animation, a synced partner) ends on each frame, and re-rasterising then costs frames.
  const rasterK = useRef(1);
  const rerasterTimer = useRef(0);
  const reraster = useCallback(() => {
    window.clearTimeout(rerasterTimer.current);
    rerasterTimer.current = window.setTimeout(() => {
      const el = sceneRef.current;
      const k = transformRef.current.k;
      if (!el || Math.abs(k - rasterK.current) / rasterK.current < 0.15) return;
      rasterK.current = k;
      el.style.willChange = 'auto';
      requestAnimationFrame(() => {
        el.style.willChange = 'transform';
      });
    }, RERASTER_REST_MS);
  }, []);
  useEffect(() => () => window.clearTimeout(rerasterTimer.current), []);
  // Reports where the view rests, from the complete layout of the graph it was given.
  const shownRef = useRef<{ result: Shown | null; graph: Graph }>({ result, graph });
  shownRef.current = { result, graph };
  const restTimer = useRef(0);
  const scheduleRest = useCallback(() => {
    window.clearTimeout(restTimer.current);
    // Until it rests the view is still settling: the test-mode ready flag waits for data-moving to
    // go (an attribute, not state: this runs on every frame of a gesture).
    rootRef.current?.setAttribute('data-moving', 'true');
    restTimer.current = window.setTimeout(() => {
      rootRef.current?.removeAttribute('data-moving');
      const { result: r, graph: g } = shownRef.current;
      if (!r?.complete || r.graph !== g || !sizeRef.current.w) return;
      const c = centreOf(r.layout, transformRef.current, sizeRef.current);
      if (c) onViewRestRef.current?.(c);
    }, VIEW_REST_MS);
  }, []);
  useEffect(() => () => window.clearTimeout(restTimer.current), []);
  useEffect(() => {
    drawRef.current();
  }, [drawCanvasFrame, drawMini]);

  // --- pan/zoom ------------------------------------------------------------------------------
  // The anchor's centre in graph coordinates: views are exchanged relative to it.
  const anchorAt = useMemo(() => {
    const n = anchor ? layout?.nodes.find((m) => m.name === anchor) : undefined;
    return n ? { x: n.x + n.w / 2, y: n.y + n.h / 2 } : { x: 0, y: 0 };
  }, [anchor, layout]);
  const anchorRef = useRef(anchorAt);
  anchorRef.current = anchorAt;
  const announce = useCallback((t: { x: number; y: number; k: number }) => {
    const a = anchorRef.current;
    onViewChangeRef.current?.({ x: t.x + a.x * t.k, y: t.y + a.y * t.k, k: t.k });
  }, []);
  const fromShared = useCallback((v: ViewTransform) => {
    const a = anchorRef.current;
    return zoomIdentity.translate(v.x - a.x * v.k, v.y - a.y * v.k).scale(v.k);
  }, []);

  useEffect(() => {
    const surface = surfaceRef.current;
    if (!surface || !layout) return;
    const z = d3zoom<Element, unknown>()
      .scaleExtent([...ZOOM_EXTENT])
      .on('zoom', (ev: { transform: ZoomTransform; sourceEvent: unknown }) => {
        applyTransform(ev.transform);
        scheduleRest();
        if (ev.sourceEvent) provisionalView.current = false;
        if (ev.sourceEvent) announce(ev.transform);
      })
      .on('end', () => reraster());
    zoomRef.current = z;
    const sel = select<Element, unknown>(surface);
    sel.call(z).on('dblclick.zoom', null);
    // Keep the transform across a renderer switch.
    sel.call(z.transform, transformRef.current);
    return () => {
      sel.on('.zoom', null);
    };
    // Rebinds only when the surface element changes (renderer, layout present), not on every new layout.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [renderer, layout !== null, applyTransform, announce, scheduleRest]);

  const setTransform = useCallback(
    (t: ZoomTransform, animate: boolean, notify = true) => {
      const surface = surfaceRef.current,
        z = zoomRef.current;
      if (!surface || !z) return;
      const sel = select<Element, unknown>(surface);
      if (animate && !testMode) sel.transition().duration(350).call(z.transform, t);
      else sel.call(z.transform, t);
      if (notify) announce(t);
    },
    [testMode, announce],
  );

  const fit = useCallback(
    (animate: boolean) => {
      if (!layout || !size.w) return;
      const k = Math.min(
        2,
        Math.max(ZOOM_EXTENT[0], Math.min((size.w - 32) / layout.width, (size.h - 32) / layout.height)),
      );
      setTransform(
        zoomIdentity.translate((size.w - layout.width * k) / 2, (size.h - layout.height * k) / 2).scale(k),
        animate,
      );
    },
    [layout, size, setTransform],
  );

  const centerOn = useCallback(
    (name: string, animate: boolean, k?: number) => {
      const n = layout?.nodes.find((m) => m.name === name);
      if (!n || !size.w) return;
      const kk = k ?? Math.max(transformRef.current.k, 0.8);
      setTransform(
        zoomIdentity
          .translate(size.w / 2 - (n.x + n.w / 2) * kk, size.h / 2 - (n.y + n.h / 2) * kk)
          .scale(kk),
        animate,
      );
    },
    [layout, size, setTransform],
  );

  // First view of a new layout: the given view, else the top of the graph at a readable zoom,
  // just below the toolbar.
  useEffect(() => {
    if (!result || !layout || !size.w || !zoomRef.current || fittedFor.current === result) return;
    const before = fittedFor.current;
    const firstForGraph = before === null || before.layout.nodes.length === 0 || provisionalView.current;
    fittedFor.current = result;
    const wanted =
      firstForGraph && initialView
        ? transformAt(layout, initialView, size, (n) => byName.get(n)?.group)
        : null;
    if (wanted) {
      // Re-applied as more blocks arrive, until the user moves: a wider block shifts the frame.
      provisionalView.current = !result.complete;
      setTransform(zoomIdentity.translate(wanted.x, wanted.y).scale(wanted.k), false, true);
      return;
    }
    if (view) {
      setTransform(fromShared(view), false, false);
      return;
    }
    // A rewrite's relayout keeps the view where it was: the focus (below) moves it to the change.
    if (!firstForGraph && animateFrom) return;
    if (!firstForGraph) {
      // Moved by the user while blocks were arriving: a wider block shifts the frame sideways;
      // shift the view with it so painted blocks stay where they are on screen.
      const a = before && !before.complete ? before.layout.nodes[0] : undefined;
      const b = a ? layout.nodes.find((n) => n.name === a.name) : undefined;
      if (a && b && (a.x !== b.x || a.y !== b.y)) {
        const t = transformRef.current;
        setTransform(
          zoomIdentity.translate(t.x + (a.x - b.x) * t.k, t.y + (a.y - b.y) * t.k).scale(t.k),
          false,
          true,
        );
      }
      return;
    }
    provisionalView.current = !result.complete;
    // Announced, so a synced partner (the other side of a diff) starts from the same view.
    setTransform(topOfGraph(layout, size), false, true);
  }, [result, layout, size, view, animateFrom, setTransform, fromShared, initialView, byName]);

  // Centre on the change once this graph's own layout is in; the nearest candidate to the view's
  // centre, so applying every site keeps the user where they were looking.
  const focusedNonce = useRef<number | null>(null);
  useEffect(() => {
    if (
      !focus ||
      focusedNonce.current === focus.nonce ||
      !result?.complete ||
      result.graph !== graph ||
      !size.w ||
      !zoomRef.current
    )
      return;
    const byNode = new Map(result.layout.nodes.map((n) => [n.name, n]));
    const t = transformRef.current;
    const cx = (size.w / 2 - t.x) / t.k,
      cy = (size.h / 2 - t.y) / t.k;
    let best: LaidNode | undefined;
    let bestD = Infinity;
    for (const name of focus.names) {
      const n = byNode.get(name);
      if (!n) continue;
      const d = Math.hypot(n.x + n.w / 2 - cx, n.y + n.h / 2 - cy);
      if (d < bestD) {
        best = n;
        bestD = d;
      }
    }
    focusedNonce.current = focus.nonce;
    if (!best) return;
    // The parent re-anchors the shared view at this node: announce relative to it already.
    if (onFocusRef.current?.(best.name))
      anchorRef.current = { x: best.x + best.w / 2, y: best.y + best.h / 2 };
    const k = Math.max(0.6, t.k);
    setTransform(
      zoomIdentity
        .translate(size.w / 2 - (best.x + best.w / 2) * k, size.h / 2 - (best.y + best.h / 2) * k)
        .scale(k),
      true,
    );
  }, [focus, result, graph, size, setTransform]);

  // A view pushed from outside (the other side of a diff).
  useEffect(() => {
    if (!view || !zoomRef.current) return;
    const want = fromShared(view);
    const t = transformRef.current;
    if (Math.abs(t.x - want.x) < 0.5 && Math.abs(t.y - want.y) < 0.5 && Math.abs(t.k - want.k) < 1e-4) return;
    setTransform(want, false, false);
  }, [view, setTransform, fromShared, anchorAt]);

  // --- ready flag ------------------------------------------------------------------------------
  useEffect(() => {
    if (!result?.complete || firstFrame) return;
    let raf2 = 0;
    const raf = requestAnimationFrame(() => {
      raf2 = requestAnimationFrame(() => {
        setReady(true);
        // Drawn whole in its first frame: that frame was the first painted one too.
        paintedOnce(result);
        onReadyRef.current?.();
      });
    });
    return () => {
      cancelAnimationFrame(raf);
      cancelAnimationFrame(raf2);
    };
  }, [result, firstFrame, paintedOnce]);

  // --- rewrite animation -------------------------------------------------------------------------
  const animatedFor = useRef<Shown | null>(null);
  useLayoutEffect(() => {
    if (!result?.previous || !animateFrom || testMode || renderer !== 'svg' || animatedFor.current === result)
      return;
    animatedFor.current = result;
    const vp = viewportRef.current;
    if (!vp) return;
    const before = new Map(result.previous.layout.nodes.map((n) => [n.name, n]));
    const kept = new Set<string>();
    const afterNames = new Set(result.layout.nodes.map((n) => n.name));
    for (const n of result.layout.nodes) {
      const b = animateFrom.mapping.get(n.name) ?? n.name;
      if (before.has(b)) kept.add(b);
    }
    const afterNodes = new Map(result.layout.nodes.map((n) => [n.name, n]));
    const madeFrom = new Map<string, string>();
    for (const node of graph.nodes)
      for (const f of node.meta.madeBy?.from ?? []) if (!madeFrom.has(f)) madeFrom.set(f, node.name);
    const prevScene = new Map(result.previous.scene.nodes.map((n) => [n.name, n]));
    const gone = result.previous.layout.nodes.filter(
      (n) => !n.ref && !kept.has(n.name) && !afterNames.has(n.name),
    );
    setGhosts(
      gone.map((n) => ({ n, sn: prevScene.get(n.name), to: afterNodes.get(madeFrom.get(n.name) ?? '') })),
    );
    select(vp)
      .selectAll<SVGGElement, unknown>('g.fl-node, g.fl-ref')
      .each(function () {
        const name = this.getAttribute('data-node');
        const final = this.getAttribute('transform') ?? '';
        const b = name ? before.get(animateFrom.mapping.get(name) ?? name) : undefined;
        const sel = select(this);
        if (b) {
          const start = `translate(${b.x},${b.y})`;
          if (start !== final)
            sel
              .attr('transform', start)
              .transition()
              .duration(ANIM_MS)
              .ease(easeCubicInOut)
              .attr('transform', final);
        } else {
          sel
            .style('opacity', 0)
            .transition()
            .delay(ANIM_MS * 0.8)
            .duration(ANIM_MS * 0.6)
            .style('opacity', 1);
        }
      });
    select(vp)
      .selectAll<SVGElement, unknown>('.fl-edges')
      .style('opacity', 0)
      .transition()
      .delay(ANIM_MS * 0.9)
      .duration(ANIM_MS * 0.5)
      .style('opacity', 1);
    const done = window.setTimeout(() => setGhosts([]), ANIM_MS * 2.2);
    return () => window.clearTimeout(done);
  }, [result, animateFrom, testMode, renderer, graph]);

  useLayoutEffect(() => {
    const vp = viewportRef.current;
    if (!vp || !ghosts.length) return;
    select(vp)
      .selectAll<SVGGElement, unknown>('g.fl-ghost')
      .each(function (_d, i) {
        const gh = ghosts[i];
        if (!gh) return;
        const sel = select(this).style('opacity', 1);
        // First the surviving nodes move, then the removed ones merge into what replaced them.
        const t = sel
          .transition()
          .delay(ANIM_MS * 0.7)
          .duration(ANIM_MS)
          .ease(easeCubicInOut);
        if (gh.to)
          t.attr(
            'transform',
            `translate(${gh.to.x + (gh.to.w - gh.n.w) / 2},${gh.to.y + (gh.to.h - gh.n.h) / 2})`,
          );
        t.style('opacity', 0);
      });
  }, [ghosts]);

  // Every change of the progress attributes, for tests that must see blocks painted before the
  // whole layout is in even where polling the DOM could miss it.
  useEffect(() => {
    recordLayoutProgress({
      label,
      groupsLaidOut: progress.done,
      groupsTotal: progress.total,
      ready: ready && !error,
    });
  }, [progress, ready, error, label]);

  // --- selection, search, keys -------------------------------------------------------------------
  const choose = useCallback(
    (name: string | null) => {
      if (name && name.startsWith('group:')) {
        onToggleGroup?.(name.slice(6));
        return;
      }
      onSelect(name);
    },
    [onSelect, onToggleGroup],
  );

  const onSurfaceClick = useCallback(
    (e: React.MouseEvent) => {
      if (renderer === 'canvas') {
        const rect = (e.currentTarget as Element).getBoundingClientRect();
        const t = transformRef.current;
        const hit = hitGrid?.at((e.clientX - rect.left - t.x) / t.k, (e.clientY - rect.top - t.y) / t.k);
        choose(hit ? ('ref' in hit && hit.ref ? hit.ref : hit.name) : null);
        return;
      }
      const target = (e.target as Element).closest('[data-node], [data-ref]');
      if (!target) {
        onSelect(null);
        return;
      }
      choose(target.getAttribute('data-node') ?? target.getAttribute('data-ref'));
    },
    [renderer, hitGrid, choose, onSelect],
  );

  const jumpToMatch = useCallback(
    (delta: number) => {
      if (!search.matches.length) return;
      const i = (matchIndex + delta + search.matches.length) % search.matches.length;
      setMatchIndex(i);
      const name = search.matches[i];
      onSelect(name);
      centerOn(name, true);
    },
    [search, matchIndex, onSelect, centerOn],
  );

  const onKeyDown = useCallback(
    (e: React.KeyboardEvent) => {
      if (e.target === searchRef.current) {
        if (e.key === 'Enter') {
          e.preventDefault();
          jumpToMatch(e.shiftKey ? -1 : 1);
        } else if (e.key === 'Escape') {
          setQuery('');
          rootRef.current?.focus();
        }
        return;
      }
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const dirs: Record<string, Direction> = {
        ArrowUp: 'up',
        ArrowDown: 'down',
        ArrowLeft: 'left',
        ArrowRight: 'right',
      };
      if (dirs[e.key]) {
        e.preventDefault();
        if (!nav || !layout) return;
        const next =
          selected && nav.has(selected)
            ? nav.step(selected, dirs[e.key])
            : layout.nodes.find((n) => !n.ref)?.name;
        if (next) {
          onSelect(next);
          centerOn(next, true, transformRef.current.k);
        }
      } else if (e.key === 'Enter') {
        if (selected) {
          e.preventDefault();
          centerOn(selected, true, 1);
        }
      } else if (e.key === 'f') {
        e.preventDefault();
        fit(true);
      } else if (e.key === 'm') {
        e.preventDefault();
        setShowMinimap((v) => !v);
      } else if (e.key === '[' || e.key === ']') {
        // [ folds every layer, ] unfolds them all; on a canvas this is the keyboard's way in.
        e.preventDefault();
        onSetCollapsed?.(e.key === '[' ? (scene?.groups ?? []).map((g) => g.id) : []);
      } else if (e.key === '-' || e.key === '+' || e.key === '=') {
        // − folds the selected node's layer, + unfolds it.
        const group = selected ? scene?.nodes.find((n) => n.name === selected)?.group : undefined;
        if (group && (e.key === '-') !== !!collapsed?.has(group)) {
          e.preventDefault();
          onToggleGroup?.(group);
        }
      } else if (e.key === '/') {
        e.preventDefault();
        searchRef.current?.focus();
      } else if (e.key === 'Escape') {
        onSelect(null);
      }
    },
    [
      nav,
      layout,
      selected,
      onSelect,
      centerOn,
      fit,
      jumpToMatch,
      onSetCollapsed,
      onToggleGroup,
      scene,
      collapsed,
    ],
  );

  // --- test and export hooks ---------------------------------------------------------------------
  useEffect(() => {
    const root = rootRef.current;
    if (!root || !result) return;
    const handle: ViewHandle = {
      root,
      scene: result.scene,
      layout: result.layout,
      marks,
      selected,
      layoutMs: result.ms,
      transform: () => transformRef.current,
      nodeAt: (clientX, clientY) => {
        const rect = root.getBoundingClientRect();
        const t = transformRef.current;
        const hit = hitGrid?.at((clientX - rect.left - t.x) / t.k, (clientY - rect.top - t.y) / t.k);
        return hit ? ('ref' in hit && hit.ref ? hit.ref : hit.name) : null;
      },
      nodeCenter: (name) => {
        const n = result.layout.nodes.find((m) => m.name === name);
        if (!n) return null;
        const rect = root.getBoundingClientRect();
        const t = transformRef.current;
        return { x: rect.left + t.x + (n.x + n.w / 2) * t.k, y: rect.top + t.y + (n.y + n.h / 2) * t.k };
      },
      centerOn: (name) => centerOn(name, false, 1),
      fit: () => fit(false),
      setView: (v) => setTransform(zoomIdentity.translate(v.x, v.y).scale(v.k), false),
    };
    return registerView(handle);
  }, [result, marks, selected, hitGrid, centerOn, fit, setTransform]);

  const onExport = useCallback(
    (format: 'svg' | 'png') => {
      const root = rootRef.current;
      if (root) void downloadImage(root, format, `${label ?? graph.name ?? 'graph'}`);
    },
    [label, graph.name],
  );

  // --- render ------------------------------------------------------------------------------------
  // Shaped like the graph, at most a fifth of the view's width and half its height.
  const mini = layout
    ? minimapSize(layout, Math.min(160, size.w / 5), Math.max(60, Math.min(360, size.h / 2)))
    : { w: 0, h: 0 };
  const allFolded = !!scene && scene.groups.length > 0 && scene.groups.every((g) => collapsed?.has(g.id));
  const hotEdges = useMemo(
    () =>
      new Set(
        selected
          ? (layout?.edges ?? []).filter(
              (e) => e.from === selected || e.to === selected || e.from.startsWith(`ref:${selected}@`),
            )
          : [],
      ),
    [layout, selected],
  );

  // Where the view is (or is about to be) decides what the first frame needs.
  const firstFrameT = firstFrame
    ? fittedFor.current === null
      ? ((initialView && transformAt(layout!, initialView, size, (n) => byName.get(n)?.group)) ??
        topOfGraph(layout!, size))
      : transformRef.current
    : null;
  const shown = useMemo(() => {
    // The canvas draws from the layout itself.
    if (!layout || renderer !== 'svg') return null;
    const labels = valueLabels(layout);
    // Edges keep their index in the whole layout as their key, so the rest is added, not re-keyed.
    const edges = layout.edges.map((e, i) => ({ e, i }));
    if (!firstFrameT) return { nodes: layout.nodes, edges, groups: layout.groups, labels };
    const y0 = (-firstFrameT.y - size.h) / firstFrameT.k,
      y1 = (2 * size.h - firstFrameT.y) / firstFrameT.k;
    const near = (top: number, bottom: number) => bottom >= y0 && top <= y1;
    return {
      nodes: layout.nodes.filter((n) => near(n.y, n.y + n.h)),
      edges: edges.filter(({ e }) => {
        let top = Infinity,
          bottom = -Infinity;
        for (let i = 1; i < e.points.length; i += 2) {
          top = Math.min(top, e.points[i]);
          bottom = Math.max(bottom, e.points[i]);
        }
        return near(top, bottom);
      }),
      groups: layout.groups.filter((g) => near(g.y, g.y + g.h)),
      labels: labels.filter((l) => near(l.y - 12, l.y)),
    };
    // firstFrameT is read afresh each render; whether there is one is what matters.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [layout, renderer, !!firstFrameT, size.h]);
  // Once the first frame is painted, the rest.
  useEffect(() => {
    if (!result?.complete || !firstFrame) return;
    let raf2 = 0;
    const raf = requestAnimationFrame(() => {
      raf2 = requestAnimationFrame(() => {
        paintedOnce(result);
        setDrawnAll(result);
      });
    });
    return () => {
      cancelAnimationFrame(raf);
      cancelAnimationFrame(raf2);
    };
  }, [result, firstFrame, paintedOnce]);

  const svgContent =
    shown && renderer === 'svg' ? (
      <g ref={viewportRef} className="fl-viewport">
        <g className="fl-groups">
          {shown.groups.map((g) => (
            <GroupBox key={g.id} g={g} onToggle={onToggleGroup} />
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
                match={matchSet.has(n.name)}
                fill={overlay ? (overlay.fills.get(n.name) ?? null) : undefined}
                value={overlayValue(overlay, n.name)}
              />
            ),
          )}
        </g>
        <g className="fl-ghosts" pointerEvents="none">
          {ghosts.map((gh) => (
            <g key={gh.n.name} className="fl-ghost" transform={`translate(${gh.n.x},${gh.n.y})`}>
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
          ))}
        </g>
      </g>
    ) : null;

  return (
    <div
      ref={rootRef}
      className="fl-graph-view"
      data-testid="graph-view"
      data-ready={ready && !error ? 'true' : 'false'}
      data-renderer={renderer}
      data-node-count={result ? result.scene.nodes.length : 0}
      data-groups-laid-out={progress.done}
      data-groups-total={progress.total}
      data-label={label}
      tabIndex={0}
      role="application"
      aria-label={`${label ? `${label} ` : ''}graph: ${graph.nodes.length} nodes. Arrows move the selection, Enter focuses it, f fits, / searches, [ and ] fold and unfold every layer, - and + the selected node's.`}
      onKeyDown={onKeyDown}
    >
      {renderer === 'svg' ? (
        <div
          ref={(el) => {
            surfaceRef.current = el;
          }}
          className="fl-surface fl-stage"
          onClick={onSurfaceClick}
        >
          <div
            ref={sceneRef}
            className="fl-scene-layer"
            style={{
              transform: `translate(${transformRef.current.x}px,${transformRef.current.y}px) scale(${transformRef.current.k})`,
            }}
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
              {svgContent}
            </svg>
          </div>
        </div>
      ) : (
        <canvas
          ref={(el) => {
            surfaceRef.current = el;
          }}
          className="fl-surface"
          onClick={onSurfaceClick}
          aria-hidden="true"
        />
      )}
      {renderer === 'canvas' && result && (
        // Screen readers and tests get the nodes as a list even when they are pixels.
        <ul className="fl-a11y-list" aria-label="nodes">
          {selected && (
            <li data-node-item={selected} aria-current="true">
              {selected}
            </li>
          )}
          {search.matches.slice(0, 200).map((m) => (
            <li key={m} data-node-item={m}>
              {m}
            </li>
          ))}
        </ul>
      )}

      <div className="fl-chrome">
        {/* The label and the count first; the toolbar beside them, or below them where the pane is too
            narrow for both (flex wrap: nothing overlaps at any width). */}
        <div className="fl-corner">
          {label && <span className="fl-corner-label">{label}</span>}
          <span className="fl-status">
            {error ? (
              <span role="alert">{error}</span>
            ) : !result ? (
              'Laying out…'
            ) : !result.complete ? (
              `Laying out… ${progress.done}/${progress.total} groups`
            ) : (
              `${result.scene.nodes.length} node${result.scene.nodes.length === 1 ? '' : 's'} · ${renderer}`
            )}
          </span>
        </div>
        <div className="fl-toolbar">
          <input
            ref={searchRef}
            type="search"
            placeholder="Search name, op, /regex/"
            aria-label="Search nodes"
            value={query}
            aria-invalid={search.error ? 'true' : 'false'}
            title={search.error ?? 'Enter: next match'}
            onChange={(e) => {
              setQuery(e.target.value);
              setMatchIndex(-1);
            }}
          />
          {query && (
            <span className="fl-search-count" data-testid="search-count">
              {search.error
                ? 'error'
                : `${matchIndex + 1 > 0 ? `${matchIndex + 1}/` : ''}${search.matches.length}`}
            </span>
          )}
          {onSetCollapsed && (scene?.groups.length ?? 0) > 0 && (
            <button
              type="button"
              data-testid="fold-all"
              onClick={() => onSetCollapsed(allFolded ? [] : (scene?.groups ?? []).map((g) => g.id))}
              title={allFolded ? 'Unfold every layer (])' : 'Fold every layer ([)'}
            >
              {allFolded ? 'Unfold all' : 'Fold all'}
            </button>
          )}
          <button
            type="button"
            aria-pressed={showMinimap}
            onClick={() => setShowMinimap((v) => !v)}
            title="Show or hide the minimap (m)"
          >
            Map
          </button>
          <button type="button" onClick={() => fit(true)} title="Fit to view (f)">
            Fit
          </button>
          <button type="button" onClick={() => onExport('svg')} title="Export this view as SVG">
            SVG
          </button>
          <button type="button" onClick={() => onExport('png')} title="Export this view as PNG">
            PNG
          </button>
        </div>
      </div>
      {layout && layout.nodes.length > 0 && showMinimap && (
        <canvas
          ref={minimapRef}
          className="fl-minimap"
          aria-label="Minimap"
          style={{ width: mini.w, height: mini.h }}
          onClick={(e) => {
            const rect = e.currentTarget.getBoundingClientRect();
            const t = transformRef.current;
            const { scale, ox, oy } = minimapFrame(rect.width, rect.height, layout);
            const gx = (e.clientX - rect.left - ox) / scale,
              gy = (e.clientY - rect.top - oy) / scale;
            const k = t.k;
            setTransform(zoomIdentity.translate(size.w / 2 - gx * k, size.h / 2 - gy * k).scale(k), true);
          }}
        />
      )}
      {overlay && <OverlayLegend legend={overlay.legend} />}
    </div>
  );
};

/** A new graph's first view: its top, just below the toolbar, as wide as fits (30-100 %). */
function topOfGraph(layout: GraphLayout, size: { w: number }): ZoomTransform {
  const k = Math.max(0.3, Math.min(1, (size.w - 40) / layout.width));
  return zoomIdentity.translate((size.w - layout.width * k) / 2, 40).scale(k);
}

function overlayValue(overlay: PaneOverlay | undefined, name: string): string | undefined {
  const v = overlay?.values.get(name);
  return overlay && v !== undefined ? formatOverlayValue(overlay.legend.metric, v) : undefined;
}
