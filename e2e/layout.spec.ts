// The layout holds at 1024×700 and 1440×900: every graph pane's toolbar is docked (never over a
// node) with its whole search box and its SVG/PNG buttons; Fit, a selection and the colour legend
// leave no node under the toolbar, the minimap or the legend; the minimap's frame after Fit holds
// the whole graph; nothing in the Run form, Compare fixes or the inspector is clipped or
// overprinted. Checked by geometry (bounding boxes) and by a screenshot at each size.

import { test, expect, type Page } from '@playwright/test';
import { idle } from './appPage.ts';

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Per graph pane: its box, its chrome's boxes and the boxes of the nodes drawn in it (client pixels). */
async function paneGeometry(page: Page) {
  return page.evaluate(() => {
    const box = (el: Element | null) => {
      if (!el) return null;
      const r = el.getBoundingClientRect();
      return r.width === 0 && r.height === 0 ? null : { x: r.x, y: r.y, w: r.width, h: r.height };
    };
    return [...document.querySelectorAll('[data-testid="graph-view"]')].map((view) => ({
      label: view.getAttribute('data-label') ?? '',
      view: box(view)!,
      toolbar: box(view.querySelector('[data-testid="view-toolbar"]')),
      minimap: box(view.querySelector('.fl-minimap')),
      legend: box(view.querySelector('.fl-legend')),
      selected: box(view.querySelector('.fl-node[data-selected="true"] rect.fl-box')),
      nodes: [...view.querySelectorAll('.fl-nodes .fl-node rect.fl-box')].map((r) => ({
        name: r.closest('.fl-node')?.getAttribute('data-node') ?? '?',
        box: box(r)!,
      })),
    }));
  });
}

const overlaps = (a: Box, b: Box) =>
  a.x < b.x + b.w - 0.5 && b.x < a.x + a.w - 0.5 && a.y < b.y + b.h - 0.5 && b.y < a.y + a.h - 0.5;
const inside = (a: Box, b: Box) =>
  a.x >= b.x - 0.5 && a.y >= b.y - 0.5 && a.x + a.w <= b.x + b.w + 0.5 && a.y + a.h <= b.y + b.h + 0.5;

/** No node in view lies under pane i's toolbar, minimap or legend. */
async function expectNoNodeCovered(page: Page, i: number, when: string) {
  for (const pane of (await paneGeometry(page)).slice(i, i + 1)) {
    const chrome = (['toolbar', 'minimap', 'legend'] as const).flatMap((k) =>
      pane[k] ? [[k, pane[k]!]] : [],
    );
    for (const n of pane.nodes) {
      if (!overlaps(n.box, pane.view)) continue;
      for (const [part, b] of chrome)
        expect(overlaps(n.box, b as Box), `${when}: ${pane.label} ${n.name} under the ${part}`).toBe(false);
    }
  }
}

/** The pane's chrome is whole: toolbar and its buttons inside the pane, search placeholder not cut. */
async function expectChromeWhole(page: Page) {
  for (const view of await page.getByTestId('graph-view').all()) {
    const vb = (await view.boundingBox())!;
    for (const name of ['Fit', 'Map', 'SVG', 'PNG']) {
      const b = (await view.getByRole('button', { name, exact: true }).boundingBox())!;
      expect(b, `${name} shown`).not.toBeNull();
      expect(
        inside({ x: b.x, y: b.y, w: b.width, h: b.height }, { x: vb.x, y: vb.y, w: vb.width, h: vb.height }),
        `${name} inside its pane`,
      ).toBe(true);
    }
    const search = view.getByRole('searchbox', { name: 'Search nodes' });
    const fits = await search.evaluate((el: HTMLInputElement) => {
      const cs = getComputedStyle(el);
      const ctx = document.createElement('canvas').getContext('2d')!;
      ctx.font = `${cs.fontSize} ${cs.fontFamily}`;
      const room = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
      return ctx.measureText(el.placeholder).width <= room;
    });
    expect(fits, 'the search box shows its whole placeholder').toBe(true);
  }
}

/** After Fit, pane i's view (the minimap's frame) holds every laid-out node of its graph. */
async function expectFitHoldsGraph(page: Page, i: number) {
  const label = await page.getByTestId('graph-view').nth(i).getAttribute('data-label');
  const outside = await page.evaluate(
    (l) =>
      window.__fusionlab!.views!()
        .filter((v) => v.root.getAttribute('data-label') === l)
        .map((v) => {
          const t = v.transform();
          const w = v.root.clientWidth,
            h = v.root.clientHeight;
          const x0 = -t.x / t.k,
            y0 = -t.y / t.k,
            x1 = (w - t.x) / t.k,
            y1 = (h - t.y) / t.k;
          return v.layout.nodes
            .filter((n) => n.x < x0 || n.y < y0 || n.x + n.w > x1 || n.y + n.h > y1)
            .map((n) => n.name);
        }),
    label,
  );
  for (const names of outside) expect(names, 'nodes outside the view after Fit').toEqual([]);
}

