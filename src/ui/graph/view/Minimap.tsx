// The minimap: the whole graph, shaped like it, with the view's frame; a click moves the view
// there. Its base (every box) is drawn once per layout, size, theme and overlay; each frame of a
// pan or zoom only copies it and draws the frame.

import { useCallback, useRef, useState, type MutableRefObject, type RefObject } from 'react';
import { zoomIdentity, type ZoomTransform } from 'd3';
import type { GraphLayout } from '../layout.ts';
import type { SceneNode } from '../scene.ts';
import type { PaneOverlay } from '../overlay.ts';
import type { Palette } from '../palette.ts';
import type { ViewSize } from '../viewCentre.ts';
import type { ViewRefs } from './viewRefs.ts';
import { drawMinimap, drawMinimapBase, minimapFrame, minimapSize } from '../canvasRenderer.ts';

export interface MinimapOptions {
  palette: (root: HTMLElement) => Palette;
  layout: GraphLayout | null;
  /** The minimap waits for the whole layout: redrawing its base for every arriving block would take the page's time from the blocks themselves. */
  complete: boolean;
  byName: Map<string, SceneNode>;
  size: ViewSize;
  overlay?: PaneOverlay;
}

export interface MinimapState {
  canvasRef: RefObject<HTMLCanvasElement | null>;
  /** It can be put away when it sits over the nodes the user wants to see. */
  shown: boolean;
  toggle(): void;
  /** Draws it at the current transform (a new function whenever what it draws changes). */
  draw(): void;
}

export function useMinimap(refs: ViewRefs, o: MinimapOptions): MinimapState {
  const { palette, layout, complete, byName, size, overlay } = o;
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [shown, setShown] = useState(true);
  const toggle = useCallback(() => setShown((v) => !v), []);
  const base = useRef<{
    layout: GraphLayout;
    w: number;
    h: number;
    palette: Palette;
    fills: PaneOverlay['fills'] | undefined;
    canvas: HTMLCanvasElement;
  } | null>(null);
  const draw = useCallback(() => {
    const mm = canvasRef.current,
      root = refs.root.current;
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
    let b = base.current;
    const fills = overlay?.fills;
    if (!b || b.layout !== layout || b.w !== w || b.h !== h || b.palette !== pal || b.fills !== fills) {
      b = {
        layout,
        w,
        h,
        palette: pal,
        fills,
        canvas: drawMinimapBase(w, h, dpr, layout, byName, pal, fills),
      };
      base.current = b;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const t = refs.transform.current;
    drawMinimap(ctx, w, h, layout, b.canvas, pal, {
      x0: -t.x / t.k,
      y0: -t.y / t.k,
      x1: (size.w - t.x) / t.k,
      y1: (size.h - t.y) / t.k,
    });
    // shown: hiding the map unmounts its canvas; a new function redraws the one mounted when it is shown again.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [layout, complete, byName, size, palette, shown, overlay]);
  return { canvasRef, shown, toggle, draw };
}

export interface MinimapProps {
  canvasRef: RefObject<HTMLCanvasElement | null>;
  layout: GraphLayout;
  size: ViewSize;
  transform: MutableRefObject<ZoomTransform>;
  /** Pixels it sits above its corner (over the legend), 0 for none. */
  lift: number;
  /** Moves the view (animated) to centre where the minimap was clicked. */
  moveTo(t: ZoomTransform): void;
}

/** Its margin from the view's edges (the CSS's right and bottom). */
const EDGE = 8;

/**
 * Where it sits in the view: shaped like the graph, at most a fifth of the view's width and half
 * its height (less the lift), in the bottom right corner `lift` pixels up. Known before it is
 * drawn, so a new graph's first view already keeps clear of it.
 */
export function minimapBox(
  layout: GraphLayout,
  size: ViewSize,
  lift: number,
): { x: number; y: number; w: number; h: number } {
  const tall = Math.max(60, Math.min(360, size.h / 2 - lift));
  const { w, h } = minimapSize(layout, Math.min(160, size.w / 5), tall);
  return { x: size.w - EDGE - w, y: size.h - EDGE - lift - h, w, h };
}

export function Minimap({ canvasRef, layout, size, transform, lift, moveTo }: MinimapProps) {
  const mini = minimapBox(layout, size, lift);
  return (
    <canvas
      ref={canvasRef}
      className="fl-minimap"
      aria-label="Minimap"
      style={{ width: mini.w, height: mini.h, right: EDGE, bottom: EDGE + lift }}
      onClick={(e) => {
        const rect = e.currentTarget.getBoundingClientRect();
        const t = transform.current;
        const { scale, ox, oy } = minimapFrame(rect.width, rect.height, layout);
        const gx = (e.clientX - rect.left - ox) / scale,
          gy = (e.clientY - rect.top - oy) / scale;
        const k = t.k;
        moveTo(zoomIdentity.translate(size.w / 2 - gx * k, size.h / 2 - gy * k).scale(k));
      }}
    />
  );
}
