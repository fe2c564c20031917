// The app shell: load bar, rewrite panels on the left, the graphs in the middle, the inspector on
// the right, run/results/timeline/cost/source tabs below. Every panel has its own error boundary.

import { useEffect, useState, type ReactNode } from 'react';
import { shownStage, useStore } from './store/index.ts';
import { drawnNodeCount } from './graph/scene.ts';
import type { BottomTab } from './store/viewSlice.ts';
import { WorkProgress } from './panels/WorkProgress.tsx';
import { BusyBadge, BusyStatus } from './panels/BusyStatus.tsx';
import { restoreFromUrl, syncUrl } from './store/urlSync.ts';
import { PanelBoundary } from './panels/PanelBoundary.tsx';
import { LoadPanel } from './panels/LoadPanel.tsx';
import { loadDrop } from './panels/folderLoad.ts';
import { SourceEditor } from './panels/SourceEditor.tsx';
import { PassPanel } from './panels/PassPanel.tsx';
import { PassConfigPanel } from './panels/PassConfigPanel.tsx';
import { GatePanel } from './panels/GatePanel.tsx';
import { WhyPanel } from './panels/WhyPanel.tsx';
import { Inspector } from './panels/Inspector.tsx';
import { GraphStage } from './panels/GraphStage.tsx';
import { ColourByControl } from './panels/ColourBy.tsx';
import { RunPanel } from './panels/RunPanel.tsx';
import { ResultsTable } from './panels/ResultsTable.tsx';
import { TimelinePanel } from './panels/TimelinePanel.tsx';
import { CostPanel } from './panels/CostPanel.tsx';
import { KernelsPanel } from './panels/KernelsPanel.tsx';
import { ToyPanel } from './panels/ToyPanel.tsx';
import { CompareFixesPanel } from './panels/CompareFixesPanel.tsx';
import { ExportMenu } from './panels/ExportMenu.tsx';
import { Tour } from './tour/Tour.tsx';

const TABS: { id: BottomTab; label: string; render: () => ReactNode }[] = [
  { id: 'source', label: 'Source', render: () => <SourceEditor /> },
  { id: 'run', label: 'Run', render: () => <RunPanel /> },
  { id: 'results', label: 'Results', render: () => <ResultsTable /> },
  { id: 'timeline', label: 'Timeline', render: () => <TimelinePanel /> },
  { id: 'cost', label: 'Cost model', render: () => <CostPanel /> },
  { id: 'kernels', label: 'Kernels', render: () => <KernelsPanel /> },
  { id: 'fixes', label: 'Compare fixes', render: () => <CompareFixesPanel /> },
  { id: 'toy', label: 'Why it is legal', render: () => <ToyPanel /> },
];

const BOTTOM_MIN = 120;
const BOTTOM_DEFAULT = 210;

/** The edge between the graphs and the tabs: drag it, or focus it and use the arrow keys. */
function BottomSplitter({ height, setHeight }: { height: number; setHeight: (h: number) => void }) {
  const max = () => Math.max(BOTTOM_MIN, window.innerHeight - 220);
  const clamp = (h: number) => Math.round(Math.min(max(), Math.max(BOTTOM_MIN, h)));
  return (
    <div
      className="splitter"
      role="separator"
      aria-orientation="horizontal"
      aria-label="Resize the details panel"
      aria-valuemin={BOTTOM_MIN}
      aria-valuemax={max()}
      aria-valuenow={height}
      tabIndex={0}
      onKeyDown={(e) => {
        if (e.key === 'ArrowUp') {
          e.preventDefault();
          setHeight(clamp(height + 24));
        }
        if (e.key === 'ArrowDown') {
          e.preventDefault();
          setHeight(clamp(height - 24));
        }
      }}
      onPointerDown={(e) => {
        const startY = e.clientY;
        const start = height;
        const el = e.currentTarget;
        el.setPointerCapture(e.pointerId);
        const move = (ev: PointerEvent) => setHeight(clamp(start + startY - ev.clientY));
        const up = () => {
          el.removeEventListener('pointermove', move);
          el.removeEventListener('pointerup', up);
        };
        el.addEventListener('pointermove', move);
        el.addEventListener('pointerup', up);
      }}
    />
  );
}

