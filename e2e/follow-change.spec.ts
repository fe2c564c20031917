// After a rewrite, an undo or a scrub the views stay on the rewritten site instead of jumping to
// the top of the graph; before and after line the site up by provenance.

import { test, expect, type Page } from '@playwright/test';
import { idle } from './appPage.ts';

/** Where a node is drawn in a view, and whether that is inside the view's box. */
async function placed(page: Page, name: string, label: string) {
  return page.evaluate(
    ([n, l]) => {
      const c = window.__fusionlab!.nodeCenter!(n, l);
      const view = [...document.querySelectorAll<HTMLElement>('[data-testid="graph-view"]')].find(
        (v) => v.dataset.label === l,
      );
      const r = view?.getBoundingClientRect();
      // The room the view places nodes in starts below its docked toolbar.
      const bar = view?.querySelector('[data-testid="view-toolbar"]')?.getBoundingClientRect();
      const top = bar ? bar.bottom : r?.top;
      return c && r && top !== undefined
        ? {
            x: c.x,
            y: c.y,
            inside: c.x > r.left && c.x < r.right && c.y > top && c.y < r.bottom,
            top,
            height: r.bottom - top,
          }
        : null;
    },
    [name, label] as const,
  );
}

test('hoisting one slice deep in 24 layers keeps both views on that site, aligned; undo and scrub stay there', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Sample').selectOption({ label: 'GPT-OSS-20B · 24 layers · TP4' });
  await idle(page);
  const why = page.getByRole('list', { name: 'Blocked fusions' });
  const item = why.getByRole('listitem').nth(11);
  const site = (await item.getByRole('button', { name: /^Select all_reduce/ }).textContent())!.trim();
  await item.getByRole('button', { name: `Select ${site}` }).click();
  await idle(page);
  expect((await placed(page, site, 'imported'))?.inside).toBe(true);

  const slice = (await item
    .getByRole('button', { name: /^Select blocker / })
    .getAttribute('aria-label'))!.replace('Select blocker ', '');
  await item.getByRole('button', { name: `run slice-hoist at ${site}` }).click();
  await idle(page);
  const after = await placed(page, site, 'after');
  const before = await placed(page, site, 'before');
  expect(after?.inside).toBe(true);
  expect(before?.inside).toBe(true);
  // The hoisted slice is centred, level with the slice it was before the hoist (aligned by the
  // rewrite's provenance, not by coordinates).
  const slicedAfter = await placed(page, slice, 'after');
  const slicedBefore = await placed(page, slice, 'before');
  expect(Math.abs(slicedAfter!.y - (slicedAfter!.top + slicedAfter!.height / 2))).toBeLessThan(30);
  expect(Math.abs(slicedAfter!.y - slicedBefore!.y)).toBeLessThan(2);

  // Undo: one view again, on the restored site, not the embedding at the top.
  await page.getByRole('button', { name: 'Undo' }).click();
  await idle(page);
  expect((await placed(page, site, 'imported'))?.inside).toBe(true);

  await page.getByRole('button', { name: 'Redo' }).click();
  await idle(page);
  await page.getByLabel('Rewrite stage').fill('0');
  await idle(page);
  expect((await placed(page, site, 'imported'))?.inside).toBe(true);
});

test('next change ▸ walks the rewritten sites of the pipeline, centring each', async ({ page }) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Sample').selectOption({ label: 'GPT-OSS-20B · 24 layers · TP4' });
  await idle(page);
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await idle(page);
  const next = page.getByRole('button', { name: 'next change ▸' });
  await next.click();
  await idle(page);
  await expect(page.getByTestId('change-position')).toHaveText(/^1 \/ \d+$/);
  const first = await page.getByTestId('inspector-name').textContent();
  expect((await placed(page, first!, 'after'))?.inside).toBe(true);
  await next.click();
  await next.click();
  await idle(page);
  await expect(page.getByTestId('change-position')).toHaveText(/^3 \/ \d+$/);
  const third = await page.getByTestId('inspector-name').textContent();
  expect(third).not.toBe(first);
  expect((await placed(page, third!, 'after'))?.inside).toBe(true);
  await page.getByRole('button', { name: '◂ previous change' }).click();
  await expect(page.getByTestId('change-position')).toHaveText(/^2 \/ \d+$/);
});
