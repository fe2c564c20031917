// Export a graph view as a standalone SVG (colours resolved from the theme, fonts named, so it
// opens anywhere) or a PNG drawn by the canvas renderer at full detail. Both draw the whole
// graph, not just the part in view.

import type { GraphLayout } from './layout.ts';
import type { Scene } from './scene.ts';
import type { Palette } from './palette.ts';
import { readPalette } from './palette.ts';
import { edgePath, valueLabels } from './edgePath.ts';
import { drawCanvas } from './canvasRenderer.ts';
import { viewOf } from './viewRegistry.ts';

/** Canvas sides above this fail to allocate in Chromium; big graphs export scaled down. */
const MAX_CANVAS_SIDE = 16000;

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export interface SvgOptions {
  marks?: Map<string, 'added' | 'removed' | 'moved' | 'fused'>;
  selected?: string | null;
  title?: string;
}

/** Width of a 9.5 px monospace glyph, to bound the value labels drawn right of their edge. */
const LABEL_CHAR_W = 6; // 9.5 px at 0.6 em, the width of common monospace fonts, rounded up

/** The export's size: the layout, widened where a value label runs past its right edge. */
export function exportExtent(layout: GraphLayout): { width: number; height: number } {
  let width = layout.width;
  for (const l of valueLabels(layout)) width = Math.max(width, l.x + l.label.length * LABEL_CHAR_W + 4);
  return { width: Math.ceil(width), height: Math.ceil(layout.height) };
}

/** The whole laid-out scene as SVG text. Pure: Node tests call it directly. */
export function sceneToSvg(scene: Scene, layout: GraphLayout, p: Palette, opts: SvgOptions = {}): string {
  const byName = new Map(scene.nodes.map((n) => [n.name, n]));
  const out: string[] = [];
  const { width: W, height: H } = exportExtent(layout);
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${esc(p.font)}">`,
  );
  if (opts.title) out.push(`<title>${esc(opts.title)}</title>`);
  out.push(
    `<defs><marker id="a" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0.8 L7.2,4 L0,7.2 z" fill="${p.edge}"/></marker></defs>`,
  );
  out.push(`<rect width="100%" height="100%" fill="${p.bg}"/>`);
  for (const g of layout.groups) {
    out.push(
      `<g data-group="${esc(g.id)}"><rect x="${g.x}" y="${g.y}" width="${g.w}" height="${g.h}" rx="8" fill="${g.collapsed ? p.nodeBg : p.groupBg}" stroke="${g.collapsed ? p.kind.input.stroke : p.groupBorder}"/>`,
    );
    out.push(
      `<text x="${g.x + 12}" y="${g.collapsed ? g.y + g.h / 2 + 4 : g.y + 17}" font-size="11" font-weight="600" fill="${p.groupText}">${esc(g.collapsed ? `${g.label} · ${g.count} nodes` : g.label)}</text></g>`,
    );
  }
  for (const e of layout.edges) {
    const hot = opts.selected && (e.from === opts.selected || e.to === opts.selected);
    out.push(
      `<path d="${edgePath(e.points)}" fill="none" stroke="${hot ? p.edgeStrong : p.edge}" stroke-width="${hot ? 2 : 1.2}" marker-end="url(#a)"/>`,
    );
  }
  for (const l of valueLabels(layout)) {
    out.push(
      `<text x="${l.x}" y="${l.y}" font-family="${esc(p.mono)}" font-size="9.5" fill="${p.edgeLabel}" stroke="${p.bg}" stroke-width="3" paint-order="stroke">${esc(l.label)}</text>`,
    );
  }
  for (const n of layout.nodes) {
    if (n.ref) {
      out.push(
        `<g data-ref="${esc(n.ref)}"><rect x="${n.x}" y="${n.y}" width="${n.w}" height="${n.h}" rx="${n.h / 2}" fill="${p.bg}" stroke="${p.edge}" stroke-dasharray="3 2"/>`,
      );
      out.push(
        `<text x="${n.x + 9}" y="${n.y + n.h / 2 + 3.5}" font-family="${esc(p.mono)}" font-size="10" fill="${p.sub}">↗ ${esc(n.ref)}</text></g>`,
      );
      continue;
    }
    const sn = byName.get(n.name);
    const kind = sn?.kind ?? 'opaque';
    const c = p.kind[kind];
    const small = sn?.op === 'getitem';
    const round = small || kind === 'input' ? n.h / 2 : 5;
    const mark = opts.marks?.get(n.name);
    out.push(`<g data-node="${esc(n.name)}" data-kind="${kind}"${mark ? ` data-mark="${mark}"` : ''}>`);
    out.push(
      `<rect x="${n.x}" y="${n.y}" width="${n.w}" height="${n.h}" rx="${round}" fill="${c.fill}" stroke="${c.stroke}" stroke-width="1.2"/>`,
    );
    if (small) {
      out.push(
        `<text x="${n.x + n.w / 2}" y="${n.y + n.h / 2 + 3.5}" text-anchor="middle" font-family="${esc(p.mono)}" font-size="10" fill="${p.text}">${esc(`${sn?.title ?? ''} ${n.name}`)}</text>`,
      );
    } else {
      if (kind !== 'input')
        out.push(`<rect x="${n.x}" y="${n.y + 4}" width="3" height="${n.h - 8}" fill="${c.stroke}"/>`);
      const ty = kind === 'input' ? 15 : 17,
        sy = kind === 'input' ? 28 : 31;
      if (sn && sn.subtitle && sn.subtitle !== sn.title) {
        out.push(
          `<text x="${n.x + 12}" y="${n.y + ty}" font-size="12" font-weight="600" fill="${p.text}">${esc(sn.title)}</text>`,
        );
        out.push(
          `<text x="${n.x + 12}" y="${n.y + sy}" font-family="${esc(p.mono)}" font-size="10" fill="${p.sub}">${esc(sn.subtitle)}</text>`,
        );
      } else {
        out.push(
          `<text x="${n.x + 12}" y="${n.y + n.h / 2 + 4}" font-size="12" font-weight="600" fill="${p.text}">${esc(sn?.title ?? n.name)}</text>`,
        );
      }
    }
    const ring = opts.selected === n.name ? p.selected : mark ? p.mark[mark] : null;
    if (ring)
      out.push(
        `<rect x="${n.x - 3}" y="${n.y - 3}" width="${n.w + 6}" height="${n.h + 6}" rx="${round + 3}" fill="none" stroke="${ring}" stroke-width="2.5"${mark === 'removed' ? ' stroke-dasharray="5 3"' : ''}/>`,
      );
    out.push('</g>');
  }
  out.push('</svg>');
  return out.join('\n');
}

