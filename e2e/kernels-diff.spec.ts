// How vLLM's norm / activation + quant fusions change Inductor's kernel list, on fixtures/kernels-diff
// (one FP8 model compiled by torch 2.13 on the CPU before and after the fusions): the before graph's
// output code loaded, the passes applied, the Kernels tab names the kernels that vanish into each
// fused op and the launch counts; the after pane draws the predicted launches around the fused ops.

import { fileURLToPath } from 'node:url';
import { test, expect } from '@playwright/test';
import { idle } from './appPage.ts';
import { generateSample } from '../src/graph/samples/index.ts';

const DIR = new URL('../fixtures/kernels-diff/', import.meta.url);
const path = (f: string) => fileURLToPath(new URL(f, DIR));

test("a pass's kernel change, predicted from the before graph's output code", async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Graph file').setInputFiles(path('before/fx_graph_transformed.py'));
  await idle(page);
  await page.getByRole('tab', { name: 'Kernels' }).click();
  await page
    .getByLabel('Inductor output code, provenance mapping, profiler trace')
    .setInputFiles([
      path('before/output_code.py'),
      path('before/inductor_provenance_tracking_node_mappings.json'),
    ]);
  await expect(page.getByTestId('kernel-counts')).toHaveText('7 kernels, 13 launches');

  await page.getByRole('button', { name: 'Apply norm-quant' }).click();
  await idle(page);
  await page.getByRole('button', { name: 'Apply act-quant' }).click();
  await idle(page);
  await page.getByRole('tab', { name: 'Kernels' }).click();

  const norm = page.locator('[data-testid="kernel-pass-change"][data-pass="norm-quant"]');
  await expect(norm.getByTestId('kernel-pass-launches')).toHaveText('launches 13 → 14');
  await expect(norm.getByTestId('kernel-added')).toHaveText([
    '+ 1 × _C.rms_norm_static_fp8_quant',
    '+ 3 × _C.fused_add_rms_norm_static_fp8_quant',
  ]);
  await expect(norm.getByTestId('kernel-gone').first()).toHaveText(
    '− #2 cpp_fused__to_copy_add_clamp_cutlass_scaled_mm_embedding_mean_mul_pow_reciprocal_rsqrt_t_1 (fused_add_rms_norm + quant) → + _C.fused_add_rms_norm_static_fp8_quant',
  );
  // The first norm's kernel keeps the embedding lookup: it shrinks, it does not vanish.
  await expect(norm.getByTestId('kernel-shrunk').first()).toContainText(
    '~ #0 cpp_fused__to_copy_add_clamp_cutlass_scaled_mm_embedding_mean_mul_pow_reciprocal_rsqrt_t_0 loses rms_norm + quant → + _C.rms_norm_static_fp8_quant',
  );
  const act = page.locator('[data-testid="kernel-pass-change"][data-pass="act-quant"]');
  await expect(act.getByTestId('kernel-pass-launches')).toHaveText('launches 14 → 14');
  await expect(act.getByTestId('kernel-gone')).toHaveText([
    '− #4 cpp_fused__to_copy_clamp_cutlass_scaled_mm_mul_reciprocal_silu_slice_t_2 (silu_and_mul + quant) → + _C.silu_and_mul_quant',
    '− #10 cpp_fused__to_copy_clamp_cutlass_scaled_mm_mul_reciprocal_silu_slice_t_2 (silu_and_mul + quant) → + _C.silu_and_mul_quant',
  ]);
  await expect(page.getByTestId('kernels-predicted').getByTestId('kernel-counts')).toHaveText(
    '6 kernels, 14 launches',
  );

  // The after pane draws the predicted launches: the fused op's box around its call.
  const after = page.getByTestId('graph-view').last();
  const fused = after.locator('.fl-kernel[data-kernel="1"]');
  await expect(fused).toHaveAttribute('data-source', 'predicted');
  await expect(fused.locator('text')).toHaveText('#1 torch.ops._C.rms_norm_static_fp8_quant.default');
  expect(errors).toEqual([]);
});

// A graph over the SVG limit (GPT-OSS-20B, 45 layers: about 1,860 boxes, under the 2,000 that open folded) draws on a canvas; its
// kernels are drawn there too, as the SVG view draws them, and listed beside the nodes.
const BIG = generateSample('gpt-oss-20b', { layers: 45, tp: 4 });
const KERNELS: [string, string[]][] = [
  ['triton_poi_fused_bitwise_and_ge_lt_mul_0', ['ge', 'lt', 'bitwise_and', 'mul']],
  ['triton_poi_fused_embedding_masked_fill_1', ['embedding', 'bitwise_not', 'masked_fill']],
];
// As torch/_inductor/utils.py get_kernel_metadata and the Triton wrapper write them.
const CODE = [
  'async_compile = AsyncCompile()',
  ...KERNELS.flatMap(([k, nodes]) => [
    `# Source Nodes: [${nodes.join(', ')}], Original ATen: []`,
    `${k} = async_compile.triton('${k}', '''`,
    '@triton.jit',
    `def ${k}(in_ptr0):`,
    '    pass',
    "''', device_str='cuda')",
    '',
  ]),
  'class Runner:',
  '    def call(self, args):',
  ...KERNELS.map(([k]) => `        ${k}.run(buf0, stream=stream0)`),
  '        extern_kernels.mm(buf1, arg0_1, out=buf0)',
  '        return (buf0, )',
].join('\n');

test('kernel boxes on the canvas renderer of a graph over the SVG limit', async ({ page }) => {
  test.setTimeout(180_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/?test=1');
  await idle(page);
  await page
    .getByLabel('Graph file')
    .setInputFiles({ name: 'gpt-oss-45.py', mimeType: 'text/x-python', buffer: Buffer.from(BIG) });
  await idle(page, 120_000);
  const view = page.getByTestId('graph-view').first();
  await expect(view).toHaveAttribute('data-renderer', 'canvas');
  await expect(view).toHaveAttribute('data-ready', 'true', { timeout: 60_000 });
  await page.evaluate(() => window.__fusionlab!.views!()[0].centerOn('embedding'));
  await idle(page);
  const canvas = view.locator('canvas.fl-surface');
  const bare = await canvas.screenshot();

  await page.getByRole('tab', { name: 'Kernels' }).click();
  await page
    .getByLabel('Inductor output code, provenance mapping, profiler trace')
    .setInputFiles({ name: 'output_code.py', mimeType: 'text/x-python', buffer: Buffer.from(CODE) });
  await expect(page.getByTestId('kernel-counts')).toHaveText('3 kernels, 3 launches');
  const listed = view.locator('ul[aria-label="kernels"] li');
  await expect(listed).toHaveText(KERNELS.map(([k], i) => `#${i} ${k}`));
  await expect(listed.first()).toHaveAttribute('data-source', 'source-nodes');
  await idle(page);
  // The boxes are pixels on the canvas: the same view with them differs from the one without.
  expect((await canvas.screenshot()).equals(bare)).toBe(false);
  expect(errors).toEqual([]);
});
