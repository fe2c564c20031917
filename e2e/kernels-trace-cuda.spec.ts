// The same checks as kernels-trace.spec.ts on the GPU run (fixtures/trace-cuda: torch 2.11 on an
// H100): Triton kernels and cuBLAS extern calls from output_code.py drawn around the post-grad nodes
// the provenance mapping gives them, and each kernel's time from the CUDA profiler trace, where
// Triton kernels carry no graph number and an extern call's time is its GPU kernels' sum.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { test, expect } from '@playwright/test';
import { idle } from './appPage.ts';

const FIXTURES = new URL('../fixtures/trace-cuda/', import.meta.url);
const DIR = new URL('debug/model__2_inference_2.2/', FIXTURES);
const path = (f: string, base = DIR) => fileURLToPath(new URL(f, base));
const MAPPING = JSON.parse(readFileSync(path('inductor_provenance_tracking_node_mappings.json'), 'utf8')) as {
  cppCodeToPost: Record<string, string[]>;
};
const TRACE = (
  JSON.parse(gunzipSync(readFileSync(path('profile.json.gz', FIXTURES))).toString('utf8')) as {
    traceEvents: { name?: string; dur?: number; cat?: string }[];
  }
).traceEvents;

// call()'s launches, read from the output code: Triton `.run(` calls and extern kernels.
const CALL = readFileSync(path('output_code.py'), 'utf8').split('def call(')[1]!;
const LAUNCHES = [...CALL.matchAll(/^\s+(triton_\w+)\.run\(|^\s+(extern_kernels\.\w+)\(/gm)].map(
  (m) => m[1] ?? m[2],
);

test('Triton kernels and extern calls of a CUDA compile around their nodes, with the GPU trace times', async ({
  page,
}) => {
  expect(LAUNCHES.length).toBeGreaterThan(8);
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
  await expect(page.getByTestId('kernel-counts')).toHaveText(
    new RegExp(`^\\d+ kernels, ${LAUNCHES.length} launches$`),
  );
  await expect(page.getByTestId('kernel-source')).toHaveText(/provenance mapping/);
  await idle(page);

  // Launch 0, a Triton reduction (the first RMSNorm), is drawn around the nodes its handle names.
  const [handle, nodes] = Object.entries(MAPPING.cppCodeToPost).find(([k]) => k.endsWith(':1'))!;
  const kernel = handle.split(':')[0]!;
  expect(kernel).toBe(LAUNCHES[0]);
  const box = page.locator('.fl-kernel[data-kernel="0"]');
  await expect(box).toHaveAttribute('data-source', 'provenance');
  await expect(box.locator('text')).toHaveText(`#0 ${kernel}`);
  const b = (await box.locator('rect').boundingBox())!;
  for (const name of ['rsqrt', 'mean'].filter((n) => nodes.includes(n))) {
    const n = (await page.locator(`[data-node="${name}"] rect.fl-box`).boundingBox())!;
    expect(n.x).toBeGreaterThanOrEqual(b.x);
    expect(n.y).toBeGreaterThanOrEqual(b.y);
    expect(n.x + n.width).toBeLessThanOrEqual(b.x + b.width + 0.5);
    expect(n.y + n.height).toBeLessThanOrEqual(b.y + b.height + 0.5);
  }

  // The node's kernel and its GPU time: the Triton kernel's own event in the trace (no graph prefix).
  await page.locator('[data-node="rsqrt"]').click();
  await expect(page.getByTestId('inspector-kernel')).toContainText(`#0 ${kernel}`);
  const gpu = TRACE.filter((e) => e.name === kernel && e.cat === 'kernel');
  expect(gpu.length).toBeGreaterThan(0);
  await expect(page.getByTestId('inspector-kernel-time')).toContainText(`${+gpu[0]!.dur!.toPrecision(3)} µs`);

  // The first matmul is cuBLAS behind extern_kernels.mm: a box and a measured time too.
  await page.locator('[data-node="mm"]').click();
  await expect(page.getByTestId('inspector-kernel')).toContainText('extern_kernels.mm');
  await expect(page.getByTestId('inspector-kernel-time')).toContainText('µs');

  await page.getByLabel('Colour by').selectOption('time');
  await expect(page.getByTestId('legend-source')).toContainText('source: trace');
  await expect(page.locator('[data-node="rsqrt"]')).toHaveAttribute('data-overlay', 'value');
  expect(errors).toEqual([]);
});
