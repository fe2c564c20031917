// What the app's specs share: waiting for the test-mode ready flag, and the CPU run of the PR
// fragment several specs start from.

import { expect, type Page } from '@playwright/test';

/** The app is idle: nothing loads, runs or lays out, and every view is at rest (see App.tsx). */
export async function idle(page: Page, timeout?: number): Promise<void> {
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true', timeout ? { timeout } : undefined);
}

/** The default sample (GPT-OSS, 1 layer, TP4) rewritten by the pipeline: before | after. */
export async function openRewritten(page: Page): Promise<void> {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await idle(page);
}

/** The PR fragment rewritten by the pipeline, then run before and after on the CPU reference, 2 ranks. */
export async function runFragmentOnCpu(page: Page): Promise<void> {
  await runSampleOnCpu(page, 'PR #28841 · before (fragment)');
}

/** A sample rewritten by the pipeline, then run before and after on the CPU reference, 2 ranks. */
export async function runSampleOnCpu(page: Page, sample: string, timeout = 60_000): Promise<void> {
  await page.getByLabel('Sample').selectOption({ label: sample });
  await idle(page);
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await idle(page);
  await page.getByRole('tab', { name: 'Run' }).click();
  await page.getByLabel('Backend').selectOption('cpu');
  await page.getByLabel('Ranks').selectOption('2');
  await page.getByRole('button', { name: 'Run before & after' }).click();
  await expect(page.getByTestId('run-verdict')).toHaveText(/^proven: /, { timeout });
}
