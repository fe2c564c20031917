// Live graph views by root element: the image export reads a view's scene from here, and tests
// reach views through `window.__fusionlab` (hit-testing works the same on SVG and canvas).

import type { ZoomTransform } from 'd3';
import type { GraphLayout } from './layout.ts';
import type { Scene } from './scene.ts';

export interface ViewHandle {
  root: HTMLElement;
  scene: Scene;
  layout: GraphLayout;
  marks?: Map<string, 'added' | 'removed' | 'moved' | 'fused'>;
  selected: string | null;
  /** Milliseconds the layout took in the worker. */
  layoutMs: number;
  transform(): ZoomTransform;
  /** The node under a point in page (client) coordinates, or null. */
  nodeAt(clientX: number, clientY: number): string | null;
  /** A node's centre in client coordinates, or null if it is not laid out. */
  nodeCenter(name: string): { x: number; y: number } | null;
  /** The part of the view no chrome covers (view pixels): where it centres and fits nodes. */
  clearArea(): { x: number; y: number; w: number; h: number };
  centerOn(name: string): void;
  fit(): void;
  /** Pan/zoom to a transform, as a user's gesture would (the bench scripts these). */
  setView(v: { x: number; y: number; k: number }): void;
}

const views = new Map<HTMLElement, ViewHandle>();

/** A view's progress attributes as they were committed: `data-groups-laid-out`, `-total`, `data-ready`. */
export interface LayoutProgressEntry {
  label?: string;
  groupsLaidOut: number;
  groupsTotal: number;
  ready: boolean;
}

// Bounded: a long session relays many times, and only the latest loads matter to a test.
const PROGRESS_LOG_LIMIT = 2000;
const progressLog: LayoutProgressEntry[] = [];

export function recordLayoutProgress(e: LayoutProgressEntry): void {
  install();
  const last = progressLog[progressLog.length - 1];
  if (
    last &&
    last.label === e.label &&
    last.groupsLaidOut === e.groupsLaidOut &&
    last.groupsTotal === e.groupsTotal &&
    last.ready === e.ready
  )
    return;
  progressLog.push(e);
  if (progressLog.length > PROGRESS_LOG_LIMIT) progressLog.splice(0, progressLog.length - PROGRESS_LOG_LIMIT);
}

export interface GraphViewHooks {
  views(): ViewHandle[];
  nodeAt(clientX: number, clientY: number): string | null;
  nodeCenter(name: string, label?: string): { x: number; y: number } | null;
  /** Every view's progress attributes in the order they changed (see recordLayoutProgress). */
  layoutProgress(): LayoutProgressEntry[];
}

declare global {
  interface Window {
    __fusionlab?: Record<string, unknown> & Partial<GraphViewHooks>;
  }
}

function install(): void {
  if (typeof window === 'undefined') return;
  const hooks: GraphViewHooks = {
    views: () => [...views.values()],
    nodeAt: (x, y) => {
      for (const v of views.values()) {
        const r = v.root.getBoundingClientRect();
        if (x >= r.left && x <= r.right && y >= r.top && y <= r.bottom) return v.nodeAt(x, y);
      }
      return null;
    },
    nodeCenter: (name, label) => {
      for (const v of views.values()) {
        if (label && v.root.dataset.label !== label) continue;
        const c = v.nodeCenter(name);
        if (c) return c;
      }
      return null;
    },
    layoutProgress: () => progressLog.slice(),
  };
  window.__fusionlab = Object.assign(window.__fusionlab ?? {}, hooks);
}

export function registerView(h: ViewHandle): () => void {
  install();
  views.set(h.root, h);
  return () => {
    if (views.get(h.root) === h) views.delete(h.root);
  };
}

export function viewOf(el: Element): ViewHandle | undefined {
  const root = el.closest<HTMLElement>('[data-testid="graph-view"]');
  return root ? views.get(root) : undefined;
}
