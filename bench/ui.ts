// `fusionlab bench ui [--big-layers N] [--skip-reference]`: the graph views in Debian's chromium
// (Playwright), on the generated GPT-OSS-20B graph at 24 layers and at ~10,000 nodes:
//  - first render: graph in hand → layout done in the worker and the view's first frame painted
//    (a new graph's first frame draws the boxes within a screen of the view), and → every box in
//    the DOM and painted;
//  - layout time inside the worker;
//  - frames per second during a scripted pan and zoom, against the frame rate of an idle page
//    in the same browser (the ceiling);
//  - dagre and elkjs laying out the same scenes in Node in the same run (each in its own
//    process, stack overflows reported as such), against our layout of the same scene in Node;
//  - the whole app on the 300-layer sample: the longest main-thread task (PerformanceObserver
//    'longtask') while it loads and while the pipeline rewrites it, against the 200 ms target;
//  - the whole app running a rewrite before & after (GPT-OSS-20B, 1 layer, TP2, CPU reference,
//    2 ranks): the time of each run phase the Run tab reports (planning, running, the timed runs),
//    and how long the status bar went without saying what was going on.
//  - the whole app opening a generated 300 MB TORCH_TRACE log (the real fixture's log repeated,
//    each copy's frames renumbered): the longest main-thread task while it is read in the worker
//    and its first compile shown, against the same 200 ms target.
//  - the whole app opening a ~300 MB profiler trace (the fixture's events repeated) in the
//    Kernels tab: whether progress shows, the longest main-thread task against the same target.
// `--run-only` measures only the run phases; `--trace-only` only the TORCH_TRACE log and the
// profiler trace (`--trace-mb N`, default 300, sizes both).
// Everything is printed as ratios next to the raw numbers.

import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from '@playwright/test';
import { parseFx } from '../src/graph/fx/parse.ts';
import { generateSample } from '../src/graph/samples/index.ts';
import type { Graph } from '../src/graph/ir.ts';
import { buildScene, type Scene } from '../src/ui/graph/scene.ts';
import { layoutScene } from '../src/ui/graph/layout.ts';
import { median, positiveIntFlag } from './args.ts';

const PORT = 4737;
/** The whole app's preview, for the long-task section. */
const APP_PORT = PORT + 1;
/** The sample the long-task section loads, and the target for any one main-thread task. */
const BIG_SAMPLE = 'gpt-oss-20b-l300-tp4';
const LONG_TASK_TARGET_MS = 200;
/** Issue 13's target for the 24-layer graph's first render. */
const FIRST_RENDER_TARGET_MS = 300;
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-angle=swiftshader',
  '--font-render-hinting=none',
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
];
const REFERENCE_TIMEOUT_MS = 120_000;

/** Layers of the generated graph that give at least `nodes` FX nodes. */
function layersFor(nodes: number): number {
  const perLayer =
    parseFx(generateSample('gpt-oss-20b', { layers: 2, tp: 4 })).graph.nodes.length -
    parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 4 })).graph.nodes.length;
  const base = parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 4 })).graph.nodes.length - perLayer;
  return Math.ceil((nodes - base) / perLayer);
}

function referenceLayout(lib: 'dagre' | 'elkjs', scene: Scene): string {
  const input = JSON.stringify({
    nodes: scene.nodes.map((n) => ({ name: n.name, w: n.w, h: n.h })),
    edges: scene.edges,
  });
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/ui-reference-layout.ts', lib], {
    input,
    encoding: 'utf8',
    timeout: REFERENCE_TIMEOUT_MS,
    maxBuffer: 1 << 20,
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT')
    return `did not finish in ${REFERENCE_TIMEOUT_MS / 1000} s`;
  try {
    const out = JSON.parse(r.stdout) as { ms: number; error?: string };
    return out.error ? `${out.error} after ${(out.ms / 1000).toFixed(1)} s` : `${out.ms.toFixed(0)} ms`;
  } catch {
    const err = r.stderr || '';
    if (/Maximum call stack|RangeError/.test(err)) return 'stack overflow';
    if (/heap out of memory|Allocation failed|AllocateIn/.test(err)) return 'ran out of memory (V8 heap)';
    return `crashed (${err.trim().split('\n').slice(-2).join(' ').slice(0, 120) || `exit ${r.status}`})`;
  }
}

