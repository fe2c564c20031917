// A fixed palette for tests that draw or export without a page to read CSS from: every colour
// distinct where a test tells them apart (each kind its own stroke and fill).

import { KINDS, type Palette } from './palette.ts';

export const TEST_PALETTE: Palette = {
  bg: '#fff',
  grid: '#eee',
  nodeBg: '#fff',
  text: '#111',
  sub: '#555',
  edge: '#999',
  edgeStrong: '#36f',
  edgeLabel: '#777',
  groupBg: '#fafafa',
  groupBorder: '#ccc',
  groupText: '#444',
  selected: '#36f',
  match: '#fb0',
  kind: Object.fromEntries(
    KINDS.map((k, i) => [k, { stroke: `#00000${i}`, fill: `#ffff0${i}` }]),
  ) as Palette['kind'],
  mark: { added: '#1a6', removed: '#d44', moved: '#e90', fused: '#95d' },
  overlayNone: '#cccccc',
  font: 'sans-serif',
  mono: 'monospace',
};
