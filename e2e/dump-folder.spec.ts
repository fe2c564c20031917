// Open folder…: a vLLM debug dump loads as its stages in compile order; the stage scrubber walks
// them and the counts follow the stage shown. The TP group gate recounts too.

import { test, expect } from '@playwright/test';
import { fileURLToPath } from 'node:url';
import { idle } from './appPage.ts';

const DUMP = fileURLToPath(new URL('../fixtures/capture/vllm-dump-gpt-oss-before-tp2', import.meta.url));

test("Open folder… lists a dump's stages; the scrubber walks them", async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Dump folder').setInputFiles(DUMP);
  const stages = page.getByTestId('dump-stages');
  await expect(stages).toContainText('Dump stage 1 / 2: before_noop_elimination-0');
  await idle(page);
  await expect(page.getByTestId('fusable-sites')).toHaveText(/^3\s*fusable sites$/);
  await page.getByRole('slider', { name: 'Dump stage' }).fill('1');
  await expect(stages).toContainText('Dump stage 2 / 2: after_fix_functionalization-0');
  await idle(page);
  // After fix_functionalization the norms are in-place calls: no vLLM pattern sees them.
  await expect(page.getByTestId('fusable-sites')).toHaveText(/^0\s*fusable sites$/);
  await page
    .getByRole('list', { name: 'Dump stages' })
    .getByRole('button', { name: 'before_noop_elimination-0' })
    .click();
  await idle(page);
  await expect(page.getByTestId('fusable-sites')).toHaveText(/^3\s*fusable sites$/);
  // The dump reduces over 'tp:0'; naming another group as the TP group leaves nothing to fuse.
  await expect(page.locator('#gate-tp-group')).toHaveValue('tp:0');
  expect(errors).toEqual([]);
});

test('a str(graph) dump fuses as its print_readable twin, and the panel says which gate went unevaluated', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  await page
    .getByLabel('Graph file')
    .setInputFiles(fileURLToPath(new URL('../fixtures/capture/llama-tp2.graph.txt', import.meta.url)));
  await idle(page);
  await page.locator('#gate-world').selectOption('2');
  await idle(page);
  await expect(page.getByTestId('fusable-sites')).toHaveText(/^5\s*fusable sites$/);
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await idle(page);
  const note = page.getByTestId('unevaluated-gates');
  await expect(note).toContainText('5 sites fused with a gate not evaluated');
  await note.locator('summary').click();
  await expect(note.getByRole('listitem').first()).toContainText(
    "input shape is unknown, so FlashInfer's size limit was not evaluated",
  );
});

test('a TP 2 capture opens at world size 2, and switching its stage keeps the rewrite steps', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Dump folder').setInputFiles(DUMP);
  await idle(page);
  // `{stage}-0.py`: vLLM names a stage's file with the TP rank only above TP 1.
  const world = page.locator('#gate-world');
  await expect(world).toHaveValue('2');
  await expect(world.locator('option:checked')).not.toContainText('default');
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await idle(page);
  const stage = page.getByText(/^Stage \d+ \/ \d+:/);
  await expect(stage).toContainText('Stage 3 / 3');
  await page.getByRole('slider', { name: 'Dump stage' }).fill('1');
  await idle(page);
  await expect(page.getByTestId('dump-stages')).toContainText('Dump stage 2 / 2');
  // The three steps replay on the new stage, and the status bar says so.
  await expect(stage).toContainText('Stage 3 / 3');
  await expect(page.getByRole('status')).toContainText(
    'Kept the 3 rewrite steps: replayed on after_fix_functionalization-0',
  );
  await expect(world).toHaveValue('2');
});