function BottomTabs({ splitter }: { splitter: ReactNode }) {
  const tab = useStore((s) => s.bottomTab);
  const setTab = useStore((s) => s.setBottomTab);
  const importError = useStore((s) => s.importError);
  const current = TABS.find((t) => t.id === tab) ?? TABS[0];
  return (
    <section className="bottom" aria-label="Details">
      {splitter}
      <div
        className="tabs"
        role="tablist"
        aria-label="Details"
        onKeyDown={(e) => {
          if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
          const i = TABS.findIndex((t) => t.id === tab);
          const next = TABS[(i + (e.key === 'ArrowRight' ? 1 : TABS.length - 1)) % TABS.length];
          setTab(next.id);
          document.getElementById(`tab-${next.id}`)?.focus();
        }}
      >
        {TABS.map((t) => (
          <button
            key={t.id}
            id={`tab-${t.id}`}
            type="button"
            role="tab"
            aria-selected={t.id === tab}
            aria-controls="bottom-panel"
            tabIndex={t.id === tab ? 0 : -1}
            onClick={() => setTab(t.id)}
          >
            {t.label}
            {t.id === 'source' && importError && <span className="dot error" aria-label="import error" />}
            {t.id === 'run' && <BusyBadge id="run" />}
          </button>
        ))}
      </div>
      <div id="bottom-panel" role="tabpanel" aria-labelledby={`tab-${current.id}`} className="tab-body">
        <PanelBoundary key={current.id} name={current.label}>
          {current.render()}
        </PanelBoundary>
      </div>
    </section>
  );
}

/** A count of nodes as the graph views put it. */
function countNodes(n: number): string {
  return `${n} node${n === 1 ? '' : 's'}`;
}

function StatusBar() {
  const format = useStore((s) => s.format);
  const warnings = useStore((s) => s.warnings.length);
  const stages = useStore((s) => s.stages);
  const shown = useStore(shownStage);
  const base = stages[0]?.graph;
  return (
    <footer className="statusbar" role="status">
      <BusyStatus />
      <span className="spacer" />
      {format && <span>{format}</span>}
      {base && shown && (
        <span data-testid="status-nodes">
          {shown === stages[0]
            ? countNodes(drawnNodeCount(base))
            : `${drawnNodeCount(base)} → ${countNodes(drawnNodeCount(shown.graph))}`}
        </span>
      )}
      {warnings > 0 && (
        <span className="warn">
          {warnings} import warning{warnings > 1 ? 's' : ''}
        </span>
      )}
    </footer>
  );
}

function TopBar() {
  const theme = useStore((s) => s.theme);
  const setTheme = useStore((s) => s.setTheme);
  const layout = useStore((s) => s.layout);
  const setLayout = useStore((s) => s.setLayout);
  const setTourStep = useStore((s) => s.setTourStep);
  const sourceName = useStore((s) => s.sourceName);
  // The sample menu already names a sample; a file or pasted text is named here.
  const fromFile = useStore((s) => s.source !== null && !('sample' in s.source));
  return (
    <header className="topbar">
      <h1 className="brand">
        fusion<b>lab</b>
      </h1>
      <PanelBoundary name="Load">
        <LoadPanel />
      </PanelBoundary>
      {fromFile && (
        <span className="source-name" title={sourceName}>
          {sourceName}
        </span>
      )}
      <span className="spacer" />
      <ColourByControl />
      <div className="segmented" role="group" aria-label="Layout">
        <button type="button" aria-pressed={layout === 'split'} onClick={() => setLayout('split')}>
          Before | After
        </button>
        <button type="button" aria-pressed={layout === 'single'} onClick={() => setLayout('single')}>
          Current
        </button>
      </div>
      <PanelBoundary name="Export">
        <ExportMenu />
      </PanelBoundary>
      <button type="button" onClick={() => setTourStep(0)}>
        Tour
      </button>
      <button
        type="button"
        aria-pressed={theme === 'dark'}
        onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')}
        title="Toggle dark theme"
      >
        <span aria-hidden="true">{theme === 'dark' ? '☀' : '☾'}</span> Dark
      </button>
    </header>
  );
}

/**
 * In test mode <body data-ready> is "true" only while nothing loads, runs or lays out: the store
 * is idle, the URL has caught up, and every graph view on screen reports a finished layout and a
 * view at rest (its resting place is in the store, and so in the URL).
 * Any store change drops the flag at once, so a test never reads a flag left from before its click.
 */