for (const [width, height] of [
  [1024, 700],
  [1440, 900],
] as const) {
  test(`at ${width}×${height} the panes' chrome is docked and whole, and covers no node it places`, async ({
    page,
  }) => {
    test.setTimeout(180_000);
    await page.setViewportSize({ width, height });
    await page.goto('/?test=1');
    await idle(page);
    // A new graph's first view starts below the toolbar.
    for (const pane of await paneGeometry(page))
      for (const n of pane.nodes)
        expect(overlaps(n.box, pane.toolbar!), `${pane.label} ${n.name} under the toolbar`).toBe(false);
    await page.getByRole('button', { name: 'Run pipeline' }).click();
    await idle(page);
    await expect(page.getByTestId('graph-view')).toHaveCount(2);
    await expectChromeWhole(page);
    // Docked: the toolbar is a bar across the pane's top edge, which a pan moves nodes under, never
    // a box floating over them.
    for (const pane of await paneGeometry(page)) {
      expect(Math.abs(pane.toolbar!.y - pane.view.y)).toBeLessThan(1);
      expect(Math.abs(pane.toolbar!.w - pane.view.w)).toBeLessThan(1);
    }

    // The panes are synced: Fit in one moves the other, so each is checked right after its own Fit.
    const fitEach = async (when: string) => {
      for (let i = 0; i < 2; i++) {
        await page.getByTestId('graph-view').nth(i).getByRole('button', { name: 'Fit', exact: true }).click();
        await idle(page);
        await expectNoNodeCovered(page, i, when);
        await expectFitHoldsGraph(page, i);
      }
    };
    await fitEach('after Fit');

    // The colour legend takes its own band too.
    await page.getByLabel('Colour by').selectOption('bytes');
    await idle(page);
    expect((await paneGeometry(page)).every((p) => p.legend !== null)).toBe(true);
    await fitEach('after Fit with the legend');
    await expect(page).toHaveScreenshot(`panes-${width}.png`, { fullPage: false });

    // A selected node is centred clear of the chrome; its inspector keys never run into their values.
    // Found with the search box, as a user would: Enter selects the match and centres on it.
    const search = page.getByTestId('graph-view').last().getByRole('searchbox', { name: 'Search nodes' });
    await search.fill('fused_allreduce');
    await search.press('Enter');
    await idle(page);
    await expect(page.getByTestId('inspector-op')).toHaveText(
      'vllm.flashinfer_trtllm_fused_allreduce_norm.default',
    );
    for (const pane of await paneGeometry(page)) {
      if (!pane.selected) continue;
      for (const part of ['toolbar', 'minimap', 'legend'] as const)
        if (pane[part])
          expect(overlaps(pane.selected, pane[part]!), `the selected node under the ${part}`).toBe(false);
    }
    const rows = page.getByTestId('inspector-args').locator('tr');
    expect(await rows.count()).toBeGreaterThan(3);
    for (const row of await rows.all()) {
      const [key, value] = await Promise.all([
        row.locator('th').boundingBox(),
        row.locator('td').boundingBox(),
      ]);
      const overflow = await row.locator('th').evaluate((el) => el.scrollWidth > el.clientWidth);
      expect(overflow, `${await row.locator('th').textContent()} fits its column`).toBe(false);
      expect(key!.x + key!.width).toBeLessThanOrEqual(value!.x + 0.5);
    }

    // The Run form's last setting is in view without scrolling; "Compare" is whole.
    await page.getByRole('tab', { name: 'Run' }).click();
    const panel = (await page.locator('#bottom-panel').boundingBox())!;
    const timed = (await page.getByLabel('Timed runs').boundingBox())!;
    expect(timed.y + timed.height, 'Timed runs in view').toBeLessThanOrEqual(panel.y + panel.height);
    await page.getByRole('tab', { name: 'Compare fixes' }).click();
    const compare = page.getByRole('button', { name: 'Compare', exact: true });
    expect(await compare.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);
    const cb = (await compare.boundingBox())!;
    expect(cb.x + cb.width).toBeLessThanOrEqual(width);
  });
}
