// The view's search: the query typed in its toolbar, the nodes it matches (search.ts), and which
// match Enter went to last.

import { useCallback, useMemo, useState } from 'react';
import type { Scene } from '../scene.ts';
import { searchNodes } from '../search.ts';

export interface NodeSearch {
  query: string;
  matches: string[];
  /** Why the query matches nothing (a bad regular expression). */
  error?: string;
  matchSet: ReadonlySet<string>;
  /** The match last gone to, -1 for none since the query changed. */
  matchIndex: number;
  /** The query as typed: going to matches starts again from the first. */
  edit(query: string): void;
  clear(): void;
  /** Goes `delta` matches on (wrapping round); returns the match's name, if there is any. */
  step(delta: number): string | undefined;
}

export function useNodeSearch(scene: Scene | undefined): NodeSearch {
  const [query, setQuery] = useState('');
  const [matchIndex, setMatchIndex] = useState(-1);
  const found = useMemo(() => searchNodes(scene?.nodes ?? [], query), [scene, query]);
  const matchSet = useMemo(() => new Set(found.matches), [found]);
  const edit = useCallback((q: string) => {
    setQuery(q);
    setMatchIndex(-1);
  }, []);
  const clear = useCallback(() => setQuery(''), []);
  const step = useCallback(
    (delta: number) => {
      const n = found.matches.length;
      if (!n) return undefined;
      const i = (matchIndex + delta + n) % n;
      setMatchIndex(i);
      return found.matches[i];
    },
    [found, matchIndex],
  );
  return useMemo(
    () => ({ query, matches: found.matches, error: found.error, matchSet, matchIndex, edit, clear, step }),
    [query, found, matchSet, matchIndex, edit, clear, step],
  );
}
