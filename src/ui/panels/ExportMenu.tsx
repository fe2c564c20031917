// Export the shown graph as FX text or JSON, and the graph view as SVG or PNG.

import { useEffect, useRef, useState } from 'react';
import { printFx } from '../../graph/fx/print.ts';
import { graphToJson } from '../../graph/json.ts';
import { downloadImage } from '../graph/exportImage.ts';
import { shownStage, useStore } from '../store/index.ts';

function download(name: string, blob: Blob) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function baseName(name: string): string {
  return (
    (name || 'graph')
      .replace(/\.[a-z]+$/i, '')
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .toLowerCase() || 'graph'
  );
}

export function ExportMenu() {
  const [open, setOpen] = useState(false);
  const menu = useRef<HTMLDivElement>(null);
  const sourceName = useStore((s) => s.sourceName);
  const shown = useStore(shownStage);
  const setNotice = useStore((s) => s.setNotice);
  const rewritten = useStore((s) => s.cursor > 0);

  useEffect(() => {
    if (!open) return;
    const close = (e: MouseEvent) => {
      if (!menu.current?.contains(e.target as Node)) setOpen(false);
    };
    window.addEventListener('mousedown', close);
    return () => window.removeEventListener('mousedown', close);
  }, [open]);

  const stem = `${baseName(sourceName)}${rewritten ? '-rewritten' : ''}`;
  const run = async (what: string, f: () => Promise<void> | void) => {
    setOpen(false);
    try {
      await f();
      setNotice(`Exported ${what}`);
    } catch (e) {
      setNotice(`Export ${what} failed: ${(e as Error).message}`, true);
    }
  };
  const g = shown?.graph;
  return (
    <div
      className="menu"
      ref={menu}
      onKeyDown={(e) => {
        if (e.key === 'Escape') setOpen(false);
      }}
    >
      <button
        type="button"
        aria-haspopup="menu"
        aria-expanded={open}
        onClick={() => setOpen(!open)}
        disabled={!g}
      >
        Export ▾
      </button>
      {open && g && (
        <div className="menu-list" role="menu" aria-label="Export">
          <button
            type="button"
            role="menuitem"
            onClick={() =>
              run('FX text', () => download(`${stem}.py`, new Blob([printFx(g)], { type: 'text/x-python' })))
            }
          >
            FX text (.py)
          </button>
          <button
            type="button"
            role="menuitem"
            onClick={() =>
              run('JSON', () =>
                download(
                  `${stem}.json`,
                  new Blob([JSON.stringify(graphToJson(g), null, 1)], { type: 'application/json' }),
                ),
              )
            }
          >
            JSON (fusionlab.graph/1)
          </button>
          <button type="button" role="menuitem" onClick={() => run('SVG', () => exportView('svg', stem))}>
            Graph view as SVG
          </button>
          <button type="button" role="menuitem" onClick={() => run('PNG', () => exportView('png', stem))}>
            Graph view as PNG
          </button>
        </div>
      )}
    </div>
  );
}

/** The graph view to export: the one the selection is in, else the last (the after view). */
async function exportView(format: 'svg' | 'png', stem: string) {
  const views = [...document.querySelectorAll<HTMLElement>('[data-testid="graph-view"]')];
  const side = useStore.getState().selectedSide;
  const view = views.find((v) => v.dataset.label === side) ?? views[views.length - 1];
  if (!view) throw new Error('no graph view on screen');
  await downloadImage(view, format, stem);
}
