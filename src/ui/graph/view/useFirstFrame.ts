// A new graph's first frame: drawing 1,000 SVG boxes and laying out their text costs the first
// frame ~100 ms here, against ~10 ms for the screenful that shows. So a new graph with many
// boxes draws, in its first frame, only what lies within a screen of the view, and the rest once
// that frame is painted; then the view is ready (every box is in the DOM). A refold or a
// rewrite's animated relayout draws whole: its boxes are already there.

import { useCallback, useEffect, useRef, useState } from 'react';
import type { ViewSize } from '../viewCentre.ts';
import type { Shown } from './useLayoutRequest.ts';

/**
 * A new graph with more boxes than this draws, in its first frame, only what lies within a screen
 * of the view; the rest follows once that frame is painted.
 */
const FIRST_FRAME_MIN_NODES = 300;

export interface FirstFrameOptions {
  result: Shown | null;
  renderer: 'svg' | 'canvas';
  size: ViewSize;
  /** The complete layout is in and every box of it painted. */
  markReady(): void;
  onReady?: () => void;
  /** The first frame of a complete layout is painted (for a new graph: the boxes near the view). */
  onPainted?: () => void;
}

/** Runs `f` once the frame after next begins (the next one painted what was committed); returns its cancel. */
function afterPaint(f: () => void): () => void {
  let raf2 = 0;
  const raf = requestAnimationFrame(() => {
    raf2 = requestAnimationFrame(f);
  });
  return () => {
    cancelAnimationFrame(raf);
    cancelAnimationFrame(raf2);
  };
}

/** Whether this render is a new graph's first frame: only what lies within a screen of the view. */
export function useFirstFrame(o: FirstFrameOptions): boolean {
  const { result, renderer, size, markReady } = o;
  const callbacks = useRef(o);
  callbacks.current = o;
  const paintedFor = useRef<Shown | null>(null);
  const paintedOnce = useCallback((r: Shown) => {
    if (paintedFor.current === r) return;
    paintedFor.current = r;
    callbacks.current.onPainted?.();
  }, []);
  // The complete layout whose every box is in the DOM.
  const [drawnAll, setDrawnAll] = useState<Shown | null>(null);
  const layout = result?.layout;
  const firstFrame =
    !!result?.complete &&
    !!layout &&
    renderer === 'svg' &&
    drawnAll !== result &&
    (drawnAll === null || drawnAll.graph !== result.graph) &&
    !result.previous &&
    layout.nodes.length > FIRST_FRAME_MIN_NODES &&
    size.h > 0;

  // Drawn whole: ready once painted (and that frame was the first painted one too).
  useEffect(() => {
    if (!result?.complete || firstFrame) return;
    return afterPaint(() => {
      markReady();
      paintedOnce(result);
      callbacks.current.onReady?.();
    });
  }, [result, firstFrame, paintedOnce, markReady]);
  // Once the first frame is painted, the rest.
  useEffect(() => {
    if (!result?.complete || !firstFrame) return;
    return afterPaint(() => {
      paintedOnce(result);
      setDrawnAll(result);
    });
  }, [result, firstFrame, paintedOnce]);
  return firstFrame;
}