function ourLayoutMs(scene: Scene): number {
  layoutScene(scene); // warm the JIT
  const t: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    layoutScene(scene);
    t.push(performance.now() - t0);
  }
  return median(t);
}

async function measurePage(
  page: Page,
  query: string,
): Promise<{ paintMs: number; renderMs: number; layoutMs: number; nodes: number; renderer: string }> {
  await page.goto(`http://127.0.0.1:${PORT}/bench/ui-page.html?${query}`);
  await page.waitForSelector('[data-testid="graph-view"][data-ready="true"]', { timeout: 120_000 });
  const b = (await page.evaluate('window.__bench')) as NonNullable<Window['__bench']>;
  const renderer = await page.getAttribute('[data-testid="graph-view"]', 'data-renderer');
  return {
    paintMs: b.paintMs!,
    renderMs: b.renderMs!,
    layoutMs: b.layoutMs!,
    nodes: b.nodes!,
    renderer: renderer ?? '?',
  };
}

/** Frames per second while the view pans and zooms every frame for `ms`; `idle` measures the page doing nothing. */
async function framesPerSecond(page: Page, ms: number, idle: boolean): Promise<number> {
  // Passed as source text: the TypeScript loader wraps named functions in helpers the page lacks.
  return page.evaluate(`new Promise((resolve) => {
    const view = window.__fusionlab && window.__fusionlab.views ? window.__fusionlab.views()[0] : undefined;
    const ms = ${ms}, idle = ${idle};
    let frames = 0;
    const t0 = performance.now();
    const tick = (now) => {
      const t = (now - t0) / ms;
      if (!idle && view) {
        // A pan across and down, zooming out and back in: the gestures a reader makes.
        const k = 0.35 + 0.5 * (0.5 + 0.5 * Math.cos(t * Math.PI * 2));
        view.setView({ x: -400 * Math.sin(t * Math.PI * 2), y: -3000 * t, k });
      }
      frames++;
      if (now - t0 < ms) requestAnimationFrame(tick);
      else resolve(frames / ((now - t0) / 1000));
    };
    requestAnimationFrame(tick);
  })`) as Promise<number>;
}

async function waitForServer(port: number, path: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}${path}`)).ok) return;
    } catch {
      /* not up yet */
    }
    if (i > 100) throw new Error(`vite preview did not answer on port ${port}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface LongTasks {
  longestMs: number;
  wallMs: number;
}

/**
 * Opens the app with the main thread's long tasks recorded; `phase(act)` does `act` and returns the
 * longest task from its start until the app is idle again, and how long that took.
 */
async function appWatchingLongTasks(page: Page): Promise<(act: () => Promise<void>) => Promise<LongTasks>> {
  await page.addInitScript(`(() => {
    window.__tasks = [];
    new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__tasks.push(e.duration); })
      .observe({ type: 'longtask', buffered: true });
  })()`);
  await page.goto(`http://127.0.0.1:${APP_PORT}/?test=1`);
  const ready = () => page.waitForSelector('body[data-ready="true"]', { timeout: 600_000 });
  await ready();
  return async (act) => {
    await page.evaluate('window.__tasks = []');
    const t0 = Date.now();
    await act();
    await ready();
    const wallMs = Date.now() - t0;
    return { longestMs: (await page.evaluate('Math.max(0, ...window.__tasks)')) as number, wallMs };
  };
}

/**
 * Loads the 300-layer sample in the app, then runs the pipeline on it: per phase, the longest
 * main-thread task and the time until the app is idle again.
 */
