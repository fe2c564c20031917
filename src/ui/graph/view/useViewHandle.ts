// What a graph view lends the image export and the tests (viewRegistry.ts): its scene and layout,
// hit-testing and node positions on SVG and canvas alike, moves; and every change of its
// progress attributes.

import { useEffect, type MutableRefObject, type RefObject } from 'react';
import { zoomIdentity, type ZoomTransform } from 'd3';
import type { HitGrid } from '../hitGrid.ts';
import { recordLayoutProgress, registerView, type ViewHandle } from '../viewRegistry.ts';
import type { NodeMark } from './SvgScene.tsx';
import type { RequestedLayout } from './useLayoutRequest.ts';
import type { Placement } from './useViewPlacement.ts';

export interface ViewHandleOptions {
  rootRef: RefObject<HTMLElement | null>;
  transformRef: MutableRefObject<ZoomTransform>;
  label?: string;
  requested: RequestedLayout;
  marks?: Map<string, NodeMark>;
  selected: string | null;
  hitGrid: HitGrid | null;
  placement: Pick<Placement, 'centerOn' | 'fit' | 'setTransform'>;
}

export function useViewHandle(o: ViewHandleOptions): void {
  const { rootRef, transformRef, label, marks, selected, hitGrid } = o;
  const { result, progress, ready, error } = o.requested;
  const { centerOn, fit, setTransform } = o.placement;
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
      nodeAt: (clientX, clientY) =>
        hitGrid?.nameAtClient(root.getBoundingClientRect(), transformRef.current, clientX, clientY) ?? null,
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
  }, [rootRef, transformRef, result, marks, selected, hitGrid, centerOn, fit, setTransform]);
}
