// One graph, laid out top to bottom: SVG (one element per node, so tests and screen readers
// can reach every node) up to SVG_LIMIT visible nodes, a canvas with level of detail beyond.
// Pan/zoom with d3-zoom, a minimap, search, keyboard navigation, collapsible layer groups, and
// the rewrite animation. Each concern is its own part (./view/); this component composes them.

import { useCallback, useEffect, useMemo } from 'react';
import type { Graph } from '../../graph/ir.ts';
import { HitGrid } from './hitGrid.ts';
import { NavIndex } from './keyboardNavigation.ts';
import { downloadImage } from './exportImage.ts';
import type { ViewCentre, ViewTransform } from './viewCentre.ts';
import type { PaneOverlay } from './overlay.ts';
import type { KernelGroup } from '../../graph/artifacts/outputCode.ts';
import { drawnNodeCount } from './scene.ts';
import { OverlayLegend } from './OverlayLegend.tsx';
import { useElementSize } from './view/useElementSize.ts';
import { useViewRefs } from './view/viewRefs.ts';
import { useLayoutRequest, type RewrittenFrom } from './view/useLayoutRequest.ts';
import { usePanZoom } from './view/usePanZoom.ts';
import { useViewPlacement } from './view/useViewPlacement.ts';
import { useFirstFrame } from './view/useFirstFrame.ts';
import { useRewriteAnimation } from './view/useRewriteAnimation.ts';
import { CanvasStage, useCanvasFrame, useCanvasKernelBoxes, useThemePalette } from './view/CanvasStage.tsx';
import { useSurfaceClick } from './view/useSurfaceClick.ts';
import { Minimap, useMinimap } from './view/Minimap.tsx';
import { useChromeBands } from './view/viewInsets.ts';
import { useNodeSearch } from './view/useNodeSearch.ts';
import { useGraphKeys } from './view/useGraphKeys.ts';
import { useViewHandle } from './view/useViewHandle.ts';
import { SvgStage, type NodeMark } from './view/SvgScene.tsx';
import { ViewChrome } from './view/ViewChrome.tsx';
import './graph.css';

export type { NodeMark, ViewTransform };

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
  animateFrom?: RewrittenFrom;
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
  /** Inductor's launches on this graph (kernelOverlay.ts): boxes around the nodes each fused. */
  kernels?: readonly KernelGroup[];
}

/** Beyond this many visible nodes the view draws on a canvas. */
export const SVG_LIMIT = 1500;

