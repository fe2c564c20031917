// A page that mounts only the graph views, for the UI bench, the view's own e2e spec and
// screenshots. URL parameters:
//   model=gpt-oss-20b|gpt-oss-120b|llama  layers=N  tp=N   the generated graph
//   fixture=pr28841-before|…                               a built-in FX text instead
//   flat=1          drop layer names (one 10,000-node block, no groups)
//   show=before|after|diff|animate   after = after the default pipeline; animate = before, then
//                   the rewrite animated (after `delay` ms)
//   test=1          deterministic: no animation     theme=dark
// It publishes timings on window.__bench: prepMs (generate, parse, rewrite: not the view's),
// paintMs (mount → layout done and the view's first frame painted), renderMs (mount → every box
// in the DOM and painted), layoutMs (in the worker), nodes.

import { StrictMode, useCallback, useEffect, useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { parseFx } from '../src/graph/fx/parse.ts';
import { generateSample, type SampleModel } from '../src/graph/samples/index.ts';
import { runPipeline, DEFAULT_PIPELINE } from '../src/graph/passes/pipeline.ts';
import { diffGraphs, changeMarks } from '../src/graph/diff.ts';
import type { Graph } from '../src/graph/ir.ts';
import { GraphView } from '../src/ui/graph/GraphView.tsx';
import { DiffView } from '../src/ui/graph/DiffView.tsx';
import { viewOf } from '../src/ui/graph/viewRegistry.ts';
import prBefore from '../fixtures/fx/seed/pr28841-before.fragment.txt?raw';
import prAfter from '../fixtures/fx/seed/pr28841-after.fragment.txt?raw';
import qwenTp2 from '../fixtures/fx/real/qwen2-paral2_layer1-r0.py?raw';

const FIXTURES: Record<string, string> = {
  'pr28841-before': prBefore,
  'pr28841-after': prAfter,
  'qwen2-tp2': qwenTp2,
};

declare global {
  interface Window {
    __bench?: {
      paintMs?: number;
      /** Boxes in the DOM when the first frame was painted. */
      paintedBoxes?: number;
      renderMs?: number;
      layoutMs?: number;
      prepMs?: number;
      nodes?: number;
      error?: string;
    };
  }
}

const params = new URLSearchParams(location.search);
window.__bench = {};
const testMode = params.get('test') === '1';
if (params.get('theme') === 'dark') document.documentElement.dataset.theme = 'dark';

function loadGraph(): Graph {
  const fixture = params.get('fixture');
  const text = fixture
    ? (FIXTURES[fixture] ?? '')
    : generateSample((params.get('model') ?? 'gpt-oss-20b') as SampleModel, {
        layers: Number(params.get('layers') ?? 24),
        tp: Number(params.get('tp') ?? 4),
      });
  const g = parseFx(text).graph;
  if (params.get('flat') === '1') {
    for (const n of g.nodes) {
      for (const k of Object.keys(n.kwargs)) if (k === 'layer_name') n.kwargs[k] = 'flat';
    }
  }
  return g;
}

const tPrep = performance.now();
const loaded = loadGraph();
const rewrite =
  params.get('show') === 'before' || !params.get('show') ? null : runPipeline(loaded, DEFAULT_PIPELINE);
window.__bench.prepMs = performance.now() - tPrep;
// First render is timed from here: the graph exists, the view has not started.
const t0 = performance.now();

function BenchPage() {
  const before = loaded;
  const pipeline = useMemo(
    () => rewrite ?? { output: before, stages: [] as ReturnType<typeof runPipeline>['stages'] },
    [before],
  );
  const matches = useMemo(() => pipeline.stages.flatMap((s) => s.matches), [pipeline]);
  const diff = useMemo(() => diffGraphs(before, pipeline.output, matches), [before, pipeline, matches]);
  const show = params.get('show') ?? 'before';
  const [selected, setSelected] = useState<string | null>(params.get('select'));
  const [collapsed, setCollapsed] = useState<Set<string>>(
    () => new Set(params.get('collapse')?.split(',').filter(Boolean) ?? []),
  );
  const [stage, setStage] = useState<'before' | 'after'>(show === 'after' ? 'after' : 'before');
  const toggle = useCallback(
    (g: string) =>
      setCollapsed((c) => {
        const n = new Set(c);
        if (n.has(g)) n.delete(g);
        else n.add(g);
        return n;
      }),
    [],
  );
  const onPainted = useCallback(() => {
    const b = window.__bench!;
    if (b.paintMs !== undefined) return;
    b.paintMs = performance.now() - t0;
    b.paintedBoxes = document.querySelectorAll('[data-node]').length;
  }, []);
  const onReady = useCallback(() => {
    const b = window.__bench!;
    if (b.renderMs !== undefined) return;
    b.renderMs = performance.now() - t0;
    const root = document.querySelector<HTMLElement>('[data-testid="graph-view"]');
    const v = root ? viewOf(root) : undefined;
    b.layoutMs = v?.layoutMs;
    b.nodes = v?.scene.nodes.length;
  }, []);
  useEffect(() => {
    if (show !== 'animate') return;
    const id = window.setTimeout(() => setStage('after'), Number(params.get('delay') ?? 800));
    return () => window.clearTimeout(id);
  }, [show]);
  const animateFrom = useMemo(() => ({ graph: before, mapping: diff.afterToBefore }), [before, diff]);

  if (show === 'diff') {
    return (
      <DiffView
        before={before}
        after={pipeline.output}
        matches={matches}
        selected={selected}
        onSelect={setSelected}
        testMode={testMode}
      />
    );
  }
  const isAfter = stage === 'after';
  return (
    <GraphView
      graph={isAfter ? pipeline.output : before}
      label={isAfter ? 'after' : 'before'}
      marks={changeMarks(isAfter ? diff.after : diff.before)}
      selected={selected}
      onSelect={setSelected}
      collapsed={collapsed}
      onToggleGroup={toggle}
      animateFrom={isAfter && show === 'animate' ? animateFrom : undefined}
      testMode={testMode}
      onReady={onReady}
      onPainted={onPainted}
    />
  );
}

try {
  createRoot(document.getElementById('root')!).render(
    <StrictMode>
      <BenchPage />
    </StrictMode>,
  );
} catch (e) {
  window.__bench!.error = e instanceof Error ? e.message : String(e);
}