async function appLongTasks(page: Page): Promise<{ load: LongTasks; rewrite: LongTasks; nodes: string }> {
  const phase = await appWatchingLongTasks(page);
  const load = await phase(() => page.selectOption('#sample-select', BIG_SAMPLE).then(() => undefined));
  const nodes = (await page.textContent('[data-testid="status-nodes"]')) ?? '?';
  const rewrite = await phase(() => page.click('button:has-text("Run pipeline")'));
  return { load, rewrite, nodes };
}

/**
 * Writes a Chrome trace of about `mb` MB: fixtures/trace's events over and over, each copy later
 * in time, as torch.profiler writes them (one event a line). Returns its events and bytes.
 */
function writeBigTrace(path: string, mb: number): { events: number; bytes: number } {
  const raw = gunzipSync(readFileSync(new URL('../fixtures/trace/profile.json.gz', import.meta.url)));
  const events = (JSON.parse(raw.toString('utf8')) as { traceEvents: { ts?: number; dur?: number }[] })
    .traceEvents;
  const span = Math.max(...events.map((e) => (e.ts ?? 0) + (e.dur ?? 0))) + 1;
  const fd = openSync(path, 'w');
  let bytes = 0,
    count = 0;
  const write = (t: string) => (bytes += writeSync(fd, t));
  write('{\n  "schemaVersion": 1,\n  "traceEvents": [\n');
  for (let copy = 0; bytes < mb * 1e6; copy++) {
    const lines = events.map((e) => JSON.stringify({ ...e, ts: (e.ts ?? 0) + copy * span }));
    write(`${copy ? ',\n' : ''}${lines.join(',\n')}`);
    count += lines.length;
  }
  write('\n  ]\n}\n');
  closeSync(fd);
  return { events: count, bytes };
}

/**
 * Opens a trace in the app's Kernels tab: whether the progress line shows while it is read, the
 * longest main-thread task, and the time until its events are listed.
 */
async function appProfileLongTasks(page: Page, path: string): Promise<LongTasks & { progress: boolean }> {
  await appWatchingLongTasks(page);
  await page.click('[role="tab"]:has-text("Kernels")');
  await page.evaluate('window.__tasks = []');
  const t0 = Date.now();
  await page.setInputFiles('#kernel-files', path);
  const progress = await page
    .waitForSelector('[data-testid="trace-progress"]', { timeout: 30_000 })
    .then(() => true)
    .catch(() => false);
  await page.waitForSelector('[data-testid="kernel-files"] li, [data-testid="kernels-error"]', {
    timeout: 600_000,
  });
  const wallMs = Date.now() - t0;
  const error = await page.textContent('[data-testid="kernels-error"]').catch(() => null);
  if (error) throw new Error(`the trace did not open: ${error}`);
  return { longestMs: (await page.evaluate('Math.max(0, ...window.__tasks)')) as number, wallMs, progress };
}

/** The size of the TORCH_TRACE log the trace section opens: real vLLM runs write logs this big. */
const TRACE_LOG_MB = 300;

/**
 * A TORCH_TRACE folder holding one log of about `mb` MB: the fixture's real log again and again,
 * each copy's frame ids moved past the last copy's, so every copy adds compiles rather than repeating them.
 */
