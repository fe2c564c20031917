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
  // Dynamo's own graph first: its torch-level calls imported as the ops they mean.
  await expect(stages).toContainText('Dump stage 1 / 8: dynamo');
  await expect(page.locator('[data-node="linear"]').first()).toBeAttached();
  await expect(page.locator('[data-node="addmm_default"]')).toHaveCount(0);
  await stages
    .getByRole('list', { name: 'Dump stages' })
    .getByRole('button', { name: 'post_grad', exact: true })
    .click();
  await idle(page);
  await expect(stages).toContainText('Dump stage 8 / 8: post_grad');
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

test("a TORCH_TRACE folder's compile brings its kernels and the profiler trace beside the log onto its post-grad graph", async ({
  page,
}) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Dump folder').setInputFiles(TRACE);
  const frames = page.getByTestId('trace-frames');
  await expect(frames).toContainText('4 compiles');
  // The profiled call ran the recompiled graphs (0/1 and 1/1): pick 0/1 and its post-grad graph.
  await frames.getByRole('button', { name: /^\[0\/1\] forward/ }).click();
  await idle(page);
  await page
    .getByTestId('dump-stages')
    .getByRole('list', { name: 'Dump stages' })
    .getByRole('button', { name: 'post_grad', exact: true })
    .click();
  await idle(page);
  await page.getByRole('tab', { name: 'Kernels' }).click();
  // Read from the log itself: the compile's output code and provenance mapping, and the trace file.
  await expect(page.getByTestId('kernel-files')).toContainText('[0/1] output code');
  await expect(page.getByTestId('kernel-files')).toContainText('[0/1] provenance');
  await expect(page.getByTestId('kernel-files')).toContainText('profile.json.gz');
  await expect(page.getByTestId('kernel-counts')).toHaveText('9 kernels, 12 launches');
  await expect(page.getByTestId('kernel-source')).toHaveText(/provenance mapping/);
  const box = page.locator('.fl-kernel[data-kernel="0"]');
  await expect(box).toHaveAttribute('data-source', 'provenance');
  // A node the first kernel fused shows that kernel and the time the trace measured for it.
  await page.locator('[data-node="embedding"]').first().click();
  await expect(page.getByTestId('inspector-kernel')).toContainText('#0 cpp_fused_');
  await expect(page.getByTestId('inspector-kernel-time')).toContainText('µs');
  expect(errors).toEqual([]);
});
