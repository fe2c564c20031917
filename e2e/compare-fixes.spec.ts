// Sequence parallelism, async TP and the re-land in the app: the pass list shows the new passes
// with their descriptions and what each refused; the Compare fixes view shows the three graphs
// of one GPT-OSS layer side by side with their numbers and outputs checked equal.

import { test, expect } from '@playwright/test';
import { idle } from './appPage.ts';

test('the pass list explains why sequence parallelism does not fire on GPT-OSS until the slice goes', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Sample').selectOption({ label: 'GPT-OSS-20B · 24 layers · TP4' });
  await idle(page);
  // The pass list's entry (the Why panel also names the pass, in its per-pass groups).
  await expect(page.locator('.pass-name').getByText('sequence-parallelism', { exact: true })).toHaveAttribute(
    'title',
    /reduce_scatter → RMSNorm on the local token shard/,
  );
  await expect(page.getByLabel('sequence-parallelism sites', { exact: true })).toHaveText('0');
  await expect(page.getByLabel('moe-unpad sites', { exact: true })).toHaveText('24');
  await page.getByRole('button', { name: 'Sites of sequence-parallelism' }).click();
  const why = page.getByRole('list', { name: 'Why sequence-parallelism did not fire' });
  await expect(why.getByRole('listitem').first()).toBeVisible();
  await expect(why).toContainText('run slice-hoist');
  // The re-land removes the blocker: every all-reduce → norm splits (2L + 1 = 49).
  await page.getByRole('button', { name: 'Apply moe-unpad' }).click();
  await idle(page);
  await expect(page.getByLabel('sequence-parallelism sites', { exact: true })).toHaveText('49');
});

test('Compare fixes: the original, the hoist and the re-land side by side, outputs equal', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByRole('tab', { name: 'Compare fixes' }).click();
  await page.getByLabel('Compare backend').selectOption('cpu');
  await page.getByRole('button', { name: 'Compare', exact: true }).click();
  const fixes = page.getByRole('list', { name: 'Fixes' });
  for (const name of ['original', 'PR #28841 (slice hoist)', '#30647 (re-land: unpadded MoE)'])
    await expect(fixes.getByRole('listitem', { name, exact: true })).toBeVisible();
  await expect(page.getByTestId('fusions-original')).toHaveText('2');
  await expect(page.getByTestId('fusions-slice-hoist')).toHaveText('3');
  await expect(page.getByTestId('fusions-moe-unpad')).toHaveText('3');
  // The run it shows, named as the Run tab names its own: backend, ranks, the timing method.
  await expect(page.getByTestId('fixes-run')).toContainText(
    /on cpu, 2 ranks \(.+\), each variant median of 3 timed runs after a warm-up/,
  );
  // What is proven (the exact check) apart from what the fused kernel changes, in the Run's words;
  // each variant's own kernel count (the model's too) and its time with the spread of its runs.
  for (const [id, kernels] of [
    ['original', 19],
    ['slice-hoist', 18],
    ['moe-unpad', 17],
  ] as const) {
    await expect(page.getByTestId(`equal-${id}`)).toHaveText(
      /^proven: the rewrite computes the same function under the same rounding \(all 2 outputs bitwise equal with the fused norms rounded as the unfused pair\)$/,
    );
    await expect(page.getByTestId(`fused-change-${id}`)).toHaveText(
      /^what the fused kernel changes: it rounds the norm once where the unfused pair rounds twice; per site \d+ ulps? \(the first fused site, \w+, measured alone\); through the graph up to \d+ ulps?, max rel [\d.e+-]+ \(\d fused sites in series: .*; reported, not gated\)$/,
    );
    await expect(page.getByTestId(`run-kernels-${id}`)).toHaveText(
      new RegExp(`^${kernels}( \\(\\d+ steps\\))?$`),
    );
    await expect(page.getByTestId(`model-kernels-${id}`)).toHaveText(String(kernels));
    // A duration in the unit that keeps it short (ui/units.ts), with its min–max spread.
    await expect(page.getByTestId(`run-time-${id}`)).toHaveText(
      /^[\d.]+ (µs|ms|s) \([\d.]+( (µs|ms|s))?–[\d.]+ (µs|ms|s)\)$/,
    );
  }
  // The original's chain has the pad and the slice; the re-land's has neither.
  const original = page.getByRole('list', { name: 'original graph' });
  await expect(original).toContainText('constant_pad_nd');
  await expect(original).toContainText('slice');
  const reland = page.getByRole('list', { name: '#30647 (re-land: unpadded MoE) graph' });
  await expect(reland).toContainText('moe_forward');
  await expect(reland).not.toContainText('slice');
  await expect(reland).not.toContainText('constant_pad_nd');
});
