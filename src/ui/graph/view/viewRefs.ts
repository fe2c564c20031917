// A graph view's elements and live geometry, shared by its parts: React and pan/zoom write them,
// the drawing, hit-testing and timers read them, and none of them is state (a pan changes the
// transform on every frame without a render).

import { useMemo, useRef, type MutableRefObject, type RefObject } from 'react';
import { zoomIdentity, type ZoomTransform } from 'd3';
import type { ViewSize } from '../viewCentre.ts';

export interface ViewRefs {
  /** The view's root: focus, level-of-detail classes, `data-moving`. */
  root: RefObject<HTMLDivElement | null>;
  /** The element pan/zoom listens on: the stage over the SVG scene, or the canvas. */
  surface: MutableRefObject<HTMLDivElement | HTMLCanvasElement | null>;
  /** The HTML layer pan/zoom transforms around the SVG (see SvgScene.tsx). */
  scene: RefObject<HTMLDivElement | null>;
  /** The SVG group holding the boxes (the rewrite animation moves them). */
  viewport: RefObject<SVGGElement | null>;
  search: RefObject<HTMLInputElement | null>;
  /** Where the view is: pan/zoom writes it. */
  transform: MutableRefObject<ZoomTransform>;
  /** The view's size as last measured (see useElementSize). */
  size: MutableRefObject<ViewSize>;
}

export function useViewRefs(): ViewRefs {
  const root = useRef<HTMLDivElement>(null);
  const surface = useRef<HTMLDivElement | HTMLCanvasElement | null>(null);
  const scene = useRef<HTMLDivElement>(null);
  const viewport = useRef<SVGGElement>(null);
  const search = useRef<HTMLInputElement>(null);
  const transform = useRef<ZoomTransform>(zoomIdentity);
  const size = useRef<ViewSize>({ w: 0, h: 0 });
  return useMemo(
    () => ({ root, surface, scene, viewport, search, transform, size }),
    [root, surface, scene, viewport, search, transform, size],
  );
}
