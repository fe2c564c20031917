// A 50 MB paste must not freeze the tab: the paste box hands what it cannot lay out to the
// importer (in the pipeline worker), as a dropped file goes, and the limit error comes at once.
// The longest main-thread task is measured with PerformanceObserver('longtask').

import { test, expect, type Page } from '@playwright/test';
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

/**
 * Chromium asks before a page reads the clipboard ('prompt', its default for a site); headless
 * Chromium answers 'denied' itself, so the permission's state and the user's answer are played
 * here by replacing `navigator.permissions.query` and `navigator.clipboard.read` for this page.
 */
async function askingClipboard(page: Page, answer: 'accept' | 'refuse') {
  await page.addInitScript((a) => {
    const query = navigator.permissions.query.bind(navigator.permissions);
    navigator.permissions.query = (d: PermissionDescriptor) =>
      (d.name as string) === 'clipboard-read'
        ? Promise.resolve({
            state: 'prompt',
            addEventListener() {},
            removeEventListener() {},
          } as unknown as PermissionStatus)
        : query(d);
    const w = window as unknown as { asked: number; clip: Blob };
    w.asked = 0;
    navigator.clipboard.read = () => {
      w.asked++;
      if (a === 'refuse')
        return Promise.reject(new DOMException('Read permission denied.', 'NotAllowedError'));
      return Promise.resolve([
        { types: ['text/plain'], getType: () => Promise.resolve(w.clip) },
      ] as unknown as ClipboardItems);
    };
  }, answer);
}

test('a site that must ask reads a 50 MB paste as a blob once the user allows it: no long task', async ({
  page,
}) => {
  test.setTimeout(180_000);
  await askingClipboard(page, 'accept');
  await page.goto('/?test=1');
  await idle(page);
  // What the user copied, made before the main thread is watched.
  await page.evaluate(() => {
    const line =
      '    add_7: "bf16[s72, 2880]" = torch.ops.aten.add.Tensor(mul_3, getitem_12);  mul_3 = None\n';
    (window as unknown as { clip: Blob }).clip = new Blob(
      [line.repeat(Math.ceil((50 * 2 ** 20) / line.length))],
      {
        type: 'text/plain',
      },
    );
  });
  await page.getByRole('button', { name: 'Paste FX…' }).click();
  const editor = page.getByRole('textbox', { name: 'FX source' });
  await expect(editor).toBeFocused();
  // Asking is still possible, so the box does not warn of a blocking paste.
  await expect(page.getByTestId('blocking-paste-note')).toHaveCount(0);
  await page.evaluate(() => {
    const w = window as unknown as { longest: number };
    w.longest = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.longest = Math.max(w.longest, e.duration);
    }).observe({ type: 'longtask' });
  });
  await page.keyboard.press('Control+V');
  await expect(page.getByTestId('import-error')).toContainText('over the limit of 16.0 MB', {
    timeout: 60_000,
  });
  await idle(page);
  expect(await page.evaluate(() => (window as unknown as { asked: number }).asked)).toBe(1);
  // Read through the event's own data, this paste blocked the page 4–15 s on this machine.
  const longest = await page.evaluate(() => (window as unknown as { longest: number }).longest);
  expect(longest, 'the longest main-thread task (ms)').toBeLessThan(2_000);
});

test('refused clipboard access: says nothing was pasted, asks no more, pastes the text itself next time and warns of large pastes', async ({
  page,
  context,
}) => {
  await context.grantPermissions(['clipboard-write']);
  await askingClipboard(page, 'refuse');
  await page.goto('/?test=1');
  await idle(page);
  await page.evaluate(() => navigator.clipboard.writeText('x = 1'));
  await page.getByRole('button', { name: 'Paste FX…' }).click();
  const editor = page.getByRole('textbox', { name: 'FX source' });
  await expect(editor).toBeFocused();
  await editor.fill('');
  await page.keyboard.press('Control+V');
  await expect(page.getByRole('status').filter({ hasText: 'Clipboard access refused' })).toContainText(
    'nothing pasted',
  );
  await expect(editor).toHaveValue('');
  await expect(page.getByTestId('blocking-paste-note')).toContainText('Open or drop a large file instead');
  await page.keyboard.press('Control+V');
  await expect(editor).toHaveValue('x = 1');
  expect(await page.evaluate(() => (window as unknown as { asked: number }).asked)).toBe(1);
});
