// A shared link carries every control that changes a number on screen: the cost model's hardware
// (B200 −4.42 % reopens as B200 −4.42 %, not H100), its TP and tokens, and the colour overlay.

import { test, expect } from '@playwright/test';
import { idle, openRewritten } from './appPage.ts';

test("a link reopens the cost model's hardware, TP and tokens and the colour overlay as they were", async ({
  page,
}) => {
  await openRewritten(page);
  await page.getByRole('tab', { name: 'Cost model' }).click();
  await page.getByLabel('Hardware', { exact: true }).selectOption('B200-NVLink');
  await page.getByLabel('Tokens', { exact: true }).fill('4096');
  await page.getByLabel('TP degree').selectOption('2');
  await page.getByLabel('Colour by').selectOption('bytes');
  await idle(page);
  const table = page.getByTestId('cost-table');
  await expect(table).toContainText('predicted on B200-NVLink, TP2, 4096 tokens');
  const before = await table.innerText();

  await page.goto(page.url());
  await idle(page);
  await expect(page.getByRole('tab', { name: 'Cost model' })).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByLabel('Hardware', { exact: true })).toHaveValue('B200-NVLink');
  await expect(page.getByLabel('Tokens', { exact: true })).toHaveValue('4096');
  await expect(page.getByLabel('TP degree')).toHaveValue('2');
  await expect(page.getByLabel('Colour by')).toHaveValue('bytes');
  await expect(page.getByTestId('overlay-legend').first()).toHaveAttribute('data-metric', 'bytes');
  expect(await table.innerText()).toBe(before);
});
