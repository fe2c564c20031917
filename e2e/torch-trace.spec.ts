// Open folder… on a TORCH_TRACE folder (fixtures/trace, a real torch 2.13 run): the compiled frames
// are listed with the graph break and the recompile (its failed guard), and picking the post-grad
// stage shows that graph: a node the post-grad passes made (mm + add → addmm) is drawn.

import { test, expect } from '@playwright/test';
import { fileURLToPath } from 'node:url';
import { idle } from './appPage.ts';

const TRACE = fileURLToPath(new URL('../fixtures/trace', import.meta.url));

test("Open folder… on a TORCH_TRACE folder lists its compiles, breaks and recompiles; a compile's post-grad graph is shown", async ({
  page,
}) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Dump folder').setInputFiles(TRACE);
  const frames = page.getByTestId('trace-frames');
  await expect(frames).toContainText('4 compiles, 2 graph breaks, 2 recompiles');
  await expect(frames).toContainText(
    'graph break: Call to torch._dynamo.graph_break() at torch_trace.py:101',
  );
  await expect(frames).toContainText(
    "recompile: guard failed on 0/0: tensor 'tokens' size mismatch at index 0. expected 8, actual 12",
  );
  await idle(page);
  const stages = page.getByTestId('dump-stages');
  await expect(stages).toContainText('Dump stage 1 / 5: aot_inference');
  await expect(page.locator('[data-node="addmm_default"]')).toHaveCount(0);
  await stages
    .getByRole('list', { name: 'Dump stages' })
    .getByRole('button', { name: 'post_grad', exact: true })
    .click();
  await idle(page);
  await expect(stages).toContainText('Dump stage 5 / 5: post_grad');
  await expect(page.locator('[data-node="addmm_default"]').first()).toBeAttached();
  // Another compile: the recompiled resume function.
  await frames.getByRole('button', { name: '[1/1] torch_dynamo_resume_in_forward_at_101' }).click();
  await idle(page);
  await expect(
    frames.getByRole('button', { name: '[1/1] torch_dynamo_resume_in_forward_at_101' }),
  ).toHaveAttribute('aria-current', 'step');
  await expect(frames).toContainText("recompile: guard failed on 1/0: tensor 'x' size mismatch");
  expect(errors).toEqual([]);
});
