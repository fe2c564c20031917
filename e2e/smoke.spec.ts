import { test, expect } from '@playwright/test';

test('the app serves a page with WebGPU available', async ({ page }) => {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  const response = await page.goto('/');
  // Served under a Content-Security-Policy without 'unsafe-eval': a Function() or eval anywhere would be refused (a console error).
  const csp = response?.headers()['content-security-policy'] ?? '';
  expect(csp).toContain("script-src 'self'");
  expect(csp).not.toContain('unsafe-eval');
  await expect(page.getByText('fusionlab').first()).toBeVisible();
  const hasAdapter = await page.evaluate(async () => !!(await navigator.gpu?.requestAdapter()));
  expect(hasAdapter).toBe(true);
  const isolated = await page.evaluate(() => crossOriginIsolated);
  expect(isolated).toBe(true);
  expect(errors).toEqual([]);
});
