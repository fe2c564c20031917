// The view's keys: arrows walk the graph from the selection (keyboardNavigation.ts), Enter
// focuses it, f fits, m shows or hides the minimap, [ and ] fold and unfold every layer, - and +
// the selected node's, / searches and Escape clears; in the search field Enter goes to the
// next match (Shift: the previous) and Escape leaves it.

import { useCallback } from 'react';
import type { GraphLayout } from '../layout.ts';
import type { Scene } from '../scene.ts';
import type { Direction, NavIndex } from '../keyboardNavigation.ts';
import type { NodeSearch } from './useNodeSearch.ts';
import type { Placement } from './useViewPlacement.ts';
import type { ViewRefs } from './viewRefs.ts';

const ARROWS: Record<string, Direction> = {
  ArrowUp: 'up',
  ArrowDown: 'down',
  ArrowLeft: 'left',
  ArrowRight: 'right',
};

export interface GraphKeysOptions {
  /** Arrow keys wait for the whole layout. */
  nav: NavIndex | null;
  layout: GraphLayout | null;
  scene: Scene | undefined;
  selected: string | null;
  collapsed?: ReadonlySet<string>;
  onSelect: (name: string | null) => void;
  onToggleGroup?: (group: string) => void;
  onSetCollapsed?: (groups: string[]) => void;
  search: NodeSearch;
  placement: Pick<Placement, 'centerOn' | 'fit'>;
  toggleMinimap(): void;
}

export function useGraphKeys(refs: ViewRefs, o: GraphKeysOptions): (e: React.KeyboardEvent) => void {
  const { nav, layout, scene, selected, collapsed, search } = o;
  const { onSelect, onToggleGroup, onSetCollapsed, toggleMinimap } = o;
  const { centerOn, fit } = o.placement;

  const jumpToMatch = useCallback(
    (delta: number) => {
      const name = search.step(delta);
      if (name === undefined) return;
      onSelect(name);
      centerOn(name, true);
    },
    [search, onSelect, centerOn],
  );

  return useCallback(
    (e: React.KeyboardEvent) => {
      if (e.target === refs.search.current) {
        if (e.key === 'Enter') {
          e.preventDefault();
          jumpToMatch(e.shiftKey ? -1 : 1);
        } else if (e.key === 'Escape') {
          search.clear();
          refs.root.current?.focus();
        }
        return;
      }
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (ARROWS[e.key]) {
        e.preventDefault();
        if (!nav || !layout) return;
        const next =
          selected && nav.has(selected)
            ? nav.step(selected, ARROWS[e.key])
            : layout.nodes.find((n) => !n.ref)?.name;
        if (next) {
          onSelect(next);
          centerOn(next, true, refs.transform.current.k);
        }
      } else if (e.key === 'Enter') {
        if (selected) {
          e.preventDefault();
          centerOn(selected, true, 1);
        }
      } else if (e.key === 'f') {
        e.preventDefault();
        fit(true);
      } else if (e.key === 'm') {
        e.preventDefault();
        toggleMinimap();
      } else if (e.key === '[' || e.key === ']') {
        // [ folds every layer, ] unfolds them all; on a canvas this is the keyboard's way in.
        e.preventDefault();
        onSetCollapsed?.(e.key === '[' ? (scene?.groups ?? []).map((g) => g.id) : []);
      } else if (e.key === '-' || e.key === '+' || e.key === '=') {
        // − folds the selected node's layer, + unfolds it.
        const group = selected ? scene?.nodes.find((n) => n.name === selected)?.group : undefined;
        if (group && (e.key === '-') !== !!collapsed?.has(group)) {
          e.preventDefault();
          onToggleGroup?.(group);
        }
      } else if (e.key === '/') {
        e.preventDefault();
        refs.search.current?.focus();
      } else if (e.key === 'Escape') {
        onSelect(null);
      }
    },
    [
      refs,
      nav,
      layout,
      selected,
      onSelect,
      centerOn,
      fit,
      jumpToMatch,
      search,
      toggleMinimap,
      onSetCollapsed,
      onToggleGroup,
      scene,
      collapsed,
    ],
  );
}
