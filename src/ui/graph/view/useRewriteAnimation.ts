// The rewrite animation, on the SVG renderer: unchanged nodes stay, moved ones glide from where
// they were, removed ones (ghosts) fade or merge into the node that replaced them, added ones
// appear. d3 transitions on the DOM React rendered, so no React render per frame.

import { useLayoutEffect, useRef, useState } from 'react';
import { easeCubicInOut, select } from 'd3';
import type { Graph } from '../../../graph/ir.ts';
import type { LaidNode } from '../layout.ts';
import type { SceneNode } from '../scene.ts';
import type { RewrittenFrom, Shown } from './useLayoutRequest.ts';
import type { ViewRefs } from './viewRefs.ts';

const ANIM_MS = 750;

/** A node the rewrite removed: where it was, what it showed, and the node it merges into. */
export interface Ghost {
  n: LaidNode;
  sn?: SceneNode;
  to?: LaidNode;
}

export interface RewriteAnimationOptions {
  result: Shown | null;
  graph: Graph;
  animateFrom?: RewrittenFrom;
  testMode?: boolean;
  renderer: 'svg' | 'canvas';
}

/** Runs the animation once per rewritten layout; returns the ghosts to draw meanwhile. */
export function useRewriteAnimation(refs: Pick<ViewRefs, 'viewport'>, o: RewriteAnimationOptions): Ghost[] {
  const { result, graph, animateFrom, testMode, renderer } = o;
  const [ghosts, setGhosts] = useState<Ghost[]>([]);
  const animatedFor = useRef<Shown | null>(null);
  useLayoutEffect(() => {
    if (!result?.previous || !animateFrom || testMode || renderer !== 'svg' || animatedFor.current === result)
      return;
    animatedFor.current = result;
    const vp = refs.viewport.current;
    if (!vp) return;
    const previous = result.previous;
    const before = new Map(previous.layout.nodes.map((n) => [n.name, n]));
    setGhosts(removedNodes(result, previous, animateFrom.mapping, graph));
    select(vp)
      .selectAll<SVGGElement, unknown>('g.fl-node, g.fl-ref')
      .each(function () {
        const name = this.getAttribute('data-node');
        const final = this.getAttribute('transform') ?? '';
        const b = name ? before.get(animateFrom.mapping.get(name) ?? name) : undefined;
        const sel = select(this);
        if (b) {
          const start = `translate(${b.x},${b.y})`;
          if (start !== final)
            sel
              .attr('transform', start)
              .transition()
              .duration(ANIM_MS)
              .ease(easeCubicInOut)
              .attr('transform', final);
        } else {
          sel
            .style('opacity', 0)
            .transition()
            .delay(ANIM_MS * 0.8)
            .duration(ANIM_MS * 0.6)
            .style('opacity', 1);
        }
      });
    select(vp)
      .selectAll<SVGElement, unknown>('.fl-edges')
      .style('opacity', 0)
      .transition()
      .delay(ANIM_MS * 0.9)
      .duration(ANIM_MS * 0.5)
      .style('opacity', 1);
    const done = window.setTimeout(() => setGhosts([]), ANIM_MS * 2.2);
    return () => window.clearTimeout(done);
  }, [result, animateFrom, testMode, renderer, graph, refs]);

  useLayoutEffect(() => {
    const vp = refs.viewport.current;
    if (!vp || !ghosts.length) return;
    select(vp)
      .selectAll<SVGGElement, unknown>('g.fl-ghost')
      .each(function (_d, i) {
        const gh = ghosts[i];
        if (!gh) return;
        const sel = select(this).style('opacity', 1);
        // First the surviving nodes move, then the removed ones merge into what replaced them.
        const t = sel
          .transition()
          .delay(ANIM_MS * 0.7)
          .duration(ANIM_MS)
          .ease(easeCubicInOut);
        if (gh.to)
          t.attr(
            'transform',
            `translate(${gh.to.x + (gh.to.w - gh.n.w) / 2},${gh.to.y + (gh.to.h - gh.n.h) / 2})`,
          );
        t.style('opacity', 0);
      });
  }, [ghosts, refs]);
  return ghosts;
}

/** The boxes of the previous layout that neither stay nor map to a box of the new one. */
function removedNodes(
  result: Shown,
  previous: NonNullable<Shown['previous']>,
  mapping: ReadonlyMap<string, string>,
  graph: Graph,
): Ghost[] {
  const before = new Set(previous.layout.nodes.map((n) => n.name));
  const kept = new Set<string>();
  const afterNames = new Set(result.layout.nodes.map((n) => n.name));
  for (const n of result.layout.nodes) {
    const b = mapping.get(n.name) ?? n.name;
    if (before.has(b)) kept.add(b);
  }
  const afterNodes = new Map(result.layout.nodes.map((n) => [n.name, n]));
  const madeFrom = new Map<string, string>();
  for (const node of graph.nodes)
    for (const f of node.meta.madeBy?.from ?? []) if (!madeFrom.has(f)) madeFrom.set(f, node.name);
  const prevScene = new Map(previous.scene.nodes.map((n) => [n.name, n]));
  const gone = previous.layout.nodes.filter((n) => !n.ref && !kept.has(n.name) && !afterNames.has(n.name));
  return gone.map((n) => ({ n, sn: prevScene.get(n.name), to: afterNodes.get(madeFrom.get(n.name) ?? '') }));
}
