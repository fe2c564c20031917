// Pan and zoom, kept in the compositor: d3-zoom on the view's surface, the transform held in a
// ref and written to the DOM (the HTML layer around the SVG, the level-of-detail classes), never
// React state, so a gesture renders nothing. Canvas and minimap redraw once a frame; the layer
// is rasterised sharp again once the view rests after a zoom, and the view reports its rest.

import { useCallback, useEffect, useRef } from 'react';
import { select, zoom as d3zoom, type ZoomBehavior, type ZoomTransform } from 'd3';
import { LOD_DETAIL, LOD_TITLES } from '../canvasRenderer.ts';
import { VIEW_REST_MS, ZOOM_EXTENT } from '../viewCentre.ts';
import type { ViewRefs } from './viewRefs.ts';

/** How long the view must rest after a zoom before its layer is rasterised again at the new scale. */
const RERASTER_REST_MS = 150;

export interface PanZoomOptions {
  /** Names the surface element: pan/zoom binds again when it changes (a renderer switch). */
  surface: string;
  /** Bound only while there is something to move (a layout). */
  enabled: boolean;
  /** No animated moves. */
  testMode?: boolean;
  /** Once a frame while the transform changes: redraw what is drawn by script (canvas, minimap). */
  onFrame(): void;
  /** A user's gesture moved the view (the app's own moves do not call this). */
  onGesture(t: ZoomTransform): void;
  /** The view has rested VIEW_REST_MS after moving, by the user or the app. */
  onRest(): void;
}

export interface PanZoom {
  /** Moves the view, animated (never in test mode) or at once; false while pan/zoom is not bound yet. */
  moveTo(t: ZoomTransform, animate: boolean): boolean;
  /** Whether pan/zoom is bound to a surface yet. */
  bound(): boolean;
}

/**
 * Pan/zoom on `refs.surface`, moving `refs.scene` (the SVG's layer) and writing `refs.transform`;
 * `refs.root` carries the level-of-detail classes, and `data-moving` until the view rests.
 */
export function usePanZoom(refs: ViewRefs, o: PanZoomOptions): PanZoom {
  const { surface, enabled, testMode } = o;
  // Called from d3's events and timers, after the render that passed them.
  const handlers = useRef(o);
  handlers.current = o;
  const zoomRef = useRef<ZoomBehavior<Element, unknown> | null>(null);

  const frame = useRef(0);
  const applyTransform = useCallback(
    (t: ZoomTransform) => {
      refs.transform.current = t;
      const root = refs.root.current;
      if (root) {
        root.classList.toggle('fl-lod-far', t.k < LOD_DETAIL);
        root.classList.toggle('fl-lod-tiny', t.k < LOD_TITLES * 0.6);
      }
      // The SVG scene moves as one composited layer: panning costs no repaint of 1,000 nodes.
      if (refs.scene.current)
        refs.scene.current.style.transform = `translate(${t.x}px,${t.y}px) scale(${t.k})`;
      cancelAnimationFrame(frame.current);
      frame.current = requestAnimationFrame(() => handlers.current.onFrame());
    },
    [refs],
  );

  // A composited layer keeps the resolution it was rasterised at; once the view has rested for
  // RERASTER_REST_MS after a zoom, redraw it sharp. Not on every 'end': a programmatic transform
  // (an animation, a synced partner) ends on each frame, and re-rasterising then costs frames.
  const rasterK = useRef(1);
  const rerasterTimer = useRef(0);
  const reraster = useCallback(() => {
    window.clearTimeout(rerasterTimer.current);
    rerasterTimer.current = window.setTimeout(() => {
      const el = refs.scene.current;
      const k = refs.transform.current.k;
      if (!el || Math.abs(k - rasterK.current) / rasterK.current < 0.15) return;
      rasterK.current = k;
      el.style.willChange = 'auto';
      requestAnimationFrame(() => {
        el.style.willChange = 'transform';
      });
    }, RERASTER_REST_MS);
  }, [refs]);
  useEffect(() => () => window.clearTimeout(rerasterTimer.current), []);

  const restTimer = useRef(0);
  const scheduleRest = useCallback(() => {
    window.clearTimeout(restTimer.current);
    // Until it rests the view is still settling: the test-mode ready flag waits for data-moving to
    // go (an attribute, not state: this runs on every frame of a gesture).
    refs.root.current?.setAttribute('data-moving', 'true');
    restTimer.current = window.setTimeout(() => {
      refs.root.current?.removeAttribute('data-moving');
      handlers.current.onRest();
    }, VIEW_REST_MS);
  }, [refs]);
  useEffect(() => () => window.clearTimeout(restTimer.current), []);

  useEffect(() => {
    const el = refs.surface.current;
    if (!el || !enabled) return;
    const z = d3zoom<Element, unknown>()
      .scaleExtent([...ZOOM_EXTENT])
      .on('zoom', (ev: { transform: ZoomTransform; sourceEvent: unknown }) => {
        applyTransform(ev.transform);
        scheduleRest();
        if (ev.sourceEvent) handlers.current.onGesture(ev.transform);
      })
      .on('end', () => reraster());
    zoomRef.current = z;
    const sel = select<Element, unknown>(el);
    sel.call(z).on('dblclick.zoom', null);
    // Keep the transform across a renderer switch.
    sel.call(z.transform, refs.transform.current);
    return () => {
      sel.on('.zoom', null);
    };
    // Rebinds only when the surface element changes (renderer, layout present), not on every new layout.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [surface, enabled, applyTransform, scheduleRest]);

  const moveTo = useCallback(
    (t: ZoomTransform, animate: boolean) => {
      const el = refs.surface.current,
        z = zoomRef.current;
      if (!el || !z) return false;
      const sel = select<Element, unknown>(el);
      if (animate && !testMode) sel.transition().duration(350).call(z.transform, t);
      else sel.call(z.transform, t);
      return true;
    },
    [refs, testMode],
  );
  const bound = useCallback(() => zoomRef.current !== null, []);
  return { moveTo, bound };
}
