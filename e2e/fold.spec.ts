// Folding layers works in every view (before | after, current; SVG and canvas), by mouse and by
// keyboard, with fold all / unfold all; a graph past 2,000 boxes opens folded.

import { test, expect } from '@playwright/test';
import { idle } from './appPage.ts';

test('fold a layer by keyboard in the current view, then fold all and unfold all in before | after', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Sample').selectOption({ label: 'GPT-OSS-20B · 24 layers · TP4' });
  await idle(page);
  const view = page.getByTestId('graph-view');
  const toggle = view.getByRole('button', { name: 'Collapse layer 0' });
  await toggle.focus();
  await page.keyboard.press('Enter');
  await idle(page);
  await expect(view.locator('g[data-group][data-collapsed="true"]')).toHaveCount(1);
  await expect(view.getByRole('button', { name: 'Expand layer 0' })).toBeVisible();

  await page.getByRole('button', { name: 'Apply slice-hoist' }).click();
  await idle(page);
  const views = page.getByTestId('graph-view');
  await expect(views).toHaveCount(2);
  // The fold carries over to both sides.
  for (const v of await views.all())
    await expect(v.locator('g[data-group][data-collapsed="true"]')).toHaveCount(1);
  await views.first().getByTestId('fold-all').click();
  await idle(page);
  const groups = await views.first().locator('g[data-group]').count();
  expect(groups).toBeGreaterThan(20);
  for (const v of await views.all())
    await expect(v.locator('g[data-group][data-collapsed="false"]')).toHaveCount(0);
  await expect(views.first().getByTestId('fold-all')).toHaveText('Unfold all');
  // A folded layer is a one-line box, not its open size left empty, and says what changed in it:
  // the hoist moved a slice in every layer of the after side.
  const boxes = await page.evaluate(() =>
    window.__fusionlab!.views!().map((v) => ({
      label: v.root.dataset.label,
      heights: v.layout.groups.filter((g) => g.collapsed).map((g) => g.h),
    })),
  );
  for (const b of boxes) {
    expect(b.heights.length, b.label).toBeGreaterThan(20);
    expect(Math.max(...b.heights), b.label).toBeLessThan(80);
  }
  await expect(views.last().locator('g[data-group="model.layers.0"]')).toContainText(/\d+ changes? inside/);
  // ] unfolds every layer from the keyboard.
  await views.last().focus();
  await page.keyboard.press(']');
  await idle(page);
  for (const v of await views.all())
    await expect(v.locator('g[data-group][data-collapsed="true"]')).toHaveCount(0);
});

test('the 300-layer sample opens folded; unfolding it draws on a canvas, and [ folds it again', async ({
  page,
}) => {
  test.setTimeout(300_000);
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Sample').selectOption({ label: 'GPT-OSS-20B · 300 layers · TP4 (12,315 nodes)' });
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true', { timeout: 240_000 });
  const view = page.getByTestId('graph-view');
  await expect(view).toHaveAttribute('data-renderer', 'svg');
  await expect(view.locator('g[data-group][data-collapsed="true"]')).toHaveCount(300);
  await view.focus();
  await page.keyboard.press(']');
  await expect(view).toHaveAttribute('data-renderer', 'canvas', { timeout: 240_000 });
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true', { timeout: 240_000 });
  await view.focus();
  await page.keyboard.press('[');
  await expect(view).toHaveAttribute('data-renderer', 'svg', { timeout: 240_000 });
});
