// A 50 MB paste must not freeze the tab: the paste box hands what it cannot lay out to the
// importer (in the pipeline worker), as a dropped file goes, and the limit error comes at once.
// The longest main-thread task is measured with PerformanceObserver('longtask').

import { test, expect } from '@playwright/test';
import { idle } from './appPage.ts';

test('pasting 50 MB into the paste box answers with the limit error without a long task', async ({
  page,
  context,
}) => {
  test.setTimeout(180_000);
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.goto('/?test=1');
  await idle(page);
  await page.evaluate(async () => {
    const line =
      '    add_7: "bf16[s72, 2880]" = torch.ops.aten.add.Tensor(mul_3, getitem_12);  mul_3 = None\n';
    await navigator.clipboard.writeText(line.repeat(Math.ceil((50 * 2 ** 20) / line.length)));
  });
  await page.getByRole('button', { name: 'Paste FX…' }).click();
  const editor = page.getByRole('textbox', { name: 'FX source' });
  await expect(editor).toBeFocused();
  await page.evaluate(() => {
    const w = window as unknown as { longest: number };
    w.longest = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.longest = Math.max(w.longest, e.duration);
    }).observe({ type: 'longtask' });
  });
  const started = Date.now();
  await page.keyboard.press('Control+V');
  await expect(page.getByTestId('work-progress')).toContainText('reading the pasted text');
  await expect(page.getByTestId('import-error')).toContainText('over the limit of 16.0 MB', {
    timeout: 60_000,
  });
  const answeredMs = Date.now() - started;
  await idle(page);
  const longest = await page.evaluate(() => (window as unknown as { longest: number }).longest);
  // The paste event's own data (getData) blocked this machine's page for 11.6–15 s on 50 MB; read as
  // a blob through the async Clipboard API the longest task here is 0.4–1.2 s (Chromium decoding
  // the clipboard's reply), and an over-limit blob is refused by its size before it is decoded.
  expect(longest, 'the longest main-thread task (ms)').toBeLessThan(2_000);
  // Chromium reads and encodes the clipboard off the page's thread; on a loaded test machine that
  // takes seconds, during which the tab stays responsive (the longest task above) and says so.
  expect(answeredMs, 'the limit error came (ms)').toBeLessThan(60_000);
});
