// Small things that misled: a sample's stated size, the graph's aria-label against the status
// bar, a fix offered once rather than per entry, a folded layer that names its changes, and the
// hoist's explanation not asking to load what is loaded.

import { test, expect } from '@playwright/test';
import { idle, openRewritten } from './appPage.ts';

test('the 300-layer sample states its real size; the aria-label counts what the status bar counts', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  await expect(page.getByLabel('Sample').locator('option', { hasText: '300 layers' })).toHaveText(
    'GPT-OSS-20B · 300 layers · TP4 (12,315 nodes)',
  );
  const status = (await page.getByTestId('status-nodes').textContent())!;
  const n = /^(\d+) nodes$/.exec(status)![1];
  await expect(page.getByTestId('graph-view')).toHaveAttribute(
    'aria-label',
    new RegExp(`graph: ${n} nodes\\.`),
  );
});

test('a folded layer says how many changes it holds, and the hoist is explained on the loaded graph', async ({
  page,
}) => {
  await openRewritten(page);
  const after = page.getByTestId('graph-view').last();
  await after.getByTestId('fold-all').click();
  await idle(page);
  await expect(after.locator('g[data-group][data-collapsed="true"]').first()).toContainText(
    /\d+ changes? inside/,
  );
  await page.getByRole('tab', { name: 'Why it is legal' }).click();
  const legal = page.getByRole('region', { name: 'Why the hoist is legal' });
  await expect(legal).toContainText('slice-hoist has moved the slice above the all-reduce');
  await expect(legal).not.toContainText('Load a GPT-OSS sample');
});

test('a pass that fixes every blocked entry is offered once, with its count', async ({ page }) => {
  test.setTimeout(180_000);
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Sample').selectOption('gpt-oss-20b-l24-tp4');
  await idle(page, 120_000);
  const why = page.getByRole('region', { name: "Why didn't it fire?" });
  const everywhere = why.getByRole('button', { name: /at every site/ });
  await expect(everywhere).toHaveCount(1);
  await expect(everywhere).toHaveText('run slice-hoist everywhere (24)');
  await expect(why.getByRole('button', { name: /^run slice-hoist at all_reduce/ })).toHaveCount(24);
});