function writeBigTraceLog(dir: string, mb: number): { folder: string; compiles: number } {
  const src = new URL('../fixtures/trace/torch_trace/', import.meta.url).pathname;
  const log = readFileSync(src + readdirSync(src).find((f) => f.endsWith('.log'))!, 'utf8');
  const frames = new Set([...log.matchAll(/"frame_id": (\d+)/g)].map((m) => Number(m[1]))).size;
  const compiles = new Set([...log.matchAll(/"compile_id": "(\d+\/\d+)"/g)].map((m) => m[1])).size;
  const folder = join(dir, 'torch_trace');
  mkdirSync(folder, { recursive: true });
  const fd = openSync(join(folder, 'dedicated_log_torch_trace_bench.log'), 'w');
  const copies = Math.ceil((mb * 2 ** 20) / Buffer.byteLength(log));
  try {
    for (let k = 0; k < copies; k++) {
      const shift = (id: string) => String(Number(id) + k * frames);
      writeSync(
        fd,
        log
          .replace(/"frame_id": (\d+)/g, (_, id: string) => `"frame_id": ${shift(id)}`)
          .replace(/"compile_id": "(\d+)\//g, (_, id: string) => `"compile_id": "${shift(id)}/`),
      );
    }
  } finally {
    closeSync(fd);
  }
  return { folder: dir, compiles: copies * compiles };
}

/**
 * Opens the generated TORCH_TRACE folder with Open folder…: the longest main-thread task until the
 * first compile is shown, and that compile's first render: from its list on the page to its first
 * stage's graph laid out and painted.
 */
async function appTraceLongTasks(
  page: Page,
  folder: string,
): Promise<LongTasks & { frames: string; firstRenderMs: number }> {
  const phase = await appWatchingLongTasks(page);
  let firstRenderMs = NaN;
  const read = await phase(async () => {
    await page.getByLabel('Dump folder').setInputFiles(folder);
    await page.waitForSelector('[data-testid="trace-frames"]', { timeout: 600_000 });
    const listed = Date.now();
    // Polled with evaluate (the app's CSP refuses waitForFunction's string eval), a string as everywhere
    // here: the bench's transpiler may wrap a function in helpers the page lacks.
    const drawn = `(() => {
      const stage = document.querySelector('[data-testid="dump-stages"]');
      const views = Array.from(document.querySelectorAll('[data-testid="graph-view"]'));
      return !!stage && /Dump stage 1 [/]/.test(stage.textContent) && views.length > 0 &&
        views.every((v) => v.getAttribute('data-ready') === 'true');
    })()`;
    while (!(await page.evaluate(drawn))) {
      if (Date.now() - listed > 600_000)
        throw new Error("the first compile's graph was not drawn in 10 minutes");
      await page.waitForTimeout(10);
    }
    firstRenderMs = Date.now() - listed;
  });
  const frames = (await page.getByTestId('trace-frames').locator('div').first().textContent()) ?? '?';
  return { ...read, frames, firstRenderMs };
}

/** The sample the run-phase section runs, and how its run is set up. */
const RUN_SAMPLE = 'gpt-oss-20b-l1-tp2';

interface RunPhases {
  /** Phase (its label without counts) → wall time, in the order they came. */
  phases: [string, number][];
  totalMs: number;
  /** The longest stretch the status bar showed no work line while the run went on. */
  silentMs: number;
  verdict: string;
}

/**
 * Runs before & after in the app and samples the Run tab's phase label and the status bar every
 * 50 ms until the verdict shows: per phase (counts dropped: "timed run 2/3 (after)" is "timed run")
 * the wall time it was on screen.
 */
async function appRunPhases(page: Page): Promise<RunPhases> {
  await page.goto(`http://127.0.0.1:${APP_PORT}/?test=1`);
  const ready = () => page.waitForSelector('body[data-ready="true"]', { timeout: 600_000 });
  await ready();
  await page.selectOption('#sample-select', RUN_SAMPLE);
  await ready();
  await page.click('button:has-text("Run pipeline")');
  await ready();
  await page.click('[role="tab"]:has-text("Run")');
  await page.selectOption('#run-backend', 'cpu');
  await page.selectOption('#run-ranks', '2');
  const t0 = Date.now();
  await page.click('button:has-text("Run before & after")');
  const phases = new Map<string, number>();
  let last = t0,
    silentSince: number | null = null,
    silentMs = 0;
  for (;;) {
    const s = (await page.evaluate(`(() => {
      const p = document.querySelector('[aria-label="Run progress"] > span');
      const v = document.querySelector('[data-testid="run-verdict"]');
      const busy = document.querySelector('[data-testid="busy-status"]');
      return { phase: p ? p.textContent : null, verdict: v ? v.textContent : null, busy: !!busy };
    })()`)) as { phase: string | null; verdict: string | null; busy: boolean };
    const now = Date.now();
    if (s.phase) {
      const key = s.phase.replace(/ \d+\/\d+.*$/, '');
      phases.set(key, (phases.get(key) ?? 0) + (now - last));
    }
    // The status bar owes a work line from the first second on.
    if (!s.busy && !s.verdict && now - t0 > 1000) silentSince ??= now;
    else if (silentSince !== null) {
      silentMs = Math.max(silentMs, now - silentSince);
      silentSince = null;
    }
    last = now;
    if (s.verdict) return { phases: [...phases], totalMs: now - t0, silentMs, verdict: s.verdict };
    if (now - t0 > 600_000) throw new Error('the run did not finish in 10 minutes');
    await page.waitForTimeout(50);
  }
}

export async function bench(argv: string[]): Promise<number> {
  let bigNodes: number;
  try {
    bigNodes = positiveIntFlag(argv, '--big-nodes', 10_000);
  } catch (e) {
    process.stderr.write(`fusionlab bench ui: ${(e as Error).message}\n`);
    return 2;
  }
  const skipReference = argv.includes('--skip-reference');
  const runOnly = argv.includes('--run-only');
  const traceOnly = argv.includes('--trace-only');
  let traceMb: number;
  try {
    traceMb = positiveIntFlag(argv, '--trace-mb', TRACE_LOG_MB);
  } catch (e) {
    process.stderr.write(`fusionlab bench ui: ${(e as Error).message}\n`);
    return 2;
  }
  const bigLayers = layersFor(bigNodes);
  const cases: { name: string; graph: Graph; query: string; renderTargetMs?: number }[] = [
    {
      name: 'GPT-OSS-20B, 24 layers',
      graph: parseFx(generateSample('gpt-oss-20b', { layers: 24, tp: 4 })).graph,
      query: 'layers=24&tp=4&test=1',
      renderTargetMs: FIRST_RENDER_TARGET_MS,
    },
    {
      name: `GPT-OSS-20B, ${bigLayers} layers`,
      graph: parseFx(generateSample('gpt-oss-20b', { layers: bigLayers, tp: 4 })).graph,
      query: `layers=${bigLayers}&tp=4&test=1`,
    },
  ];

  const outDir = mkdtempSync(join(tmpdir(), 'fusionlab-ui-bench-'));
  process.stdout.write('building the graph-view page…\n');
  const build = spawnSync(
    'npx',
    [
      'vite',
      'build',
      '--config',
      'bench/vite.ui.config.ts',
      '--outDir',
      outDir,
      '--emptyOutDir',
      '--logLevel',
      'warn',
    ],
    { encoding: 'utf8' },
  );
  if (build.status !== 0) {
    process.stderr.write(`fusionlab bench ui: building bench/ui-page.html failed:\n${build.stderr}\n`);
    return 1;
  }
  const server = spawn(
    'npx',
    [
      'vite',
      'preview',
      '--config',
      'bench/vite.ui.config.ts',
      '--outDir',
      outDir,
      '--port',
      String(PORT),
      '--strictPort',
    ],
    { stdio: 'ignore', detached: true },
  );
  // The long-task section needs the whole app; built apart, so the views' numbers do not depend on it.
  const appDir = mkdtempSync(join(tmpdir(), 'fusionlab-ui-bench-app-'));
  process.stdout.write('building the app…\n');
  const appBuild = spawnSync(
    'npx',
    ['vite', 'build', '--outDir', appDir, '--emptyOutDir', '--logLevel', 'error'],
    { encoding: 'utf8' },
  );
  const appServer =
    appBuild.status === 0
      ? spawn('npx', ['vite', 'preview', '--outDir', appDir, '--port', String(APP_PORT), '--strictPort'], {
          stdio: 'ignore',
          detached: true,
        })
      : null;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
  const errors: string[] = [];
  /** A page of the whole app, or null (said so) where building it failed. */
  const openAppPage = async (): Promise<Page | null> => {
    if (!appServer) {
      process.stdout.write(`  not measured: building the app failed:\n${appBuild.stderr}\n`);
      return null;
    }
    await waitForServer(APP_PORT, '/');
    const p = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    p.on('pageerror', (e) => errors.push(e.message));
    return p;
  };
  // The graph views, then the long tasks of the whole app (skipped with --run-only).
  const viewsAndLongTasks = async (): Promise<void> => {
    await waitForServer(PORT, '/bench/ui-page.html');
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${PORT}/bench/ui-page.html?fixture=pr28841-before&test=1`);
    await page.waitForSelector('[data-testid="graph-view"][data-ready="true"]');
    const idleFps = await framesPerSecond(page, 2000, true);
    process.stdout.write(`\nceiling: an idle page in this chromium paints ${idleFps.toFixed(1)} frames/s\n`);

    for (const c of cases) {
      const scene = buildScene(c.graph);
      process.stdout.write(
        `\n${c.name}: ${c.graph.nodes.length} FX nodes, ${scene.nodes.length} boxes, ${scene.edges.length} edges\n`,
      );
      const runs = [] as Awaited<ReturnType<typeof measurePage>>[];
      for (let i = 0; i < 5; i++) runs.push(await measurePage(page, c.query));
      const paint = median(runs.map((r) => r.paintMs)),
        render = median(runs.map((r) => r.renderMs)),
        workerLayout = median(runs.map((r) => r.layoutMs));
      const fps = await framesPerSecond(page, 3000, false);
      const ours = ourLayoutMs(scene);
      process.stdout.write(
        `  first render (${runs[0].renderer})   ${paint.toFixed(0)} ms${c.renderTargetMs ? `   = ${(paint / c.renderTargetMs).toFixed(2)} × the ${c.renderTargetMs} ms target` : ''}   (median of ${runs.length}; the view's first frame)\n`,
      );
      process.stdout.write(`  every box drawn             ${render.toFixed(0)} ms\n`);
      process.stdout.write(
        `  layout in the worker        ${workerLayout.toFixed(0)} ms   = ${((workerLayout / paint) * 100).toFixed(0)} % of first render\n`,
      );
      process.stdout.write(
        `  pan/zoom                    ${fps.toFixed(1)} frames/s = ${(fps / idleFps).toFixed(2)} × the idle-page ceiling\n`,
      );
      // The libraries get the scene flat (no layer groups); so does this line of ours.
      const flatScene: Scene = {
        ...scene,
        groups: [],
        nodes: scene.nodes.map((n) => ({ ...n, group: undefined })),
      };
      const oursFlat = ourLayoutMs(flatScene);
      process.stdout.write(
        `  our layout in Node          ${ours.toFixed(0)} ms grouped, ${oursFlat.toFixed(0)} ms flat\n`,
      );
      if (!skipReference) {
        for (const lib of ['dagre', 'elkjs'] as const) {
          const r = referenceLayout(lib, scene);
          const ms = /^(\d+) ms$/.exec(r);
          process.stdout.write(
            `  ${lib.padEnd(6)} same scene, flat    ${r}${ms ? `   = ${(Number(ms[1]) / oursFlat).toFixed(1)}× our flat layout` : ''}\n`,
          );
        }
      }
    }

    process.stdout.write(
      `\nthe app on the 300-layer sample (${BIG_SAMPLE}), long tasks on the page's main thread:\n`,
    );
    const appPage = await openAppPage();
    if (appPage) {
      const r = await appLongTasks(appPage);
      process.stdout.write(`  graph: ${r.nodes}\n`);
      for (const [name, t] of [
        ['loading', r.load],
        ['rewriting (Run pipeline)', r.rewrite],
      ] as const) {
        process.stdout.write(
          `  ${name.padEnd(26)} longest task ${t.longestMs.toFixed(0)} ms   target ${LONG_TASK_TARGET_MS} ms   = ${(t.longestMs / LONG_TASK_TARGET_MS).toFixed(2)} × the target   (idle again after ${(t.wallMs / 1000).toFixed(1)} s)\n`,
        );
      }
    }
  };
  const traceLongTasks = async (): Promise<void> => {
    const big = writeBigTraceLog(mkdtempSync(join(tmpdir(), 'fusionlab-ui-bench-trace-')), traceMb);
    process.stdout.write(
      `\nthe app opening a ${traceMb} MB TORCH_TRACE log (${big.compiles} compiles), long tasks on the page's main thread:\n`,
    );
    try {
      const tracePage = await openAppPage();
      if (!tracePage) return;
      const t = await appTraceLongTasks(tracePage, big.folder);
      process.stdout.write(
        `  ${t.frames}\n  ${'reading, first compile shown'.padEnd(26)} longest task ${t.longestMs.toFixed(0)} ms   target ${LONG_TASK_TARGET_MS} ms   = ${(t.longestMs / LONG_TASK_TARGET_MS).toFixed(2)} × the target   (idle again after ${(t.wallMs / 1000).toFixed(1)} s)\n` +
          `  ${'first compile drawn'.padEnd(26)} ${t.firstRenderMs.toFixed(0)} ms from its list on the page to its first stage laid out and painted\n`,
      );
    } finally {
      rmSync(big.folder, { recursive: true, force: true });
    }
  };
  const profileLongTasks = async (): Promise<void> => {
    const path = join(appDir, 'big-trace.json');
    const t = writeBigTrace(path, traceMb);
    process.stdout.write(
      `\nthe app opening a ${(t.bytes / 1e6).toFixed(0)} MB profiler trace (${t.events} events) in the Kernels tab:\n`,
    );
    const tracePage = await openAppPage();
    if (!tracePage) return;
    const r = await appProfileLongTasks(tracePage, path);
    process.stdout.write(
      `  progress shown: ${r.progress ? 'yes' : 'NO'}   longest task ${r.longestMs.toFixed(0)} ms   target ${LONG_TASK_TARGET_MS} ms   = ${(r.longestMs / LONG_TASK_TARGET_MS).toFixed(2)} × the target   (read in ${(r.wallMs / 1000).toFixed(1)} s)\n`,
    );
    await tracePage.close();
  };
  try {
    if (!runOnly && !traceOnly) await viewsAndLongTasks();
    if (!runOnly) await traceLongTasks();
    if (!runOnly) await profileLongTasks();
    if (!traceOnly)
      process.stdout.write(
        `\nthe app running ${RUN_SAMPLE} after the pipeline, before & after on the CPU reference, 2 ranks:\n`,
      );
    const runPage = traceOnly ? null : await openAppPage();
    if (runPage) {
      const r = await appRunPhases(runPage);
      for (const [phase, ms] of r.phases)
        process.stdout.write(
          `  ${phase.padEnd(26)} ${(ms / 1000).toFixed(2)} s   = ${((100 * ms) / r.totalMs).toFixed(0)} % of the run\n`,
        );
      process.stdout.write(
        `  whole run                  ${(r.totalMs / 1000).toFixed(2)} s; status bar silent at most ${(r.silentMs / 1000).toFixed(2)} s after the first second\n  verdict: ${r.verdict}\n`,
      );
    }
    if (errors.length) {
      process.stderr.write(`page errors:\n${errors.join('\n')}\n`);
      return 1;
    }
    return 0;
  } finally {
    await browser.close();
    try {
      process.kill(-server.pid!);
    } catch {
      /* already gone */
    }
    if (appServer)
      try {
        process.kill(-appServer.pid!);
      } catch {
        /* already gone */
      }
    rmSync(outDir, { recursive: true, force: true });
    rmSync(appDir, { recursive: true, force: true });
  }
}