/** The graph shown by a view (its root, or the SVG inside it) as standalone SVG text. */
export function exportSvg(target: SVGSVGElement | HTMLElement): string {
  const view = viewOf(target);
  if (!view) {
    if (target instanceof SVGSVGElement) return new XMLSerializer().serializeToString(target);
    throw new Error(
      'exportSvg: the element is not inside a graph view (no [data-testid="graph-view"] ancestor with a finished layout)',
    );
  }
  return sceneToSvg(view.scene, view.layout, readPalette(view.root), {
    marks: view.marks,
    selected: view.selected,
    title: view.root.dataset.label,
  });
}

/** The whole graph as a PNG, at `scale` pixels per layout unit (reduced for huge graphs). */
export async function exportPng(target: SVGSVGElement | HTMLElement, scale = 2): Promise<Blob> {
  const view = viewOf(target);
  if (!view) throw new Error('exportPng: the element is not inside a graph view with a finished layout');
  const { layout } = view;
  const ext = exportExtent(layout);
  const s = Math.min(
    scale,
    MAX_CANVAS_SIDE / Math.max(1, ext.width),
    MAX_CANVAS_SIDE / Math.max(1, ext.height),
  );
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.ceil(ext.width * s));
  canvas.height = Math.max(1, Math.ceil(ext.height * s));
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error(`exportPng: no 2D context for a ${canvas.width}×${canvas.height} canvas`);
  drawCanvas({
    ctx,
    width: canvas.width,
    height: canvas.height,
    transform: { x: 0, y: 0, k: s },
    layout,
    byName: new Map(view.scene.nodes.map((n) => [n.name, n])),
    palette: readPalette(view.root),
    marks: view.marks,
    selected: view.selected,
    matches: new Set(),
    fullDetail: true,
  });
  return new Promise((resolve, reject) =>
    canvas.toBlob(
      (b) => (b ? resolve(b) : reject(new Error('exportPng: the canvas produced no image'))),
      'image/png',
    ),
  );
}

/** Saves the view as a file through the browser's download. */
export async function downloadImage(root: HTMLElement, format: 'svg' | 'png', name: string): Promise<void> {
  const blob =
    format === 'svg' ? new Blob([exportSvg(root)], { type: 'image/svg+xml' }) : await exportPng(root);
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `${name.replace(/[^\w.-]+/g, '_')}.${format}`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
