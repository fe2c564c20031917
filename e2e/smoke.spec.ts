import { test, expect } from '@playwright/test';

test('the app serves a page with WebGPU available', async ({ page }) => {
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto('/');
  await expect(page.getByText('fusionlab').first()).toBeVisible();
  const hasAdapter = await page.evaluate(async () => !!(await navigator.gpu?.requestAdapter()));
  expect(hasAdapter).toBe(true);
  const isolated = await page.evaluate(() => crossOriginIsolated);
  expect(isolated).toBe(true);
  expect(errors).toEqual([]);
});
