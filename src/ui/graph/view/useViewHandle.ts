// What a graph view lends the image export and the tests (viewRegistry.ts): its scene and layout,
// hit-testing and node positions on SVG and canvas alike, moves; and every change of its
// progress attributes.

import { useEffect } from 'react';
import { zoomIdentity } from 'd3';
import type { HitGrid } from '../hitGrid.ts';
import { recordLayoutProgress, registerView, type ViewHandle } from '../viewRegistry.ts';
import type { NodeMark } from './SvgScene.tsx';
import type { RequestedLayout } from './useLayoutRequest.ts';
import type { Placement } from './useViewPlacement.ts';
import type { ViewRefs } from './viewRefs.ts';

export interface ViewHandleOptions {
  label?: string;
  requested: RequestedLayout;
  marks?: Map<string, NodeMark>;
  selected: string | null;
  hitGrid: HitGrid | null;
  placement: Pick<Placement, 'centerOn' | 'fit' | 'setTransform' | 'area'>;
}

export function useViewHandle(refs: ViewRefs, o: ViewHandleOptions): void {
  const { label, marks, selected, hitGrid } = o;
  const { result, progress, ready, error } = o.requested;
  const { centerOn, fit, setTransform, area } = o.placement;
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
    const root = refs.root.current;
    if (!root || !result) return;
    const handle: ViewHandle = {
      root,
      scene: result.scene,
      layout: result.layout,
      marks,
      selected,
      layoutMs: result.ms,
      transform: () => refs.transform.current,
      nodeAt: (clientX, clientY) =>
        hitGrid?.nameAtClient(root.getBoundingClientRect(), refs.transform.current, clientX, clientY) ?? null,
      nodeCenter: (name) => {
        const n = result.layout.nodes.find((m) => m.name === name);
        if (!n) return null;
        const rect = root.getBoundingClientRect();
        const t = refs.transform.current;
        return { x: rect.left + t.x + (n.x + n.w / 2) * t.k, y: rect.top + t.y + (n.y + n.h / 2) * t.k };
      },
      clearArea: () => area(),
      centerOn: (name) => centerOn(name, false, 1),
      fit: () => fit(false),
      setView: (v) => setTransform(zoomIdentity.translate(v.x, v.y).scale(v.k), false),
    };
    return registerView(handle);
  }, [refs, result, marks, selected, hitGrid, centerOn, fit, setTransform, area]);
}
