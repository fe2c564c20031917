// Screenshot comparisons where the pixels are the point: the before/after view, the state after
// the rewrite, the "why" panel and the timeline. Test mode (?test=1) fixes fonts, turns off
// animation and raises body[data-ready] when the app is idle, so no sleeps are needed.

import { test, expect, type Page } from '@playwright/test';
import { fileURLToPath } from 'node:url';

// Recorded by compareGraphs on the PR fragment (WebGPU backend, Dawn on SwiftShader, 2 ranks, tiny).
const TRACE = fileURLToPath(new URL('./fixtures/trace-pr28841-tp2.json', import.meta.url));

async function open(page: Page, sampleLabel: string) {
  await page.goto('/?test=1');
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  await page.getByLabel('Sample').selectOption({ label: sampleLabel });
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
}

async function settled(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  for (const view of await page.getByTestId('graph-view').all())
    await expect(view).toHaveAttribute('data-ready', 'true');
}

test('before/after view of the GPT-OSS MoE block (the PR fragment, both passes)', async ({ page }) => {
  await open(page, 'PR #28841 · before (fragment)');
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await settled(page);
  await expect(page.getByRole('main', { name: 'Graphs' })).toHaveScreenshot('before-after.png');
});

test('the whole app after the rewrite', async ({ page }) => {
  await open(page, 'GPT-OSS-20B · 1 layer · TP4');
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await settled(page);
  // The view follows the change nearest its centre, clear of the minimap: bring the first fused
  // node into the middle of the pane before clicking it.
  const fused = page.getByTestId('graph-view').last().locator('g[data-kind="fused"]').first();
  const name = (await fused.getAttribute('data-node'))!;
  await page.evaluate((n) => window.__fusionlab!.views!()[1].centerOn(n), name);
  await settled(page);
  await fused.click();
  await settled(page);
  await expect(page).toHaveScreenshot('after-rewrite.png');
});

test('the why panel with a slice and a gate blocking', async ({ page }) => {
  await open(page, 'GPT-OSS-20B · 1 layer · TP4');
  await page.getByLabel('World size').selectOption('3');
  await settled(page);
  await expect(page.getByRole('region', { name: "Why didn't it fire?" })).toHaveScreenshot('why-panel.png');
});

test('the per-rank timeline of a recorded run', async ({ page }) => {
  await open(page, 'PR #28841 · before (fragment)');
  await page.getByRole('tab', { name: 'Timeline' }).click();
  await page.getByLabel('Trace file').setInputFiles(TRACE);
  await expect(page.getByTestId('timeline')).toBeVisible();
  await settled(page);
  await expect(page.locator('.timeline-panel')).toHaveScreenshot('timeline.png');
});

test('the dark theme, after the rewrite, with a run configured', async ({ page }) => {
  await open(page, 'GPT-OSS-20B · 1 layer · TP4');
  await page.getByRole('button', { name: 'Dark', exact: true }).click();
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await page.getByRole('tab', { name: 'Run' }).click();
  await settled(page);
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await expect(page).toHaveScreenshot('dark-after-rewrite.png');
});
