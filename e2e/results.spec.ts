// Results belong to the graph, steps and gates they ran: another graph clears them, other steps
// or gates mark them stale. Times are medians of timed runs after a warm-up, per rank.

import { test, expect } from '@playwright/test';
import { idle, runFragmentOnCpu } from './appPage.ts';

test('another graph clears the run; other steps mark it stale; times are medians per rank', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  await runFragmentOnCpu(page);

  await page.getByRole('tab', { name: 'Results' }).click();
  await expect(page.getByTestId('timing-method')).toContainText(
    'median of 3 timed runs after a warm-up run (not timed)',
  );
  const ranks = await page
    .getByRole('table', { name: 'Per-node time and bytes' })
    .locator('tbody tr td:nth-child(3)')
    .allTextContents();
  expect(new Set(ranks)).toEqual(new Set(['0', '1']));
  await page.getByRole('tab', { name: 'Cost model' }).click();
  // The measured rows sit in their own table, named by the run (panels/runCaption.ts).
  await expect(page.getByTestId('cost-measured')).toContainText('median of 3 timed runs after a warm-up');

  // Undo: the run stays, marked stale, on every tab that shows it.
  await page.getByRole('button', { name: 'Undo' }).click();
  await idle(page);
  await expect(page.getByTestId('cost-measured')).toContainText('stale: measured');
  await page.getByRole('tab', { name: 'Results' }).click();
  await expect(page.getByTestId('run-verdict')).toHaveAttribute('data-stale', 'true');
  await page.getByRole('button', { name: 'Redo' }).click();
  await expect(page.getByTestId('run-verdict')).toHaveAttribute('data-stale', 'false');

  // Another graph: nothing of the old run is left.
  await page.getByLabel('Sample').selectOption({ label: 'Qwen2-1.5B · 1 layer · TP2 (real dump)' });
  await idle(page);
  await expect(page.getByText('No run yet. Run before & after in the Run tab.')).toBeVisible();
  await page.getByRole('tab', { name: 'Run' }).click();
  await expect(page.getByTestId('run-verdict')).toHaveCount(0);
  await page.getByRole('tab', { name: 'Cost model' }).click();
  await expect(page.getByTestId('cost-table')).not.toContainText('measured');
  await expect(page.getByTestId('cost-measured')).toHaveCount(0);
});

test('a long CPU run leaves the page responsive, shows its progress, and Cancel stops it', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Sample').selectOption({ label: 'Llama-3.1-8B-style · 32 layers · TP4' });
  await idle(page);
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await idle(page);
  await page.getByRole('tab', { name: 'Run' }).click();
  await page.getByLabel('Backend').selectOption('cpu');
  await page.getByRole('button', { name: 'Run before & after' }).click();
  await expect(page.getByRole('status', { name: 'Run progress' })).toBeVisible();
  // While it computes, frames keep coming: the longest gap in a second of animation frames.
  const gap = await page.evaluate(
    () =>
      new Promise<number>((resolve) => {
        let last = performance.now(),
          worst = 0;
        const end = last + 1000;
        const tick = (t: number) => {
          worst = Math.max(worst, t - last);
          last = t;
          if (t < end) requestAnimationFrame(tick);
          else resolve(worst);
        };
        requestAnimationFrame(tick);
      }),
  );
  expect(gap).toBeLessThan(200);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByRole('button', { name: 'Run before & after' })).toBeEnabled();
  await expect(page.locator('footer.statusbar')).toContainText('Run cancelled');
  await expect(page.getByTestId('run-verdict')).toHaveCount(0);
});
