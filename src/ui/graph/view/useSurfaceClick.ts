// A click on the view's surface: on the SVG the element under the pointer says which node, on the
// canvas the hit grid does; a stub chooses the value it stands for, a folded layer unfolds, and a
// click on nothing clears the selection.

import { useCallback } from 'react';
import type { HitGrid } from '../hitGrid.ts';
import type { ViewRefs } from './viewRefs.ts';

export interface SurfaceClickOptions {
  renderer: 'svg' | 'canvas';
  /** The canvas's hit grid, once the layout is complete. */
  hitGrid: HitGrid | null;
  onSelect: (name: string | null) => void;
  onToggleGroup?: (group: string) => void;
}

export function useSurfaceClick(
  refs: Pick<ViewRefs, 'transform'>,
  o: SurfaceClickOptions,
): (e: React.MouseEvent) => void {
  const { renderer, hitGrid, onSelect, onToggleGroup } = o;
  const choose = useCallback(
    (name: string | null) => {
      if (name && name.startsWith('group:')) onToggleGroup?.(name.slice(6));
      else onSelect(name);
    },
    [onSelect, onToggleGroup],
  );
  return useCallback(
    (e: React.MouseEvent) => {
      if (renderer === 'canvas') {
        const rect = (e.currentTarget as Element).getBoundingClientRect();
        choose(hitGrid?.nameAtClient(rect, refs.transform.current, e.clientX, e.clientY) ?? null);
        return;
      }
      const target = (e.target as Element).closest('[data-node], [data-ref]');
      if (!target) onSelect(null);
      else choose(target.getAttribute('data-node') ?? target.getAttribute('data-ref'));
    },
    [renderer, hitGrid, refs, choose, onSelect],
  );
}
