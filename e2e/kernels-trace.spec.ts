// Inductor's kernels and the user's profiler trace on the graph, from fixtures/trace (a real torch
// 2.13 CPU compile): the post-grad graph, its output code, provenance mapping and trace loaded;
// each kernel drawn around the nodes it fused; a node shows its kernel and measured time; the
// time overlay says its numbers come from the trace; a truncated trace is refused, the loaded one kept.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { test, expect } from '@playwright/test';
import { idle } from './appPage.ts';

const FIXTURES = new URL('../fixtures/trace/', import.meta.url);
const DIR = new URL('debug/model__2_inference_2.2/', FIXTURES);
const path = (f: string, base = DIR) => fileURLToPath(new URL(f, base));
const MAPPING = JSON.parse(readFileSync(path('inductor_provenance_tracking_node_mappings.json'), 'utf8')) as {
  cppCodeToPost: Record<string, string[]>;
};
const TRACE = (
  JSON.parse(gunzipSync(readFileSync(path('profile.json.gz', FIXTURES))).toString('utf8')) as {
    traceEvents: { name?: string; dur?: number }[];
  }
).traceEvents;

test("kernels of the output code around their nodes, with the trace's times", async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Graph file').setInputFiles(path('fx_graph_transformed.py'));
  await idle(page);

  await page.getByRole('tab', { name: 'Kernels' }).click();
  await page
    .getByLabel('Inductor output code, provenance mapping, profiler trace')
    .setInputFiles([
      path('output_code.py'),
      path('inductor_provenance_tracking_node_mappings.json'),
      path('profile.json.gz', FIXTURES),
    ]);
  await expect(page.getByTestId('kernel-files').locator('li')).toHaveCount(3);
  await expect(page.getByTestId('kernel-counts')).toHaveText('9 kernels, 12 launches');
  await expect(page.getByTestId('kernel-source')).toHaveText(/provenance mapping/);
  await idle(page);

  // Launch 0 is drawn around the nodes the mapping gives its handle.
  const handle = Object.keys(MAPPING.cppCodeToPost).find((k) => k.endsWith(':1'))!;
  const kernel = handle.split(':')[0];
  const box = page.locator('.fl-kernel[data-kernel="0"]');
  await expect(box).toHaveAttribute('data-source', 'provenance');
  await expect(box.locator('text')).toHaveText(`#0 ${kernel}`);
  const b = (await box.locator('rect').boundingBox())!;
  for (const name of MAPPING.cppCodeToPost[handle]
    .filter((n) => n !== 'embedding')
    .slice(0, 3)
    .concat('embedding')) {
    const n = (await page.locator(`[data-node="${name}"] rect.fl-box`).boundingBox())!;
    expect(n.x).toBeGreaterThanOrEqual(b.x);
    expect(n.y).toBeGreaterThanOrEqual(b.y);
    expect(n.x + n.width).toBeLessThanOrEqual(b.x + b.width + 0.5);
    expect(n.y + n.height).toBeLessThanOrEqual(b.y + b.height + 0.5);
  }

  // Selecting a fused node names its kernel and the kernel's measured time.
  await page.locator('[data-node="embedding"]').click();
  await expect(page.getByTestId('inspector-kernel')).toContainText(`#0 ${kernel}`);
  const dur = TRACE.find((e) => e.name === `graph_2_${kernel}`)!.dur!;
  await expect(page.getByTestId('inspector-kernel-time')).toContainText(`${+dur.toPrecision(3)} µs`);

  // Colour by measured time: the trace's, said so in the legend.
  await page.getByLabel('Colour by').selectOption('time');
  await expect(page.getByTestId('legend-source')).toContainText('source: trace');
  await expect(page.locator('[data-node="embedding"]')).toHaveAttribute('data-overlay', 'value');

  // The cost panel sets the trace beside its prediction for the same kernel.
  await page.getByRole('tab', { name: 'Cost model' }).click();
  await expect(page.getByTestId('cost-trace-row').first()).toContainText(`#0 ${kernel}`);

  // A truncated trace is refused with where it broke; the loaded one stays.
  await page.getByRole('tab', { name: 'Kernels' }).click();
  const gz = readFileSync(path('profile.json.gz', FIXTURES));
  await page.getByLabel('Inductor output code, provenance mapping, profiler trace').setInputFiles({
    name: 'cut.json.gz',
    mimeType: 'application/gzip',
    buffer: gz.subarray(0, gz.length >> 1),
  });
  await expect(page.getByTestId('kernels-error')).toHaveText(/^cut\.json\.gz: byte \d+, line \d+: /);
  await expect(page.getByTestId('kernel-files')).toContainText('profile.json.gz');
  await expect(page.getByTestId('legend-source')).toContainText('source: trace');
  expect(errors).toEqual([]);
});
