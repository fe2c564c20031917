// Search over a scene: a plain query matches node names and ops as a case-insensitive
// substring; `/…/flags` is a regular expression. A bad expression is an error that names it.

import type { SceneNode } from './scene.ts';

export interface SearchResult {
  matches: string[];
  error?: string;
}

export function searchNodes(nodes: readonly SceneNode[], query: string): SearchResult {
  const q = query.trim();
  if (!q) return { matches: [] };
  let test: (s: string) => boolean;
  const re = /^\/(.+)\/([a-z]*)$/.exec(q);
  if (re) {
    let rx: RegExp;
    try {
      rx = new RegExp(re[1], re[2].replace(/[gy]/g, ''));
    } catch (e) {
      return {
        matches: [],
        error: `bad regular expression /${re[1]}/: ${e instanceof Error ? e.message : String(e)}`,
      };
    }
    test = (s) => rx.test(s);
  } else {
    const lower = q.toLowerCase();
    test = (s) => s.toLowerCase().includes(lower);
  }
  const matches: string[] = [];
  for (const n of nodes) if (test(n.name) || test(n.op) || test(n.title)) matches.push(n.name);
  return { matches };
}
