// The message contract between the graph views and the layout worker. Pure types: both sides
// import them, neither imports the other.
//
// A request is answered by progress messages — the blocks (namespace groups and the ungrouped
// runs between them) laid out so far, top down, so a view can paint them before the rest is
// done — and then a last message with the remaining blocks and the totals, or an error. The
// page assembles the layout from the blocks (`assembleLayout`), so no node crosses twice.

import type { Graph } from '../../graph/ir.ts';
import type { GraphLayout, LayoutChunk } from './layout.ts';
import type { Scene } from './scene.ts';
import type { GraphRef } from './graphShelf.ts';

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

/** A request as it crosses to the worker: graphs the worker holds already go by key (see graphShelf.ts). */
export interface LayoutMessage extends Omit<LayoutRequest, 'graph' | 'previous'> {
  graph: GraphRef;
  previous?: { graph: GraphRef; mapping: [string, string][] };
}

export interface LayoutProgress {
  /** The scene being laid out; sent with a request's first progress message only. */
  scene?: Scene;
  /** Blocks laid out since the previous progress message, in order. */
  chunks: LayoutChunk[];
}

/** The last message: the blocks not yet sent, and what a LayoutResult has besides its layout. */
export interface LayoutDone extends LayoutProgress, Omit<LayoutResult, 'scene' | 'layout'> {}

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
  /** Blocks in the layout. */
  blocks: number;
}

export type LayoutReply =
  | ({ id: number; kind: 'progress' } & LayoutProgress)
  | ({ id: number; kind: 'done' } & LayoutDone)
  | { id: number; kind: 'error'; error: string };