function useReadyFlag() {
  const testMode = useStore((s) => s.testMode);
  useEffect(() => {
    if (!testMode) return;
    const root = document.getElementById('root')!;
    let raf1 = 0;
    let raf2 = 0;
    const evaluate = () => {
      const s = useStore.getState();
      const storeIdle =
        s.stages.length > 0 &&
        s.runStatus !== 'running' &&
        s.nodeDeltas?.status !== 'computing' &&
        !s.urlPending &&
        s.work === null;
      const views = [...root.querySelectorAll('[data-testid="graph-view"]')];
      const viewsReady =
        views.length > 0 &&
        views.every((v) => v.getAttribute('data-ready') === 'true' && !v.hasAttribute('data-moving'));
      document.body.dataset.ready = storeIdle && viewsReady ? 'true' : 'false';
    };
    // Two frames: React commits, then the views' effects run, before the flag is trusted.
    const schedule = () => {
      cancelAnimationFrame(raf1);
      cancelAnimationFrame(raf2);
      raf1 = requestAnimationFrame(() => {
        raf2 = requestAnimationFrame(evaluate);
      });
    };
    const unsubscribe = useStore.subscribe(() => {
      document.body.dataset.ready = 'false';
      schedule();
    });
    const mo = new MutationObserver(schedule);
    mo.observe(root, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ['data-ready', 'data-moving'],
    });
    schedule();
    return () => {
      unsubscribe();
      mo.disconnect();
      cancelAnimationFrame(raf1);
      cancelAnimationFrame(raf2);
    };
  }, [testMode]);
}

function useShortcuts() {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (t && (t.tagName === 'TEXTAREA' || t.tagName === 'INPUT' || t.tagName === 'SELECT')) return;
      if (!(e.ctrlKey || e.metaKey)) return;
      const s = useStore.getState();
      if (e.key.toLowerCase() === 'z' && !e.shiftKey) {
        e.preventDefault();
        s.undo();
      } else if ((e.key.toLowerCase() === 'z' && e.shiftKey) || e.key.toLowerCase() === 'y') {
        e.preventDefault();
        s.redo();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
}

export function App() {
  const [bottomHeight, setBottomHeight] = useState(BOTTOM_DEFAULT);
  const theme = useStore((s) => s.theme);
  const testMode = useStore((s) => s.testMode);
  useReadyFlag();
  useShortcuts();
  useEffect(() => {
    void restoreFromUrl().then(() => undefined);
    return syncUrl();
  }, []);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);

  return (
    <div
      className={`app${testMode ? ' test-mode' : ''}`}
      style={{ gridTemplateRows: `auto minmax(0, 1fr) ${bottomHeight}px 22px` }}
      onDragOver={(e) => {
        if (e.dataTransfer.types.includes('Files')) e.preventDefault();
      }}
      onDrop={(e) => {
        if (!e.dataTransfer.files[0] && !e.dataTransfer.items?.length) return;
        e.preventDefault();
        void loadDrop(e.dataTransfer);
      }}
    >
      <TopBar />
      <div className="workspace">
        <aside className="sidebar left" aria-label="Rewrite panels">
          <PanelBoundary name="Rewrite">
            <PassPanel />
          </PanelBoundary>
          <PanelBoundary name="Gates">
            <GatePanel />
          </PanelBoundary>
          <PanelBoundary name="Why">
            <WhyPanel />
          </PanelBoundary>
          <PanelBoundary name="PassConfig">
            <PassConfigPanel />
          </PanelBoundary>
        </aside>
        <main className="center" aria-label="Graphs">
          <PanelBoundary name="Graphs">
            <GraphStage />
          </PanelBoundary>
          <WorkProgress />
          <PanelBoundary name="Tour">
            <Tour />
          </PanelBoundary>
        </main>
        <aside className="sidebar right" aria-label="Inspector panel">
          <PanelBoundary name="Inspector">
            <Inspector />
          </PanelBoundary>
        </aside>
      </div>
      <div className="bottom-wrap">
        <BottomTabs splitter={<BottomSplitter height={bottomHeight} setHeight={setBottomHeight} />} />
      </div>
      <StatusBar />
    </div>
  );
}