export const GraphView: React.FC<GraphViewProps> = (props) => {
  const { graph, label, marks, selected, onSelect, collapsed, onToggleGroup, onSetCollapsed } = props;
  const { animateFrom, testMode, overlay } = props;
  const refs = useViewRefs();
  const setSurface = useCallback(
    (el: HTMLDivElement | HTMLCanvasElement | null) => {
      refs.surface.current = el;
    },
    [refs],
  );
  const size = useElementSize(refs);

  const requested = useLayoutRequest({ graph, collapsed, animateFrom, refs });
  const { result } = requested;
  const layout = result?.layout ?? null;
  const complete = !!result?.complete;
  // Keyed on the scene, which stays the same object while a layout's blocks arrive.
  const scene = result?.scene;
  const byName = useMemo(() => new Map((scene?.nodes ?? []).map((n) => [n.name, n])), [scene]);
  // A partial layout is drawn by the renderer the whole graph will likely need, so the view
  // does not switch from SVG to canvas halfway through.
  const visibleCount = layout ? layout.nodes.length : 0;
  const expectedCount =
    result && !result.complete ? Math.max(visibleCount, result.scene.nodes.length) : visibleCount;
  const renderer: 'svg' | 'canvas' = expectedCount > SVG_LIMIT ? 'canvas' : 'svg';
  // Hit-testing and arrow keys wait for the whole layout rather than rebuild for every block.
  const hitGrid = useMemo(() => (layout && complete ? new HitGrid(layout) : null), [layout, complete]);
  const nav = useMemo(() => (layout && complete ? new NavIndex(layout) : null), [layout, complete]);
  const search = useNodeSearch(scene);

  const palette = useThemePalette();
  const canvasKernels = useCanvasKernelBoxes(renderer === 'canvas' ? layout : null, props.kernels);
  const drawCanvasFrame = useCanvasFrame(
    refs,
    palette,
    { layout, byName, size, marks, selected, matches: search.matchSet, overlay },
    canvasKernels,
  );
  const minimap = useMinimap(refs, { palette, layout, complete, byName, size, overlay });
  const drawMinimap = minimap.draw;
  const draw = useCallback(() => {
    drawCanvasFrame();
    drawMinimap();
  }, [drawCanvasFrame, drawMinimap]);
  useEffect(() => draw(), [draw]);

  // Events of pan/zoom reach the placement (declared below) after this render.
  const panZoom = usePanZoom(refs, {
    surface: renderer,
    enabled: layout !== null,
    testMode,
    onFrame: draw,
    onGesture: (t) => placement.userMoved(t),
    onRest: () => placement.reportRest(),
  });
  const minimapShown = !!layout && layout.nodes.length > 0 && minimap.shown;
  const bands = useChromeBands(refs.root, size, minimapShown ? layout : null, !!overlay);
  const { insets } = bands;
  const placement = useViewPlacement(refs, { ...props, result, size, insets, byName, panZoom });
  const firstFrame = useFirstFrame({ ...props, result, renderer, size, markReady: requested.markReady });
  const ghosts = useRewriteAnimation(refs, { result, graph, animateFrom, testMode, renderer });

  const onSurfaceClick = useSurfaceClick(refs, { renderer, hitGrid, onSelect, onToggleGroup });
  const onKeyDown = useGraphKeys(refs, {
    nav,
    layout,
    scene,
    selected,
    collapsed,
    onSelect,
    onToggleGroup,
    onSetCollapsed,
    search,
    placement,
    toggleMinimap: minimap.toggle,
  });
  useViewHandle(refs, { label, requested, marks, selected, hitGrid, placement });
  const exportImage = useCallback(
    (format: 'svg' | 'png') => {
      const root = refs.root.current;
      if (root) void downloadImage(root, format, `${label ?? graph.name ?? 'graph'}`);
    },
    [refs, label, graph.name],
  );

  return (
    <div
      ref={refs.root}
      className="fl-graph-view"
      data-testid="graph-view"
      data-ready={requested.ready && !requested.error ? 'true' : 'false'}
      data-renderer={renderer}
      data-node-count={result ? result.scene.nodes.length : 0}
      data-groups-laid-out={requested.progress.done}
      data-groups-total={requested.progress.total}
      data-label={label}
      tabIndex={0}
      role="application"
      aria-label={`${label ? `${label} ` : ''}graph: ${drawnNodeCount(graph)} nodes. Arrows move the selection, Enter focuses it, f fits, / searches, [ and ] fold and unfold every layer, - and + the selected node's.`}
      onKeyDown={onKeyDown}
    >
      {renderer === 'svg' ? (
        <SvgStage
          refs={refs}
          surfaceRef={setSurface}
          layout={layout}
          // Where the view is (or is about to be) decides what the first frame needs.
          firstView={firstFrame && layout ? placement.upcoming(layout) : null}
          height={size.h}
          byName={byName}
          marks={marks}
          selected={selected}
          matches={search.matchSet}
          overlay={overlay}
          kernels={props.kernels}
          ghosts={ghosts}
          onToggleGroup={onToggleGroup}
          onClick={onSurfaceClick}
        />
      ) : (
        <CanvasStage
          surfaceRef={setSurface}
          onClick={onSurfaceClick}
          laidOut={!!result}
          selected={selected}
          matches={search.matches}
          kernels={canvasKernels}
        />
      )}
      <ViewChrome
        barRef={bands.chromeRef}
        label={label}
        requested={requested}
        renderer={renderer}
        search={search}
        searchRef={refs.search}
        groups={scene?.groups ?? []}
        collapsed={collapsed}
        onSetCollapsed={onSetCollapsed}
        minimapShown={minimap.shown}
        toggleMinimap={minimap.toggle}
        fit={() => placement.fit(true)}
        exportImage={exportImage}
      />
      {minimapShown && (
        <Minimap
          canvasRef={minimap.canvasRef}
          layout={layout}
          size={size}
          transform={refs.transform}
          lift={bands.minimapLift}
          moveTo={(t) => placement.setTransform(t, true)}
        />
      )}
      {overlay && <OverlayLegend ref={bands.legendRef} legend={overlay.legend} />}
    </div>
  );
};
