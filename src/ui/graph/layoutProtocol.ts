// The message contract between the graph views and the layout worker. Pure types: both sides
// import them, neither imports the other.

import type { Graph } from '../../graph/ir.ts';
import type { GraphLayout } from './layout.ts';
import type { Scene } from './scene.ts';

export interface LayoutRequest {
  id: number;
  graph: Graph;
  /** Group ids folded into one box. */
  collapsed: string[];
  /**
   * The graph this one was rewritten from, with after-name → before-name pairs: the worker
   * lays it out too (for the animation's start) and anchors the new layout to it.
   */
  previous?: { graph: Graph; mapping: [string, string][] };
}

export interface LayoutResult {
  scene: Scene;
  layout: GraphLayout;
  /** Present when the request had `previous`. */
  previous?: { scene: Scene; layout: GraphLayout };
  /** Milliseconds spent in the worker (scene + layout), for the bench. */
  ms: number;
  /** Blocks served from the cache / laid out afresh. */
  cacheHits: number;
  blocksLaidOut: number;
}

export type LayoutReply =
  | ({ id: number; ok: true } & LayoutResult)
  | { id: number; ok: false; error: string };
