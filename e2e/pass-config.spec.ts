// The PassConfig panel: vLLM's level, a flag, a pasted command line and the compile range change
// the passes the pipeline runs and the counts on screen; a shared link reopens them as they were.

import { test, expect, type Page } from '@playwright/test';
import { idle } from './appPage.ts';
import { FLAG_PASSES, VLLM_FLAGS } from '../src/graph/passes/vllmConfig.ts';

const panel = (page: Page) => page.locator('section.pass-config-panel');
const vllmPasses = (page: Page) => page.getByRole('list', { name: 'Passes vLLM runs in this range' });

test('level, flag, pasted command line and compile range drive the pipeline, and the link keeps them', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  // The default sample: GPT-OSS, 1 layer, TP 4, hidden 2880 bf16.
  await page.getByRole('checkbox', { name: "Run vLLM's passes" }).check();
  await idle(page);
  await expect(page.getByLabel('level', { exact: true })).toHaveValue('2');
  await expect(page.getByLabel('-tp', { exact: true })).toHaveValue('4');
  // FlashInfer's 2 MiB at TP 4 on Hopper / (2880 × 2 B) = 364 tokens: vLLM splits there.
  await expect(page.getByTestId('compile-range')).toContainText(
    'Graph compiled for (1, 364) (the first range); the config makes (1, 364), (365, 8192).',
  );
  await expect(vllmPasses(page).locator('li')).toHaveText([
    'noop-elimination',
    'allreduce-rmsnorm',
    'vllm-ir-lowering',
  ]);
  // Every flag with its pass, or said to have none (read from FLAG_PASSES, not assumed).
  for (const flag of VLLM_FLAGS)
    await expect(panel(page).locator(`tr[data-flag="${flag}"]`)).toContainText(
      FLAG_PASSES[flag].pass ?? 'no fusionlab pass',
    );
  // What the fusion buys on this graph, beside the pass.
  await expect(page.getByTestId('saves-allreduce-rmsnorm')).toHaveText(/^−\d+ launch(es)? · /);

  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await idle(page);
  const fused = page.getByTestId('fused-nodes').locator('.stat-value');
  const fusedLow = Number(await fused.innerText());
  expect(fusedLow).toBeGreaterThan(0);

  // The large range: the all-reduce fusion is not applicable there, and says why.
  await page.getByRole('button', { name: 'Undo' }).click();
  await page.getByRole('button', { name: 'Undo' }).click();
  await page.getByRole('button', { name: 'Undo' }).click();
  await idle(page);
  await page.getByLabel('compile range', { exact: true }).selectOption({ label: '(365, 8192)' });
  await idle(page);
  await expect(vllmPasses(page).locator('li').first()).toHaveText('noop-elimination');
  await expect(page.getByTestId('vllm-allreduce-rmsnorm')).toHaveText('not applicable in this range');
  await expect(page.getByRole('list', { name: 'Passes not applicable in this compile range' })).toContainText(
    'it ends above 364 tokens',
  );
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await idle(page);
  await expect(fused).toHaveText('0');

  // A flag set on top of the level is marked as an override.
  await panel(page).getByLabel('eliminate_noops').uncheck();
  await idle(page);
  await expect(panel(page).locator('tr[data-flag="eliminate_noops"]')).toHaveClass(/override/);
  await expect(vllmPasses(page).locator('li').first()).toHaveText('vllm-ir-lowering');

  // A pasted command line: -O1 leaves the all-reduce fusion off, so one range, and the flag
  // override is gone (the line sets only what it says).
  await page
    .getByLabel('vLLM command line')
    .fill('vllm serve openai/gpt-oss-120b -O1 -tp 4 --compile-range 1-8192');
  await page.getByRole('button', { name: 'Apply command line' }).click();
  await idle(page);
  await expect(page.getByLabel('level', { exact: true })).toHaveValue('1');
  await expect(page.getByTestId('compile-range')).toContainText('Graph compiled for (1, 8192)');
  await expect(vllmPasses(page).locator('li')).toHaveText(['noop-elimination', 'vllm-ir-lowering']);
  await expect(panel(page).locator('tr[data-flag="eliminate_noops"]')).not.toHaveClass(/override/);

  // A bad line says what and where, and keeps the config.
  await page.getByLabel('vLLM command line').fill(`-O2 --compilation-config '{"pass_config": {`);
  await page.getByRole('button', { name: 'Apply command line' }).click();
  await expect(page.getByTestId('command-line-error')).toHaveText(/unclosed ' opened at column 26/);
  await expect(page.getByLabel('level', { exact: true })).toHaveValue('1');

  // Back to -O2 with its ranges, then the link.
  await page.getByLabel('level', { exact: true }).selectOption('2');
  await page.getByLabel('compile range', { exact: true }).selectOption({ label: '(365, 8192)' });
  await page.getByLabel('platform', { exact: true }).selectOption('sm100');
  await idle(page);
  const ranges = await page.getByTestId('compile-range').innerText();
  const passes = await vllmPasses(page).locator('li').allInnerTexts();
  await page.goto(page.url());
  await idle(page);
  await expect(page.getByRole('checkbox', { name: "Run vLLM's passes" })).toBeChecked();
  await expect(page.getByLabel('level', { exact: true })).toHaveValue('2');
  await expect(page.getByLabel('platform', { exact: true })).toHaveValue('sm100');
  await expect(page.getByLabel('-tp', { exact: true })).toHaveValue('4');
  await expect(page.getByLabel('compile range', { exact: true })).toHaveValue('365-8192');
  await expect(page.getByTestId('compile-range')).toHaveText(ranges);
  expect(passes.length).toBe(3);
  await expect(vllmPasses(page).locator('li')).toHaveText(passes);
});
