// What a graph view's chrome covers: the docked toolbar at the top, the minimap in the bottom
// right, the overlay's legend in the bottom left. The view places the graph (first view, Fit, a
// centred node, a rewrite's change) in the clear area that remains, so no chrome sits over the
// nodes it puts in view.

import { useLayoutEffect, useRef, useState, type RefObject } from 'react';
import type { GraphLayout } from '../layout.ts';
import type { ViewFrame, ViewSize } from '../viewCentre.ts';
import { minimapBox } from './Minimap.tsx';

/** Pixels covered along each edge of the view. */
export interface ViewInsets {
  top: number;
  right: number;
  bottom: number;
  left: number;
}

/** The part of the view no chrome covers, in view pixels. */
export type ClearArea = ViewFrame;

/** Where a part of the chrome sits, in view pixels from the view's top left corner. */
export interface PartBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Room kept between a part of the chrome and the nodes placed beside it. */
const GAP = 8;

export function clearArea(size: ViewSize, insets: ViewInsets): ClearArea {
  const w = Math.max(1, size.w - insets.left - insets.right);
  const h = Math.max(1, size.h - insets.top - insets.bottom);
  return { x: insets.left, y: insets.top, w, h };
}

/**
 * The insets of a view of `size` whose docked toolbar is `chromeHeight` tall, with parts sitting
 * in its bottom corners (the minimap, the legend). A corner part takes the band (its side, or the
 * bottom) that leaves the larger clear area.
 */
export function viewInsets(size: ViewSize, chromeHeight: number, corners: readonly PartBox[]): ViewInsets {
  const insets = { top: chromeHeight, right: 0, bottom: 0, left: 0 };
  for (const part of corners) {
    if (part.w === 0 || part.h === 0) continue;
    const onRight = part.x + part.w / 2 > size.w / 2;
    const side: 'left' | 'right' = onRight ? 'right' : 'left';
    const sideBand = (onRight ? size.w - part.x : part.x + part.w) + GAP;
    const bottomBand = size.h - part.y + GAP;
    // Area lost to each band: a side band runs the clear height, the bottom band the clear width.
    const bySide = sideBand * (size.h - insets.top - insets.bottom);
    const byBottom = bottomBand * (size.w - insets.left - insets.right);
    if (bySide < byBottom) insets[side] = Math.max(insets[side], sideBand);
    else insets.bottom = Math.max(insets.bottom, bottomBand);
  }
  return insets;
}

const NONE: PartBox = { x: 0, y: 0, w: 0, h: 0 };

/** Where an element sits in the view `root`, kept up to date (0 × 0 while it is not mounted). */
export function usePartBox(
  ref: RefObject<HTMLElement | null>,
  root: RefObject<HTMLElement | null>,
  mounted: boolean,
  size: ViewSize,
): PartBox {
  const [box, setBox] = useState(NONE);
  useLayoutEffect(() => {
    const el = ref.current,
      r = root.current;
    if (!el || !r || !mounted) {
      setBox(NONE);
      return;
    }
    const measure = () => {
      const a = el.getBoundingClientRect(),
        b = r.getBoundingClientRect();
      const next = { x: a.x - b.x, y: a.y - b.y, w: a.width, h: a.height };
      setBox((p) => (p.x === next.x && p.y === next.y && p.w === next.w && p.h === next.h ? p : next));
    };
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
    // size: the part keeps its corner as the view resizes, which moves it without resizing it.
  }, [ref, root, mounted, size]);
  return box;
}

/**
 * A view's chrome bands: the toolbar's and the legend's elements (measured), the minimap's place
 * (computed, so a new graph's first view already knows it) and lift, and the insets they make.
 * `minimapOf` is the layout the minimap shows, null when it is hidden.
 */
export function useChromeBands(
  root: RefObject<HTMLElement | null>,
  size: ViewSize,
  minimapOf: GraphLayout | null,
  legendShown: boolean,
) {
  const chromeRef = useRef<HTMLDivElement>(null);
  const legendRef = useRef<HTMLDivElement>(null);
  const chrome = usePartBox(chromeRef, root, true, size);
  const legend = usePartBox(legendRef, root, legendShown, size);
  // In a narrow pane the legend reaches under the minimap's corner: the minimap sits above it.
  const unlifted = minimapOf ? minimapBox(minimapOf, size, 0) : null;
  const minimapLift = unlifted && legend.h > 0 && legend.x + legend.w + GAP > unlifted.x ? legend.h + GAP : 0;
  const map = minimapOf ? minimapBox(minimapOf, size, minimapLift) : null;
  const insets = viewInsets(size, chrome.h, map ? [map, legend] : [legend]);
  return { chromeRef, legendRef, minimapLift, insets };
}
