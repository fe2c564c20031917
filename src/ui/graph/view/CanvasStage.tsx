// The canvas renderer (graphs past SVG_LIMIT visible nodes): the canvas, sized to the view at the
// device's pixel ratio and drawn at the current transform (canvasRenderer.ts), and beside it the
// selection and the search's matches as a list for screen readers and tests.

import { useCallback, useMemo, useRef } from 'react';
import type { KernelGroup } from '../../../graph/artifacts/outputCode.ts';
import { kernelBoxes, type KernelBox } from '../kernelOverlay.ts';
import type { GraphLayout } from '../layout.ts';
import type { SceneNode } from '../scene.ts';
import type { PaneOverlay } from '../overlay.ts';
import type { ViewSize } from '../viewCentre.ts';
import { drawCanvas } from '../canvasRenderer.ts';
import { readPalette, type Palette } from '../palette.ts';
import type { NodeMark } from './SvgScene.tsx';
import type { ViewRefs } from './viewRefs.ts';

/** Theme colours, read back from CSS once per theme rather than on every frame. */
export function useThemePalette(): (root: HTMLElement) => Palette {
  const cache = useRef<{ theme: string | undefined; palette: Palette } | null>(null);
  return useCallback((root: HTMLElement): Palette => {
    const theme = document.documentElement.dataset.theme;
    if (!cache.current || cache.current.theme !== theme)
      cache.current = { theme, palette: readPalette(root) };
    return cache.current.palette;
  }, []);
}

/** A canvas's backing store at the device's pixel ratio, and its context drawing in CSS pixels. */
function canvasContext(c: HTMLCanvasElement, w: number, h: number): CanvasRenderingContext2D | null {
  const dpr = window.devicePixelRatio || 1;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const ctx = c.getContext('2d');
  ctx?.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** What the canvas draws: the layout, with the selection, the search's matches and the overlay's fills. */
export interface CanvasDrawing {
  layout: GraphLayout | null;
  byName: Map<string, SceneNode>;
  size: ViewSize;
  marks?: Map<string, NodeMark>;
  selected: string | null;
  matches: ReadonlySet<string>;
  overlay?: PaneOverlay;
}

/** Inductor's launches on a laid-out graph: the canvas draws them as the SVG view does, and lists them. */
export function useCanvasKernelBoxes(
  layout: GraphLayout | null,
  kernels: readonly KernelGroup[] | undefined,
): readonly KernelBox[] {
  return useMemo(() => (layout && kernels ? kernelBoxes(layout.nodes, kernels) : []), [layout, kernels]);
}

/**
 * Draws `refs.surface`, while it is the canvas, at the current transform, with the kernel boxes; a
 * new function whenever what it draws changes.
 */
export function useCanvasFrame(
  refs: ViewRefs,
  palette: (root: HTMLElement) => Palette,
  d: CanvasDrawing,
  kernelBoxes: readonly KernelBox[],
): () => void {
  const { layout, byName, size, marks, selected, matches, overlay } = d;
  return useCallback(() => {
    const c = refs.surface.current,
      root = refs.root.current;
    if (!(c instanceof HTMLCanvasElement) || !layout || !root) return;
    const ctx = canvasContext(c, size.w, size.h);
    if (!ctx) return;
    drawCanvas({
      ctx,
      width: size.w,
      height: size.h,
      transform: refs.transform.current,
      layout,
      byName,
      palette: palette(root),
      marks,
      selected,
      matches,
      fills: overlay?.fills,
      kernels: kernelBoxes,
    });
  }, [refs, layout, byName, size, marks, selected, matches, palette, overlay, kernelBoxes]);
}

export interface CanvasStageProps {
  /** Takes the canvas: pan/zoom listens on it. */
  surfaceRef: (el: HTMLCanvasElement | null) => void;
  onClick(e: React.MouseEvent): void;
  /** Whether there is a layout to list nodes of. */
  laidOut: boolean;
  selected: string | null;
  matches: readonly string[];
  /** The kernel boxes drawn: listed with the nodes, since on a canvas they are pixels. */
  kernels: readonly KernelBox[];
}

export function CanvasStage({ surfaceRef, onClick, laidOut, selected, matches, kernels }: CanvasStageProps) {
  return (
    <>
      <canvas ref={surfaceRef} className="fl-surface" onClick={onClick} aria-hidden="true" />
      {laidOut && (
        // Screen readers and tests get the nodes as a list even when they are pixels.
        <ul className="fl-a11y-list" aria-label="nodes">
          {selected && (
            <li data-node-item={selected} aria-current="true">
              {selected}
            </li>
          )}
          {matches.slice(0, 200).map((m) => (
            <li key={m} data-node-item={m}>
              {m}
            </li>
          ))}
        </ul>
      )}
      {kernels.length > 0 && (
        <ul className="fl-a11y-list" aria-label="kernels">
          {kernels.map((b) => (
            <li key={b.id} data-kernel-item={b.index} data-source={b.source}>
              {b.label}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
