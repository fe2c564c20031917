// Node-data overlays: "Colour by" measured time, bytes or |Δ| before vs after, from the app's own
// run, with a legend that says what, in which unit, and from where; no data is its own style;
// another graph leaves no old colours behind.

import { test, expect, type Locator, type Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { parseFx } from '../src/graph/fx/parse.ts';
import { generateSample } from '../src/graph/samples/index.ts';
import { launchesKernel, nodeCost, typeLookup } from '../src/graph/cost/model.ts';
import { idle, runFragmentOnCpu } from './appPage.ts';

const pane = (page: Page, label: 'before' | 'after') =>
  page.locator(`[data-testid="graph-view"][data-label="${label}"]`);
const boxFill = (node: Locator) => node.locator('rect.fl-box').evaluate((el) => getComputedStyle(el).fill);
/** The computed background of an element, as the browser writes colours (`rgb(r, g, b)`). */
const background = (el: Locator) => el.evaluate((e) => getComputedStyle(e).backgroundColor);

test('colour by measured time, then |Δ|: legend, slowest node, no data, and a reset on another graph', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  const colourBy = page.getByLabel('Colour by');
  // No run yet: the measured choices are refused, and say why.
  await expect(colourBy.locator('option[value="time"]')).toBeDisabled();
  await expect(colourBy.locator('option[value="time"]')).toHaveAttribute(
    'title',
    /run the comparison first/i,
  );
  await expect(colourBy.locator('option[value="delta"]')).toBeDisabled();

  await runFragmentOnCpu(page);
  await colourBy.selectOption('time');
  await idle(page);
  const legend = pane(page, 'after').getByTestId('overlay-legend');
  await expect(legend.getByTestId('legend-metric')).toHaveText('measured time');
  await expect(legend.getByTestId('legend-unit')).toHaveText('(per node and run)');
  await expect(legend.getByTestId('legend-source')).toHaveText(
    'median of 3 timed runs after a warm-up · max over ranks · cpu',
  );
  // Both panes share one scale: one legend text for both.
  await expect(pane(page, 'before').getByTestId('legend-source')).toHaveText(
    (await legend.getByTestId('legend-source').textContent())!,
  );

  // The Results table's slowest row (first: sorted slowest first) is the legend's top colour.
  await page.getByRole('tab', { name: 'Results' }).click();
  const top = page.getByRole('table', { name: 'Per-node time and bytes' }).locator('tbody tr').first();
  const name = (await top.locator('td').nth(0).textContent())!;
  const num = async (i: number) => parseFloat((await top.locator('td').nth(i).textContent()) ?? '') || 0;
  const side = (await num(4)) >= (await num(3)) ? 'after' : 'before';
  const max = await pane(page, side).getByTestId('legend-max').getAttribute('data-color');
  const slowest = pane(page, side).locator(`[data-node="${name}"]`);
  await expect(slowest).toHaveAttribute('data-overlay', 'value');
  expect(await boxFill(slowest)).toBe(max);
  // The Inspector shows the node's value (the row selects it; any pane may have it off screen).
  await top.click();
  await expect(page.getByTestId('inspector-name')).toHaveText(name);
  await expect(page.getByTestId('inspector-overlay')).toHaveText(/^\d+(\.\d+)? (µs|ms|s)$/);

  // A node with no timed kernel (a view, a tuple item, an input) has the no-data style, not colour 0.
  const noData = pane(page, 'after').locator('[data-overlay="none"]').first();
  await expect(noData).toBeVisible();
  const noneSwatch = await background(legend.locator('.fl-legend-none'));
  expect(await boxFill(noData)).toBe(noneSwatch);
  expect(noneSwatch).not.toBe(await legend.getByTestId('legend-min').getAttribute('data-color'));

  const r = await new AxeBuilder({ page }).analyze();
  expect(
    r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${v.nodes.map((n) => `${n.target.join(' ')} ${n.failureSummary}`).join(' | ')}`),
  ).toEqual([]);

  // |Δ|: recomputed on the CPU reference; upstream of the rewrite 0, the moved slice differs
  // (it now holds one rank's part, not the sum), the fused node has no counterpart value.
  await colourBy.selectOption('delta');
  await idle(page);
  const after = pane(page, 'after');
  await expect(after.getByTestId('legend-metric')).toHaveText('|Δ| before vs after');
  await expect(after.getByTestId('legend-source')).toContainText('CPU reference · max over ranks');
  const min = await after.getByTestId('legend-min').getAttribute('data-color');
  const deltaMax = await after.getByTestId('legend-max').getAttribute('data-color');
  await expect(after.getByTestId('legend-min')).toHaveText('0');
  const upstream = after.locator('[data-node="getitem_3"]');
  expect(await boxFill(upstream)).toBe(min);
  await upstream.click();
  await expect(page.getByTestId('inspector-overlay')).toHaveText('0');
  const moved = after.locator('[data-node="slice_1"]');
  await expect(moved).toHaveAttribute('data-mark', 'moved');
  expect(await boxFill(moved)).toBe(deltaMax);
  await moved.click();
  await expect(page.getByTestId('inspector-overlay')).not.toHaveText('0');
  const fused = after.locator('[data-mark="fused"]').first();
  await expect(fused).toHaveAttribute('data-overlay', 'none');
  // The before pane shows the same values through the rewrite's pairs.
  expect(await boxFill(pane(page, 'before').locator('[data-node="getitem_3"]'))).toBe(min);

  // Another graph: the run is gone, so are the colours; the choice falls back to kind, refused.
  await page.getByLabel('Sample').selectOption({ label: 'Qwen2-1.5B · 1 layer · TP2 (real dump)' });
  await idle(page);
  await expect(colourBy).toHaveValue('kind');
  await expect(colourBy.locator('option[value="delta"]')).toBeDisabled();
  await expect(page.getByTestId('overlay-legend')).toHaveCount(0);
  await expect(page.locator('[data-overlay]')).toHaveCount(0);
});

test('bytes need no run: the cost model at the app token count, said so in the legend', async ({ page }) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Colour by').selectOption('bytes');
  await idle(page);
  const legend = page.getByTestId('overlay-legend').first();
  await expect(legend.getByTestId('legend-metric')).toHaveText('bytes');
  await expect(legend.getByTestId('legend-source')).toHaveText(
    'cost model at 1024 tokens (no current run of this stage)',
  );
  // Kernels have values; the largest is the legend's top colour.
  const valued = page.locator('[data-overlay="value"]');
  expect(await valued.count()).toBeGreaterThan(1);
  const max = await legend.getByTestId('legend-max').getAttribute('data-color');
  const fills = await valued
    .locator('rect.fl-box')
    .evaluateAll((els) => els.map((e) => getComputedStyle(e).fill));
  expect(fills).toContain(max);
});

test('on the canvas renderer (300 layers unfolded) a box is filled with its value, no data in grey', async ({
  page,
}) => {
  // The node with the most bytes by the cost model at the app's 1024 tokens, worked out here.
  const g = parseFx(generateSample('gpt-oss-20b', { layers: 300, tp: 4 })).graph;
  const typeOf = typeLookup(g);
  let most = { name: '', bytes: -1 };
  for (const n of g.nodes) {
    if (!launchesKernel(n)) continue;
    const c = nodeCost(g, n, { tokens: 1024 }, typeOf);
    if (c.bytesRead + c.bytesWritten > most.bytes)
      most = { name: n.name, bytes: c.bytesRead + c.bytesWritten };
  }
  const view = g.nodes.find((n) => n.op === 'aten.slice.Tensor')!.name;

  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Sample').selectOption({ label: 'GPT-OSS-20B · 300 layers · TP4 (12,315 nodes)' });
  await idle(page);
  await page.getByTestId('fold-all').click();
  await idle(page);
  await expect(page.getByTestId('graph-view')).toHaveAttribute('data-renderer', 'canvas');
  await page.getByLabel('Colour by').selectOption('bytes');
  await idle(page);
  const legend = page.getByTestId('overlay-legend');
  await expect(legend.getByTestId('legend-source')).toHaveText(/^cost model at 1024 tokens/);

  /** The canvas pixel just inside a box's top-left corner (clear of its stroke, accent and text). */
  const pixelIn = (name: string) =>
    page.evaluate(async (name) => {
      const h = window.__fusionlab!.views!()[0];
      h.centerOn(name);
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const n = h.layout.nodes.find((m) => m.name === name)!;
      const t = h.transform();
      const c = h.root.querySelector<HTMLCanvasElement>('canvas.fl-surface')!;
      const dpr = c.width / c.clientWidth;
      const x = Math.round((t.x + (n.x + 6) * t.k) * dpr),
        y = Math.round((t.y + (n.y + 4) * t.k) * dpr);
      const [r, g, b] = c.getContext('2d')!.getImageData(x, y, 1, 1).data;
      return `rgb(${r}, ${g}, ${b})`;
    }, name);
  expect(await pixelIn(most.name)).toBe(await legend.getByTestId('legend-max').getAttribute('data-color'));
  expect(await pixelIn(view)).toBe(await background(legend.locator('.fl-legend-none')));
});
