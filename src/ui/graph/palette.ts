// Colours read back from the view's CSS variables, for what CSS cannot style: the canvas
// renderer, the minimap and exported images.

import type { SceneKind } from './scene.ts';

export const KINDS: SceneKind[] = [
  'compute',
  'collective',
  'view',
  'norm',
  'fused',
  'memory',
  'meta',
  'opaque',
  'input',
];

export interface Palette {
  bg: string;
  grid: string;
  nodeBg: string;
  text: string;
  sub: string;
  edge: string;
  edgeStrong: string;
  edgeLabel: string;
  groupBg: string;
  groupBorder: string;
  groupText: string;
  selected: string;
  match: string;
  kind: Record<SceneKind, { stroke: string; fill: string }>;
  mark: { added: string; removed: string; moved: string; fused: string };
  /** A node-data overlay's fill for a node with no value. */
  overlayNone: string;
  font: string;
  mono: string;
}

export function readPalette(el: Element): Palette {
  const cs = getComputedStyle(el);
  const v = (n: string, fallback: string) => cs.getPropertyValue(n).trim() || fallback;
  const kind = {} as Palette['kind'];
  for (const k of KINDS)
    kind[k] = { stroke: v(`--fl-kind-${k}`, '#888'), fill: v(`--fl-kind-${k}-fill`, '#fff') };
  return {
    bg: v('--fl-view-bg', '#fff'),
    grid: v('--fl-grid', '#eee'),
    nodeBg: v('--fl-node-bg', '#fff'),
    text: v('--fl-node-text', '#111'),
    sub: v('--fl-node-sub', '#555'),
    edge: v('--fl-edge', '#999'),
    edgeStrong: v('--fl-edge-strong', '#36f'),
    edgeLabel: v('--fl-edge-label', '#777'),
    groupBg: v('--fl-group-bg', 'transparent'),
    groupBorder: v('--fl-group-border', '#ccc'),
    groupText: v('--fl-group-text', '#444'),
    selected: v('--fl-selected', '#36f'),
    match: v('--fl-match', '#fb0'),
    kind,
    mark: {
      added: v('--fl-mark-added', '#1a6'),
      removed: v('--fl-mark-removed', '#d44'),
      moved: v('--fl-mark-moved', '#e90'),
      fused: v('--fl-mark-fused', '#95d'),
    },
    overlayNone: v('--fl-overlay-none', '#c8c8c8'),
    font: v('--fl-font', 'sans-serif'),
    mono: v('--fl-mono', 'monospace'),
  };
}
