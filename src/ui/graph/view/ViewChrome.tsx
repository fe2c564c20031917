// A graph view's chrome: its label and status, and the toolbar (search, fold all, minimap, fit,
// export), in a bar docked along the view's top. The label and the count first; the toolbar
// beside them, or on more rows where the pane is too narrow (flex wrap: nothing is cut or hidden
// at any width). The view places the graph below the bar (see viewInsets.ts).

import type { RefObject } from 'react';
import type { NodeGroup } from '../../../graph/groups.ts';
import type { NodeSearch } from './useNodeSearch.ts';
import type { RequestedLayout } from './useLayoutRequest.ts';

export interface ViewChromeProps {
  /** The docked bar, measured by the view so it places the graph below it. */
  barRef: RefObject<HTMLDivElement | null>;
  label?: string;
  requested: RequestedLayout;
  renderer: 'svg' | 'canvas';
  search: NodeSearch;
  searchRef: RefObject<HTMLInputElement | null>;
  /** The layer groups of the graph shown. */
  groups: readonly NodeGroup[];
  collapsed?: ReadonlySet<string>;
  onSetCollapsed?: (groups: string[]) => void;
  minimapShown: boolean;
  toggleMinimap(): void;
  fit(): void;
  exportImage(format: 'svg' | 'png'): void;
}

export function ViewChrome(props: ViewChromeProps) {
  const { label, requested, renderer, search, searchRef, groups, collapsed, onSetCollapsed } = props;
  const { result, error, progress } = requested;
  const allFolded = groups.length > 0 && groups.every((g) => collapsed?.has(g.id));
  return (
    <div className="fl-chrome" ref={props.barRef} data-testid="view-toolbar">
      <div className="fl-corner">
        {label && <span className="fl-corner-label">{label}</span>}
        <span className="fl-status">
          {error ? (
            <span role="alert">{error}</span>
          ) : !result ? (
            'Laying out…'
          ) : !result.complete ? (
            `Laying out… ${progress.done}/${progress.total} groups`
          ) : (
            `${result.scene.nodes.length} node${result.scene.nodes.length === 1 ? '' : 's'} · ${renderer}`
          )}
        </span>
      </div>
      <div className="fl-toolbar">
        <input
          ref={searchRef}
          type="search"
          placeholder="Search nodes"
          aria-label="Search nodes"
          value={search.query}
          aria-invalid={search.error ? 'true' : 'false'}
          title={search.error ?? 'A name, an op or a /regex/; Enter: next match'}
          onChange={(e) => search.edit(e.target.value)}
        />
        {search.query && (
          <span className="fl-search-count" data-testid="search-count">
            {search.error
              ? 'error'
              : `${search.matchIndex + 1 > 0 ? `${search.matchIndex + 1}/` : ''}${search.matches.length}`}
          </span>
        )}
        {onSetCollapsed && groups.length > 0 && (
          <button
            type="button"
            data-testid="fold-all"
            onClick={() => onSetCollapsed(allFolded ? [] : groups.map((g) => g.id))}
            title={allFolded ? 'Unfold every layer (])' : 'Fold every layer ([)'}
          >
            {allFolded ? 'Unfold all' : 'Fold all'}
          </button>
        )}
        <button
          type="button"
          aria-pressed={props.minimapShown}
          onClick={props.toggleMinimap}
          title="Show or hide the minimap (m)"
        >
          Map
        </button>
        <button type="button" onClick={props.fit} title="Fit to view (f)">
          Fit
        </button>
        <button type="button" onClick={() => props.exportImage('svg')} title="Export this view as SVG">
          SVG
        </button>
        <button type="button" onClick={() => props.exportImage('png')} title="Export this view as PNG">
          PNG
        </button>
      </div>
    </div>
  );
}
