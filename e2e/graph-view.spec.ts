import { test, expect, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { parseFx } from '../src/graph/fx/parse.ts';
import { generateSample } from '../src/graph/samples/index.ts';
import { DEFAULT_PIPELINE, runPipeline } from '../src/graph/passes/pipeline.ts';
import { buildScene } from '../src/ui/graph/scene.ts';
import { layoutSceneBlocks } from '../src/ui/graph/layout.ts';
import { searchNodes } from '../src/ui/graph/search.ts';

// The graph views mounted alone (bench/ui-page.html), on the generated GPT-OSS-20B graph.
const PAGE = '/bench/ui-page.html';
const gptOss = (layers: number) => parseFx(generateSample('gpt-oss-20b', { layers, tp: 4 })).graph;

async function open(page: Page, query: string): Promise<string[]> {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${PAGE}?${query}`);
  await expect(page.getByTestId('graph-view').first()).toHaveAttribute('data-ready', 'true', {
    timeout: 60_000,
  });
  return errors;
}

test('the 24-layer graph renders as SVG with every node, coloured by kind', async ({ page }) => {
  const errors = await open(page, 'layers=24&tp=4&test=1');
  const scene = buildScene(gptOss(24));
  const view = page.getByTestId('graph-view');
  await expect(view).toHaveAttribute('data-renderer', 'svg');
  await expect(view).toHaveAttribute('data-node-count', String(scene.nodes.length));
  await expect(page.locator('[data-node]')).toHaveCount(scene.nodes.length);
  await expect(page.locator('[data-node][data-kind="collective"]')).toHaveCount(
    scene.nodes.filter((n) => n.kind === 'collective').length,
  );
  await expect(page.locator('[data-node="slice_2"]')).toHaveAttribute('data-op', 'aten.slice.Tensor');
  await expect(page.locator('[data-group]')).toHaveCount(24);
  expect(errors).toEqual([]);
});

test('click, arrows, Enter and f drive the selection and the view', async ({ page }) => {
  await open(page, 'layers=2&tp=4&test=1');
  await page.evaluate(() => window.__fusionlab!.views!()[0].centerOn('all_reduce_2'));
  await page.locator('[data-node="all_reduce_2"]').click();
  await expect(page.locator('[data-node="all_reduce_2"]')).toHaveAttribute('data-selected', 'true');
  await page.keyboard.press('ArrowDown');
  await expect(page.locator('[data-node="slice_1"]')).toHaveAttribute('data-selected', 'true');
  await expect(page.locator('[data-node="all_reduce_2"]')).not.toHaveAttribute('data-selected', 'true');
  await page.keyboard.press('ArrowUp');
  await expect(page.locator('[data-node="all_reduce_2"]')).toHaveAttribute('data-selected', 'true');
  // f fits the whole graph into the view: below the docked toolbar, clear of the minimap, as large
  // as the room there allows (the graph spans it in one direction, less the 16 px margins).
  await page.keyboard.press('f');
  const fit = await page.evaluate(() => {
    const v = window.__fusionlab!.views!()[0];
    const t = v.transform();
    const root = v.root.getBoundingClientRect();
    const bar = v.root.querySelector('[data-testid="view-toolbar"]')!.getBoundingClientRect();
    const map = v.root.querySelector('.fl-minimap')!.getBoundingClientRect();
    const x0 = root.x + t.x,
      y0 = root.y + t.y;
    return {
      graph: { x0, y0, x1: x0 + v.layout.width * t.k, y1: y0 + v.layout.height * t.k },
      room: { x0: root.x, y0: bar.bottom, x1: root.right, y1: root.bottom },
      map: { x0: map.x, y0: map.y, x1: map.right, y1: map.bottom },
    };
  });
  expect(fit.graph.y0).toBeGreaterThanOrEqual(fit.room.y0);
  expect(fit.graph.y1).toBeLessThanOrEqual(fit.room.y1);
  expect(fit.graph.x0).toBeGreaterThanOrEqual(fit.room.x0);
  const clearOfMap = fit.graph.x1 <= fit.map.x0 || fit.graph.y1 <= fit.map.y0;
  expect(clearOfMap, 'the fitted graph is clear of the minimap').toBe(true);
  const spans = Math.max(
    (fit.graph.y1 - fit.graph.y0) / (fit.room.y1 - fit.room.y0 - 32),
    (fit.graph.x1 - fit.graph.x0) / (fit.map.x0 - fit.room.x0 - 48),
  );
  expect(spans).toBeGreaterThan(0.97);
  // Enter focuses the selection at 100 %.
  await page.keyboard.press('Enter');
  await expect.poll(() => page.evaluate(() => window.__fusionlab!.views!()[0].transform().k)).toBe(1);
  // A click on empty canvas clears the selection.
  await page.mouse.click(20, 700);
  await expect(page.locator('[data-selected="true"]')).toHaveCount(0);
});

test('search by name, op and regex highlights and jumps; / focuses it', async ({ page }) => {
  await open(page, 'layers=24&tp=4&test=1');
  const scene = buildScene(gptOss(24));
  await page.getByTestId('graph-view').focus();
  await page.keyboard.press('/');
  await expect(page.getByLabel('Search nodes')).toBeFocused();
  await page.keyboard.type('/^all_reduce_\\d+$/');
  const expected = searchNodes(scene.nodes, '/^all_reduce_\\d+$/').matches;
  expect(expected.length).toBe(48);
  await expect(page.locator('[data-match="true"]')).toHaveCount(expected.length);
  await expect(page.getByTestId('search-count')).toHaveText(String(expected.length));
  await page.keyboard.press('Enter');
  await expect(page.locator(`[data-node="${expected[0]}"]`)).toHaveAttribute('data-selected', 'true');
  await expect(page.getByTestId('search-count')).toHaveText(`1/${expected.length}`);
  await page.getByLabel('Search nodes').fill('/slice(/');
  await expect(page.getByLabel('Search nodes')).toHaveAttribute('aria-invalid', 'true');
});

test('a layer folds into one box and unfolds', async ({ page }) => {
  await open(page, 'layers=4&tp=4&test=1');
  const scene = buildScene(gptOss(4));
  const members = scene.nodes.filter((n) => n.group === 'model.layers.2').length;
  await page.evaluate(() => window.__fusionlab!.views!()[0].fit());
  await page.getByRole('button', { name: 'Collapse layer 2' }).click();
  await expect(page.getByTestId('graph-view')).toHaveAttribute('data-ready', 'true');
  await expect(page.locator('[data-group="model.layers.2"]')).toHaveAttribute('data-collapsed', 'true');
  await expect(page.locator('[data-node]')).toHaveCount(scene.nodes.length - members);
  await page.getByRole('button', { name: 'Expand layer 2' }).click();
  await expect(page.locator('[data-node]')).toHaveCount(scene.nodes.length);
});

test('beyond the SVG limit the view draws on canvas and still selects by click', async ({ page }) => {
  await open(page, 'layers=304&tp=4&test=1');
  const view = page.getByTestId('graph-view');
  await expect(view).toHaveAttribute('data-renderer', 'canvas');
  expect(Number(await view.getAttribute('data-node-count'))).toBeGreaterThan(10_000);
  await page.evaluate(() => window.__fusionlab!.views!()[0].centerOn('slice_200'));
  const c = await page.evaluate(() => window.__fusionlab!.nodeCenter!('slice_200'));
  expect(c).not.toBeNull();
  expect(await page.evaluate(([x, y]) => window.__fusionlab!.nodeAt!(x, y), [c!.x, c!.y])).toBe('slice_200');
  await page.mouse.click(c!.x, c!.y);
  await expect(page.locator('[data-node-item="slice_200"][aria-current="true"]')).toHaveCount(1);
  await page.keyboard.press('ArrowUp');
  await expect(page.locator('[data-node-item="all_reduce_400"][aria-current="true"]')).toHaveCount(1);
});

test('the 10,000-node graph paints its first groups before the whole layout is in', async ({ page }) => {
  // Every change of the view's progress attributes, seen by a MutationObserver installed before
  // the page's scripts run: nothing between two polls can be missed.
  await page.addInitScript(() => {
    const seen: { laidOut: number; total: number; ready: string }[] = [];
    (window as unknown as { __progressSeen: typeof seen }).__progressSeen = seen;
    new MutationObserver((records) => {
      for (const r of records) {
        const el = r.target as HTMLElement;
        if (el.dataset.testid !== 'graph-view') continue;
        seen.push({
          laidOut: Number(el.dataset.groupsLaidOut),
          total: Number(el.dataset.groupsTotal),
          ready: el.dataset.ready ?? '',
        });
      }
    }).observe(document, {
      subtree: true,
      attributes: true,
      attributeFilter: ['data-groups-laid-out', 'data-ready'],
    });
  });
  const blocks = layoutSceneBlocks(buildScene(gptOss(304))).next().value!.blocks;
  await open(page, 'layers=304&tp=4&test=1');
  const view = page.getByTestId('graph-view');
  await expect(view).toHaveAttribute('data-groups-total', String(blocks));
  await expect(view).toHaveAttribute('data-groups-laid-out', String(blocks));
  const seen = await page.evaluate(
    () =>
      (window as unknown as { __progressSeen: { laidOut: number; total: number; ready: string }[] })
        .__progressSeen,
  );
  const firstReady = seen.findIndex((s) => s.ready === 'true');
  expect(firstReady).toBeGreaterThan(0);
  const early = seen.slice(0, firstReady).filter((s) => s.laidOut > 0);
  // Some blocks were on screen, with others still to come, before the view said it was ready.
  expect(early.length).toBeGreaterThan(0);
  expect(early[0].laidOut).toBeLessThan(blocks);
  expect(early[0].total).toBe(blocks);
  for (let i = 1; i < early.length; i++)
    expect(early[i].laidOut).toBeGreaterThanOrEqual(early[i - 1].laidOut);
  expect(seen[firstReady].laidOut).toBe(blocks);
  // The page's own record agrees.
  const log = await page.evaluate(() => window.__fusionlab!.layoutProgress!());
  const logReady = log.findIndex((e) => e.ready);
  expect(
    log
      .slice(0, logReady)
      .some((e) => e.groupsLaidOut > 0 && e.groupsLaidOut < blocks && e.groupsTotal === blocks),
  ).toBe(true);
  expect(log[logReady]).toEqual({ label: 'before', groupsLaidOut: blocks, groupsTotal: blocks, ready: true });
});

test('before and after side by side: marks, synced view, selection through the mapping', async ({ page }) => {
  const errors = await open(page, 'layers=24&tp=4&show=diff&test=1');
  const views = page.getByTestId('graph-view');
  await expect(views).toHaveCount(2);
  await expect(views.nth(1)).toHaveAttribute('data-ready', 'true');
  // Both sides open on the same view.
  await expect
    .poll(() =>
      page.evaluate(() => new Set(window.__fusionlab!.views!().map((v) => v.transform().toString())).size),
    )
    .toBe(1);
  const after = runPipeline(gptOss(24), DEFAULT_PIPELINE).output;
  const before = views.nth(0),
    afterView = views.nth(1);
  await expect(before.locator('[data-node="all_reduce_4"]')).toHaveAttribute('data-mark', 'removed');
  await expect(afterView.locator('[data-node="slice_2"]')).toHaveAttribute('data-mark', 'moved');
  await expect(afterView.locator('[data-mark="fused"]')).toHaveCount(49);
  expect(after.nodes.filter((n) => JSON.stringify(n.args[0]).includes('fused_allreduce_norm')).length).toBe(
    49,
  );
  // Selecting the removed all-reduce selects the fused node that absorbed it.
  await page.evaluate(() => window.__fusionlab!.views!()[0].centerOn('all_reduce_4'));
  await before.locator('[data-node="all_reduce_4"]').click();
  await expect(before.locator('[data-node="all_reduce_4"]')).toHaveAttribute('data-selected', 'true');
  const fused = afterView.locator('[data-selected="true"]');
  await expect(fused).toHaveCount(1);
  await expect(fused).toHaveAttribute('data-mark', 'fused');
  // The same pan/zoom on both sides; an unchanged node sits at the same place in each.
  const t = await page.evaluate(() => window.__fusionlab!.views!().map((v) => v.transform().toString()));
  expect(t[0]).toBe(t[1]);
  const a = await page.evaluate(() => window.__fusionlab!.nodeCenter!('constant_pad_nd_1', 'before'));
  const b = await page.evaluate(() => window.__fusionlab!.nodeCenter!('constant_pad_nd_1', 'after'));
  expect(b!.y).toBeCloseTo(a!.y, 0);
  expect(errors).toEqual([]);
});

test('the rewrite animates: removed nodes fade into the fused node, then the view settles', async ({
  page,
}) => {
  await open(page, 'fixture=pr28841-before&show=animate&delay=300');
  await expect(page.locator('.fl-ghost')).not.toHaveCount(0, { timeout: 5000 });
  await expect(page.locator('.fl-ghost')).toHaveCount(0, { timeout: 5000 });
  await expect(page.getByTestId('graph-view')).toHaveAttribute('data-label', 'after');
  await expect(page.locator('[data-node="slice_1"]')).toHaveAttribute('data-mark', 'moved');
  await expect(page.locator('[data-node="all_reduce_1"]')).toHaveCount(0);
});

test('exports the view as SVG and PNG', async ({ page }) => {
  await open(page, 'fixture=pr28841-before&test=1');
  const [svgDl] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'SVG', exact: true }).click(),
  ]);
  const svg = readFileSync((await svgDl.path())!, 'utf8');
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  expect(svg.match(/data-node="/g)!.length).toBe(
    buildScene(
      parseFx(
        readFileSync(new URL('../fixtures/fx/seed/pr28841-before.fragment.txt', import.meta.url), 'utf8'),
      ).graph,
    ).nodes.length,
  );
  expect(svgDl.suggestedFilename()).toBe('before.svg');
  // Drawn with the page's fonts, no text runs past the exported picture's edges (edge labels sit
  // right of their edge: the export widens itself for them).
  const outside = await page.evaluate((text) => {
    const host = document.createElement('div');
    host.innerHTML = text;
    document.body.appendChild(host);
    const svgEl = host.querySelector('svg')!;
    const [w, h] = [Number(svgEl.getAttribute('width')), Number(svgEl.getAttribute('height'))];
    const bad = [...svgEl.querySelectorAll('text')]
      .map((t) => ({ t: t.textContent, b: t.getBBox() }))
      .filter(({ b }) => b.x < 0 || b.y < 0 || b.x + b.width > w + 0.5 || b.y + b.height > h + 0.5)
      .map(({ t, b }) => `${t} at ${Math.round(b.x)}+${Math.round(b.width)} of ${w}`);
    host.remove();
    return bad;
  }, svg);
  expect(outside).toEqual([]);
  const [pngDl] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'PNG', exact: true }).click(),
  ]);
  const png = readFileSync((await pngDl.path())!);
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect(png.length).toBeGreaterThan(5000);
});

test('the PR fragment, before and after, looks as recorded', async ({ page }) => {
  await open(page, 'fixture=pr28841-before&show=diff&test=1');
  await expect(page.getByTestId('graph-view').nth(1)).toHaveAttribute('data-ready', 'true');
  // Looser than the suite's 2 %: the before pane is aligned to the after pane by rewrite provenance
  // once both layouts are in, and lands up to 5 px apart from run to run (about 2 % of the pixels);
  // boxes, marks, labels, minimaps and toolbars missing or moved still fail it.
  await expect(page.getByTestId('diff-view')).toHaveScreenshot('pr28841-diff.png', {
    maxDiffPixelRatio: 0.04,
  });
});

test('the minimap follows the view and a click on it pans there', async ({ page }) => {
  await open(page, 'layers=24&tp=4&test=1');
  const minimap = page.getByLabel('Minimap');
  const box = (await minimap.boundingBox())!;
  const y0 = await page.evaluate(() => window.__fusionlab!.views!()[0].transform().y);
  await minimap.click({ position: { x: box.width / 2, y: box.height - 4 } });
  // Further down the graph, at the same zoom.
  await expect
    .poll(() => page.evaluate(() => window.__fusionlab!.views!()[0].transform().y))
    .toBeLessThan(y0 - 200);
  const k = await page.evaluate(() => window.__fusionlab!.views!()[0].transform().k);
  await page.keyboard.press('f');
  expect(await page.evaluate(() => window.__fusionlab!.views!()[0].transform().k)).toBeLessThan(k);
});

test("the minimap is an overview of the whole graph: its ends are the graph's ends, at any zoom", async ({
  page,
}) => {
  await open(page, 'layers=24&tp=4&test=1');
  const minimap = page.getByLabel('Minimap');
  const view = (await page.getByTestId('graph-view').boundingBox())!;
  const box = (await minimap.boundingBox())!;
  // Shaped like the tall graph, inside the view.
  expect(box.height).toBeGreaterThan(box.width);
  expect(box.x + box.width).toBeLessThanOrEqual(view.x + view.width);
  // A click near the minimap's bottom shows the graph's last node; near its top, the first.
  const ends = await page.evaluate(() => {
    const v = window.__fusionlab!.views!()[0];
    const nodes = v.layout.nodes.filter((n) => !n.ref);
    const byY = [...nodes].sort((a, b) => a.y - b.y);
    return { first: byY[0].name, last: byY[byY.length - 1].name };
  });
  const onScreen = async (name: string) => {
    const c = await page.evaluate((n) => window.__fusionlab!.nodeCenter!(n), name);
    return !!c && c.y > view.y && c.y < view.y + view.height;
  };
  await page.mouse.click(box.x + box.width / 2, box.y + box.height - 1);
  await expect.poll(() => onScreen(ends.last)).toBe(true);
  // One minimap pixel is ~135 graph pixels here: click on its very edge.
  await page.mouse.click(box.x + box.width / 2, box.y + 1);
  await expect.poll(() => onScreen(ends.first)).toBe(true);
  // m puts it away and brings it back.
  await page.getByTestId('graph-view').focus();
  await page.keyboard.press('m');
  await expect(minimap).toHaveCount(0);
  await page.keyboard.press('m');
  await expect(minimap).toBeVisible();
});

test('panning and zooming the SVG view lays nothing out again', async ({ page }) => {
  // Pan/zoom must stay a compositor-only change: a transform on the <svg> element itself made
  // Blink lay out every SVG text on each frame (0.26× the idle page's frame rate on this box).
  // Counted, not timed: Blink's own layout counter across 30 frames of pan and zoom.
  await open(page, 'layers=24&tp=4&test=1');
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const layouts = async () =>
    (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'LayoutCount')!.value;
  const frames = () =>
    page.evaluate(
      () =>
        new Promise<void>((resolve) => {
          const view = window.__fusionlab!.views!()[0];
          let i = 0;
          const tick = () => {
            view.setView({ x: -13 * i, y: -40 * i, k: 0.5 + 0.01 * i });
            if (++i < 30) requestAnimationFrame(tick);
            else requestAnimationFrame(() => resolve());
          };
          requestAnimationFrame(tick);
        }),
    );
  await frames(); // the first gesture may settle the minimap's size
  const before = await layouts();
  await frames();
  expect((await layouts()) - before).toBeLessThanOrEqual(2);
});

test("a new graph's first frame draws the boxes near the view, the rest follows", async ({ page }) => {
  await open(page, 'layers=24&tp=4&test=1');
  const total = buildScene(gptOss(24)).nodes.length;
  const painted = await page.evaluate(() => window.__bench!.paintedBoxes!);
  // The top of the graph at the first view's zoom: a few screens' worth, not all 999 boxes.
  expect(painted).toBeGreaterThan(20);
  expect(painted).toBeLessThan(total / 3);
  // Ready means whole: every box is there, the last one included.
  await expect(page.locator('[data-node]')).toHaveCount(total);
  const last = await page.evaluate(() => {
    const v = window.__fusionlab!.views!()[0];
    return [...v.layout.nodes].filter((n) => !n.ref).sort((a, b) => b.y - a.y)[0].name;
  });
  await expect(page.locator(`[data-node="${last}"]`)).toHaveCount(1);
});
