// A user's path through the app, step by step, as someone reading the PR would take it.

import { test, expect, type Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { deflateSync, inflateSync } from 'node:zlib';
import { URL_VIEW_PARAM, parseViewCentre, type UrlState } from '../src/ui/urlState.ts';
import { idle } from './appPage.ts';

/** Waits for the app's own idle flag (test mode): graph laid out, nothing loading or running. */
function consoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

const fusable = (page: Page) => page.getByTestId('fusable-sites');

test('load GPT-OSS (24 layers, TP4), hoist the slice: 25 → 49 fusable, fuse, inspect, undo, redo, scrub', async ({
  page,
}) => {
  const errors = consoleErrors(page);
  await page.goto('/?test=1');
  await idle(page);

  await page.getByLabel('Sample').selectOption({ label: 'GPT-OSS-20B · 24 layers · TP4' });
  await idle(page);
  await expect(fusable(page)).toHaveText(/^25\s*fusable sites$/);
  await expect(page.getByLabel('slice-hoist sites', { exact: true })).toHaveText('24');

  // The why panel names the slice as what blocks each of the 24 MoE all-reduces.
  const why = page.getByRole('list', { name: 'Blocked fusions' });
  await expect(why.getByRole('listitem')).toHaveCount(24);
  await expect(why.getByRole('listitem').first()).toContainText('aten.slice.Tensor');

  // Hoist one slice from the why list: one more site fuses, 23 stay blocked.
  await why
    .getByRole('button', { name: /^run slice-hoist at all_reduce/ })
    .first()
    .click();
  await idle(page);
  await expect(fusable(page)).toHaveText(/^26\s*fusable sites$/);
  await expect(why.getByRole('listitem')).toHaveCount(23);
  await page.getByRole('button', { name: 'Undo' }).click();
  await idle(page);

  await page.getByRole('button', { name: 'Apply slice-hoist' }).click();
  await idle(page);
  await expect(fusable(page)).toHaveText(/^49\s*fusable sites$/);
  await expect(page.getByLabel('slice-hoist sites', { exact: true })).toHaveText('0');

  await page.getByRole('button', { name: 'Apply allreduce-rmsnorm' }).click();
  await idle(page);
  await expect(page.getByTestId('fused-nodes')).toHaveText(/^49\s*fused nodes$/);

  // Inspect a fused node in the after view: the view has followed the rewrite to one, at its centre.
  const after = page.getByTestId('graph-view').last();
  // The view centres nodes in the area its chrome leaves clear (below the docked toolbar).
  const centred = await page.evaluate(() => {
    const v = window.__fusionlab!.views!().find((h) => h.root.dataset.label === 'after')!;
    const r = v.root.getBoundingClientRect(),
      a = v.clearArea();
    return window.__fusionlab!.nodeAt!(r.left + a.x + a.w / 2, r.top + a.y + a.h / 2);
  });
  await after.locator(`g[data-node="${centred}"][data-kind="fused"]`).click();
  await expect(page.getByTestId('inspector-op')).toHaveText(
    'vllm.flashinfer_trtllm_fused_allreduce_norm.default',
  );
  await expect(page.getByTestId('inspector-type')).toHaveText('(tuple)');
  await expect(page.getByTestId('inspector-args')).toContainText('rms_eps');
  await expect(page.getByTestId('inspector-args')).toContainText('world_size');
  await expect(page.getByTestId('inspector-made-by')).toContainText('allreduce-rmsnorm');
  await expect(page.getByTestId('inspector-source')).toContainText(/^made from lines \d+(, \d+)+/);

  // Undo and redo walk the history; the scrubber shows an earlier stage without losing it.
  await page.getByRole('button', { name: 'Undo' }).click();
  await expect(page.getByTestId('fused-nodes')).toHaveText(/^0\s*fused nodes$/);
  await page.getByRole('button', { name: 'Redo' }).click();
  await expect(page.getByTestId('fused-nodes')).toHaveText(/^49\s*fused nodes$/);
  await page.getByLabel('Rewrite stage').fill('0');
  await expect(fusable(page)).toHaveText(/^25\s*fusable sites$/);
  await page.getByLabel('Rewrite stage').fill('2');
  await expect(page.getByTestId('fused-nodes')).toHaveText(/^49\s*fused nodes$/);

  expect(errors).toEqual([]);
});

/** Applies the whole pipeline to a sample and runs before/after on two WebGPU ranks (tiny preset). */
/** The verdict when every compared path is computed: the exact check proves the rewrite. */
// What is proven (the exact check) reads apart from what the fused kernel changes (fused-change).
const PROVEN =
  /^proven: the rewrite computes the same function under the same rounding \(all \d+ outputs bitwise equal with the fused norms? rounded as the unfused pair\)$/;

async function runOnWebGpu(page: Page, sampleLabel: string, verdict: RegExp = PROVEN) {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Sample').selectOption({ label: sampleLabel });
  await idle(page);
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await idle(page);
  await page.getByRole('tab', { name: 'Run' }).click();
  await page.getByLabel('Backend').selectOption('webgpu');
  await page.getByLabel('Ranks').selectOption('2');
  await page.getByLabel('Preset').selectOption('tiny');
  // One timed run after the warm-up: this checks the results, not the timing method.
  await page.getByLabel('Timed runs').selectOption('1');
  await page.getByRole('button', { name: 'Run before & after' }).click();
  // Both samples fuse: the line says what the exact check and the fused outputs did.
  await expect(page.getByTestId('run-verdict')).toHaveText(verdict, { timeout: 240_000 });

  await page.getByRole('tab', { name: 'Results' }).click();
  await expect(page.getByTestId('run-verdict')).toHaveText(verdict);
  const outputs = page.getByRole('table', { name: 'Outputs' });
  await expect(outputs.getByRole('cell', { name: 'FAIL' })).toHaveCount(0);
  // Every row agrees with the line: gated rows pass, the rest say they are not gated.
  const statuses = await outputs.locator('tbody tr td:last-child').allTextContents();
  expect(statuses.length).toBeGreaterThan(0);
  expect(statuses.every((t) => t === 'pass' || t === 'not gated')).toBe(true);
  expect(new Set(statuses).size).toBe(1);
  // Both samples fuse all-reduce + norm sites: the after-graph rounded as the pair is bitwise equal.
  await expect(page.getByTestId('exact-check')).toContainText(
    /^pass exact check: after-graph with the \d+ fused norms? rounded as the unfused pair, bitwise against before: equal$/,
  );

  await page.getByRole('tab', { name: 'Timeline' }).click();
  const timeline = page.getByTestId('timeline');
  await expect(timeline).toHaveAttribute('aria-label', /^Per-rank timeline, 4 rows/);
  // Wheel zooms the time axis: the last tick moves to an earlier time.
  const lastTick = async () => (await timeline.locator('.axis .tick text').allTextContents()).at(-1);
  const before = await lastTick();
  const box = (await timeline.boundingBox())!;
  await page.mouse.move(box.x + 160, box.y + box.height / 2);
  await page.mouse.wheel(0, -600);
  await expect.poll(lastTick).not.toBe(before);
}

test('run the PR fragment before and after on two WebGPU ranks: equivalent', async ({ page }) => {
  const errors = consoleErrors(page);
  await runOnWebGpu(page, 'PR #28841 · before (fragment)');
  await page.getByRole('tab', { name: 'Results' }).click();
  // Two ranks, each with the fused norm's output and its new residual.
  await expect(page.getByRole('table', { name: 'Outputs' }).getByRole('row')).toHaveCount(1 + 4);
  expect(errors).toEqual([]);
});

test('run GPT-OSS-20B (24 layers) before and after on two WebGPU ranks: equivalent', async ({ page }) => {
  // 24 layers of kernels on SwiftShader, twice: about a minute on two CPU cores.
  test.setTimeout(300_000);
  const errors = consoleErrors(page);
  // Rotary and attention are computed (nothing is fed), so the exact check proves the rewrite;
  // the fused outputs themselves are reported, not gated: 49 sites in series amplify one rounding.
  await runOnWebGpu(page, 'GPT-OSS-20B · 24 layers · TP4', PROVEN);
  // The verdict's two lines sit on the Run and Results tabs (runOnWebGpu ends on the Timeline).
  await page.getByRole('tab', { name: 'Run' }).click();
  await expect(page.getByTestId('fused-change')).toContainText(
    '49 fused sites in series: each starts from values the one before moved',
  );
  expect(errors).toEqual([]);
});

test('run on the native agent (its CPU mode here), connected from the link it prints', async ({
  page,
  browser,
  baseURL,
}) => {
  test.setTimeout(240_000);
  // The agent admits only pages from origins it knows: name the one this run serves the app on.
  // One connection only, so a second page finds it busy.
  const agent: ChildProcess = spawn(
    'node',
    ['agent/start.mjs', '--cpu', '--origin', baseURL!, '--max-connections', '1'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    const link = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`agent printed no link: ${out}`)), 180_000);
      agent.stdout!.on('data', (d) => {
        out += String(d);
        const m = out.match(/http:\/\/127\.0\.0\.1:\d+\/(\?agent=\S+)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      agent.on('exit', (code) => reject(new Error(`agent exited with ${code}: ${out}`)));
    });
    const [query, hash] = link.split('#');
    await page.goto(`${baseURL}/${query}&test=1#${hash}`);
    await idle(page);
    await page.getByLabel('Sample').selectOption({ label: 'PR #28841 · before (fragment)' });
    await idle(page);
    await page.getByRole('button', { name: 'Run pipeline' }).click();
    await page.getByRole('tab', { name: 'Run' }).click();
    await expect(page.getByLabel('Backend')).toHaveValue('agent');
    await expect(page.getByLabel('Agent address')).toHaveValue(/^ws:\/\/127\.0\.0\.1:\d+$/);
    await page.getByRole('button', { name: 'Run before & after' }).click();
    // The agent has no unfused-rounding mode: the line must not claim a proof.
    await expect(page.getByTestId('run-verdict')).toHaveText(
      /^within tolerance: every output within tolerance \(up to \d+ ulps?\); the exact check could not run here$/,
      { timeout: 60_000 },
    );
    await expect(page.getByText(/agent: .*CPU mode/)).toBeVisible();

    // A second page while the first holds the agent's one connection: told it is busy (the
    // browser's WebSocket hides the 503; the app asks the agent why over HTTP).
    const second = await browser.newPage();
    await second.goto(`${baseURL}/${query}&test=1#${hash}`);
    await idle(second);
    await second.getByRole('tab', { name: 'Run' }).click();
    await second.getByRole('button', { name: 'Run before & after' }).click();
    await expect(second.getByTestId('run-error')).toContainText(
      'is busy: all its connections are taken (HTTP 503); try again once a client closes',
    );
    await second.close();
  } finally {
    agent.kill('SIGTERM');
  }
});

test('an agent address off the loopback is refused with a message that says why', async ({ page }) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByRole('tab', { name: 'Run' }).click();
  await page.getByLabel('Backend').selectOption('agent');
  await page.getByLabel('Agent address').fill('ws://example.com:80');
  await page.getByLabel('Agent token').fill('abc');
  await page.getByRole('button', { name: 'Run before & after' }).click();
  await expect(page.getByTestId('run-error')).toHaveText(/loopback only/);
});

test('export the rewritten graph as FX text and JSON, and the view as SVG; switch to the dark theme', async ({
  page,
}) => {
  const errors = consoleErrors(page);
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Sample').selectOption({ label: 'Qwen2-1.5B · 1 layer · TP2 (real dump)' });
  await idle(page);
  await page.getByRole('button', { name: 'Apply allreduce-rmsnorm' }).click();
  await idle(page);

  const exported = async (item: string) => {
    await page.getByRole('button', { name: 'Export ▾' }).click();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('menuitem', { name: item }).click(),
    ]);
    const stream = await download.createReadStream();
    let text = '';
    for await (const chunk of stream) text += String(chunk);
    return { name: download.suggestedFilename(), text };
  };
  const fx = await exported('FX text (.py)');
  expect(fx.name).toBe('qwen2-1.5b-1-layer-tp2-real-dump-rewritten.py');
  expect(fx.text.match(/flashinfer_trtllm_fused_allreduce_norm/g)).toHaveLength(3);
  expect(fx.text).not.toContain('torch.ops.vllm.all_reduce.default');
  const json = await exported('JSON (fusionlab.graph/1)');
  expect(JSON.parse(json.text).schema).toBe('fusionlab.graph/1');
  const svg = await exported('Graph view as SVG');
  expect(svg.text).toMatch(/^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  expect(svg.text).toContain('flashinfer');

  await page.getByRole('button', { name: 'Dark', exact: true }).click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await expect(page.getByRole('button', { name: 'Dark', exact: true })).toHaveAttribute(
    'aria-pressed',
    'true',
  );
  expect(errors).toEqual([]);
});

test('open a dump from disk; a damaged link says why and still opens the app', async ({ page }) => {
  const errors = consoleErrors(page);
  await page.goto('/?test=1&state=not-a-real-state');
  await idle(page);
  await expect(page.getByRole('status').filter({ hasText: 'Ignored the link' })).toContainText(
    'state parameter',
  );
  await expect(page.getByTestId('graph-view').first()).toBeVisible();

  await page
    .getByLabel('Graph file')
    .setInputFiles(fileURLToPath(new URL('../fixtures/fx/real/qwen2-paral4_layer1-r0.py', import.meta.url)));
  await idle(page);
  await expect(page.getByLabel('Sample')).toHaveValue('');
  await expect(page.getByText('qwen2-paral4_layer1-r0.py').first()).toBeVisible();
  await expect(fusable(page)).toHaveText(/^3\s*fusable sites$/);
  // The world size comes from the graph when a file states none: vLLM's default, 4.
  await expect(page.getByLabel('World size')).toHaveValue('');
  expect(errors).toEqual([]);
});

test('keyboard: apply with Enter, undo and redo with shortcuts, arrow keys through the tabs', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  const hoistCount = page.getByLabel('slice-hoist sites', { exact: true });
  await expect(hoistCount).toHaveText('1');
  await page.getByRole('button', { name: 'Apply slice-hoist' }).focus();
  await page.keyboard.press('Enter');
  await expect(hoistCount).toHaveText('0');
  await expect(fusable(page)).toHaveText(/^3\s*fusable sites$/);
  await page.locator('body').click({ position: { x: 640, y: 710 } });
  await page.keyboard.press('Control+z');
  await expect(hoistCount).toHaveText('1');
  await page.keyboard.press('Control+Shift+Z');
  await expect(hoistCount).toHaveText('0');

  await page.getByRole('tab', { name: 'Source' }).focus();
  await page.keyboard.press('ArrowRight');
  await expect(page.getByRole('tab', { name: 'Run' })).toBeFocused();
  await expect(page.getByRole('tab', { name: 'Run' })).toHaveAttribute('aria-selected', 'true');
  await page.keyboard.press('ArrowLeft');
  await expect(page.getByRole('tab', { name: 'Source' })).toHaveAttribute('aria-selected', 'true');

  const splitter = page.getByRole('separator', { name: 'Resize the details panel' });
  const before = Number(await splitter.getAttribute('aria-valuenow'));
  const panelHeight = async () => (await page.getByRole('region', { name: 'Details' }).boundingBox())!.height;
  const h0 = await panelHeight();
  await splitter.focus();
  await page.keyboard.press('ArrowUp');
  await expect(splitter).toHaveAttribute('aria-valuenow', String(before + 24));
  expect(await panelHeight()).toBeCloseTo(h0 + 24, 0);
});

test('a link to a sample this build does not have names it and opens the default', async ({ page }) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Sample').selectOption({ label: 'Qwen2-1.5B · 1 layer · TP4 (real dump)' });
  await idle(page);
  // Rewrite the sample id inside the link's compressed state, as an older or newer build might have it.
  const link = await page.evaluate(async () => {
    const url = new URL(location.href);
    const bytes = Uint8Array.from(
      atob(url.searchParams.get('state')!.replace(/-/g, '+').replace(/_/g, '/')),
      (c) => c.charCodeAt(0),
    );
    const json = await new Response(
      new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate')),
    ).text();
    const state = JSON.parse(json);
    state.source = { sample: 'qwen3-tp4' };
    const packed = new Uint8Array(
      await new Response(
        new Blob([JSON.stringify(state)]).stream().pipeThrough(new CompressionStream('deflate')),
      ).arrayBuffer(),
    );
    url.searchParams.set(
      'state',
      btoa(String.fromCharCode(...packed))
        .replace(/\+/g, '-')
        .replace(/\//g, '_')
        .replace(/=+$/, ''),
    );
    return url.toString();
  });
  await page.goto(link);
  await idle(page);
  await expect(page.getByRole('status').filter({ hasText: 'No built-in sample' })).toContainText(
    '"qwen3-tp4"',
  );
  await expect(page.getByLabel('Sample')).toHaveValue('gpt-oss-20b-l1-tp4');
});

test('broken FX text shows the error at its line and column', async ({ page }) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByRole('button', { name: 'Paste FX…' }).click();
  const editor = page.getByLabel('FX source');
  await editor.fill(
    [
      'slice_1: "bf16[s72, 2880]" = torch.ops.aten.slice.Tensor(getitem, 1, 0, 2880)',
      'all_reduce_1: "bf16[s72, 2880]" = torch.ops.vllm.all_reduce.default(slice_1, \'tp:0\'',
      'getitem_2: "bf16[s72, 2880]" = all_reduce_1[0]',
    ].join('\n'),
  );
  await page.getByRole('button', { name: 'Import' }).click();
  const banner = page.getByTestId('import-error');
  await expect(banner).toContainText('line 2');
  await expect(page.locator('.code-line.error-line')).toHaveAttribute('data-line', '2');
  // The graph that was loaded before stays on screen.
  await expect(page.getByTestId('graph-view').first()).toBeVisible();
  await page.getByRole('button', { name: 'Edit text' }).click();
  await expect(editor).toHaveValue(/all_reduce_1/);
});

test('the tour walks through its steps, each highlighting the node its text describes, with numbers from the run', async ({
  page,
}) => {
  test.setTimeout(300_000);
  await page.goto('/?test=1');
  await idle(page);
  await page.getByRole('button', { name: 'Tour' }).click();
  const tour = page.getByRole('dialog');
  const body = page.locator('#tour-body');
  /** The selected node is on screen in some view. */
  const shown = async () => {
    const name = (await page.getByTestId('inspector-name').textContent())!;
    await idle(page);
    const c = await page.evaluate((n) => window.__fusionlab!.nodeCenter!(n), name);
    expect(c, `${name} is laid out`).not.toBeNull();
    const vp = page.viewportSize()!;
    expect(c!.x > 0 && c!.x < vp.width && c!.y > 0 && c!.y < vp.height, `${name} on screen`).toBe(true);
  };
  await expect(tour).toContainText('Step 1 of 7');
  await expect(body).toContainText('pads each row to 3072 columns');
  await expect(page.getByTestId('inspector-op')).toHaveText('aten.constant_pad_nd.default');
  await expect(page.getByTestId('inspector-type')).toHaveText(/^bf16\[s72, 3072\]$/);
  await shown();

  await tour.getByRole('button', { name: 'Next' }).click();
  await expect(tour).toContainText('Step 2 of 7');
  // "sums the 3072-wide partials": the MoE all-reduce, not the embedding's 2880-wide one.
  await expect(body).toContainText('3072-wide partials');
  await expect(page.getByTestId('inspector-op')).toHaveText('vllm.all_reduce.default');
  await expect(page.getByTestId('inspector-type')).toHaveText(/^bf16\[s72, 3072\]$/);
  await shown();

  await tour.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByTestId('inspector-op')).toHaveText('aten.slice.Tensor');
  await expect(page.getByTestId('inspector-type')).toHaveText(/^bf16\[s72, 2880\]$/);
  await shown();
  await tour.getByRole('button', { name: 'Next' }).click();
  await expect(tour).toContainText('Step 4 of 7');
  await expect(page.getByTestId('fusable-sites')).toHaveText(/^3\s*fusable sites$/);
  await expect(page.getByTestId('inspector-op')).toHaveText('aten.slice.Tensor');
  await shown();

  // The fused site the hoist freed: its allreduce_in is the hoisted slice.
  await tour.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByTestId('inspector-op')).toHaveText(
    'vllm.flashinfer_trtllm_fused_allreduce_norm.default',
  );
  await expect(page.getByTestId('inspector-args').locator('tr', { hasText: 'allreduce_in' })).toContainText(
    'slice',
  );
  await shown();

  await tour.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByRole('tab', { name: 'Run' })).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByLabel('Preset')).toHaveValue('tiny');
  await expect(page.getByLabel('Ranks')).toHaveValue('2');
  // The step runs both graphs and quotes the run: its ulps are the Results table's.
  await expect(body).toContainText('This run: the exact check is bitwise equal.', { timeout: 240_000 });
  const quoted = Number((await body.textContent())!.match(/at most (\d+) bf16 ulps?/)![1]);
  await page.getByRole('tab', { name: 'Results' }).click();
  const ulps = (
    await page.getByRole('table', { name: 'Outputs' }).locator('tbody tr td:nth-child(4)').allTextContents()
  ).map(Number);
  expect(quoted).toBe(Math.max(...ulps));

  await tour.getByRole('button', { name: 'Next' }).click();
  await expect(tour).toContainText('Step 7 of 7');
  await expect(page.getByRole('tab', { name: 'Cost model' })).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByLabel('Hardware', { exact: true })).toHaveValue('B200-NVLink');
  // Not the PR's TP8: with the tour's run present, the cost model predicts for that run's own 2
  // ranks, as every tab speaks of the one run shown.
  await expect(page.getByTestId('cost-table')).toContainText('predicted on B200-NVLink, TP2');
  // Figures of the loaded 1-layer sample, not the 24-layer ones alone.
  await expect(body).toContainText('In this 1-layer sample 2 sites fuse before the change and 3 after');
  await tour.getByRole('button', { name: 'Finish' }).click();
  await expect(tour).toBeHidden();
});

test('the URL keeps graph, rewrite steps and selection across a reload', async ({ page }) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByLabel('Sample').selectOption({ label: 'Qwen2-1.5B · 1 layer · TP2 (real dump)' });
  await idle(page);
  await expect(fusable(page)).toHaveText(/^3\s*fusable sites$/);
  await page.getByRole('button', { name: 'Apply allreduce-rmsnorm' }).click();
  await idle(page);
  const after = page.getByTestId('graph-view').last();
  await after.locator('g[data-kind="fused"]').first().click();
  const selected = await page.getByTestId('inspector-name').textContent();
  await idle(page);
  expect(page.url()).toContain('state=');

  await page.reload();
  await idle(page);
  await expect(page.getByLabel('Sample')).toHaveValue('qwen2-tp2');
  await expect(page.getByTestId('fused-nodes')).toHaveText(/^3\s*fused nodes$/);
  await expect(page.getByTestId('inspector-name')).toHaveText(selected!);
});

/** The state a page's URL carries (query or fragment), decoded as the app does. */
function stateOf(href: string): UrlState | null {
  const url = new URL(href);
  const encoded = url.searchParams.get('state') ?? new URLSearchParams(url.hash.slice(1)).get('state');
  const state: UrlState | null = encoded
    ? JSON.parse(inflateSync(Buffer.from(encoded, 'base64url')).toString('utf8'))
    : null;
  // Where the views look rides beside the state, in its own parameter.
  const view = url.searchParams.get(URL_VIEW_PARAM);
  return state && view !== null
    ? { ...state, view: { ...state.view, centre: parseViewCentre(view) } }
    : state;
}

/** Where a node sits relative to the centre of a view (px), and the view's zoom. */
async function offCentre(page: Page, name: string, label: string) {
  return page.evaluate(
    ([n, l]) => {
      const v = window.__fusionlab!.views!().find((h) => h.root.dataset.label === l);
      const c = v?.nodeCenter(n);
      if (!v || !c) return null;
      // Measured from the centre of what is visible: the area the view's chrome leaves clear.
      const r = v.root.getBoundingClientRect(),
        a = v.clearArea();
      return {
        dx: c.x - (r.left + a.x + a.w / 2),
        dy: c.y - (r.top + a.y + a.h / 2),
        k: v.transform().k,
        w: a.w,
        h: a.h,
      };
    },
    [name, label] as const,
  );
}

test('a shared link opens on the pan/zoom it was made at, in another window size and after a reload', async ({
  page,
  browser,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByRole('button', { name: 'Apply slice-hoist' }).click();
  await idle(page);
  const entries = await page.evaluate(() => history.length);
  // A drag moves the URL's centre once the view rests, without a history entry per frame.
  const box = (await page.getByTestId('graph-view').last().boundingBox())!;
  // The first view is reported too (it rests once laid out).
  await expect.poll(() => stateOf(page.url())?.view?.centre).toBeDefined();
  const startCentre = stateOf(page.url())!.view!.centre;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++)
    await page.mouse.move(box.x + box.width / 2 - 8 * i, box.y + box.height / 2 - 12 * i);
  await page.mouse.up();
  await expect.poll(() => stateOf(page.url())?.view?.centre).not.toEqual(startCentre);
  expect(await page.evaluate(() => history.length)).toBe(entries);
  // Centre the after view on all_reduce_2 at zoom 1.5, as a pan and a zoom would.
  await page.evaluate(() => {
    const v = window.__fusionlab!.views!().find((h) => h.root.dataset.label === 'after')!;
    const n = v.layout.nodes.find((m) => m.name === 'all_reduce_2')!;
    const a = v.clearArea();
    v.setView({ x: a.x + a.w / 2 - (n.x + n.w / 2) * 1.5, y: a.y + a.h / 2 - (n.y + n.h / 2) * 1.5, k: 1.5 });
  });
  // The URL follows once the view rests.
  await expect
    .poll(() => stateOf(page.url())?.view?.centre)
    .toMatchObject({ node: 'all_reduce_2', dx: 0, dy: 0, k: 1.5 });
  const link = page.url();

  const other = await browser.newPage({ viewport: { width: 1000, height: 820 } });
  await other.goto(link);
  await idle(other);
  const opened = await offCentre(other, 'all_reduce_2', 'after');
  expect(Math.abs(opened!.dx)).toBeLessThan(1);
  expect(Math.abs(opened!.dy)).toBeLessThan(1);
  expect(opened!.k).toBeCloseTo(1.5, 3);
  // The before side shares the after side's translate (the panes' own sync): it shows the same place
  // up to the hoist's shift and the panes' size difference, so the node is in its view, at the same zoom.
  const beside = await offCentre(other, 'all_reduce_2', 'before');
  expect(Math.abs(beside!.dx)).toBeLessThan(beside!.w / 2);
  expect(Math.abs(beside!.dy)).toBeLessThan(beside!.h / 2);
  expect(beside!.k).toBeCloseTo(1.5, 3);
  await other.reload();
  await idle(other);
  const reloaded = await offCentre(other, 'all_reduce_2', 'after');
  expect(Math.abs(reloaded!.dx)).toBeLessThan(1);
  expect(Math.abs(reloaded!.dy)).toBeLessThan(1);
  expect(reloaded!.k).toBeCloseTo(1.5, 3);
  // The view alone opens where the pair looked.
  await other.getByRole('button', { name: 'Current', exact: true }).click();
  await idle(other);
  const alone = await offCentre(other, 'all_reduce_2', 'stage 1');
  expect(Math.abs(alone!.dx)).toBeLessThan(1);
  expect(Math.abs(alone!.dy)).toBeLessThan(1);
  expect(alone!.k).toBeCloseTo(1.5, 3);

  // A centre on a node the graph lacks: said so, and the graph opens at its first view.
  const state = stateOf(link)!;
  state.view!.centre!.node = 'no_such_node';
  await other.goto(`/?test=1&state=${deflateSync(Buffer.from(JSON.stringify(state))).toString('base64url')}`);
  await idle(other);
  await expect(other.getByRole('status').filter({ hasText: 'Ignored the link' })).toContainText(
    'state.view.centre.node "no_such_node" is not a node of',
  );
  await expect(other.getByTestId('graph-view').last()).toBeVisible();
  await other.close();
});

test("a link's view holds until the user rewrites: then the view follows the change", async ({ page }) => {
  await page.goto('/?test=1');
  await idle(page);
  // The graph's first node, far above the slice the hoist moves.
  const top = await page.evaluate(() => window.__fusionlab!.views!()[0].layout.nodes[0].name);
  const state: UrlState = {
    v: 1,
    source: { sample: 'gpt-oss-20b-l1-tp4' },
    steps: [],
    view: { layout: 'single', centre: { node: top, dx: 0, dy: 0, k: 1.25 } },
  };
  await page.goto(`/?test=1&state=${deflateSync(Buffer.from(JSON.stringify(state))).toString('base64url')}`);
  await idle(page);
  const opened = await offCentre(page, top, 'imported');
  expect(Math.abs(opened!.dx)).toBeLessThan(1);
  expect(Math.abs(opened!.dy)).toBeLessThan(1);
  expect(opened!.k).toBeCloseTo(1.25, 3);

  await page.getByRole('button', { name: 'Apply slice-hoist' }).click();
  await idle(page);
  // The node now at the centre is one the rewrite changed, and the link's node has left it.
  const centred = await page.evaluate(() => {
    const v = window.__fusionlab!.views!().find((h) => h.root.dataset.label === 'stage 1')!;
    const r = v.root.getBoundingClientRect();
    const name = v.nodeAt(r.left + r.width / 2, r.top + r.height / 2);
    return { name, mark: name ? v.marks?.get(name) : undefined };
  });
  expect(centred.mark, `${centred.name} at the centre`).toBeDefined();
  expect(centred.name).not.toBe(top);
});

test('the URL carries pasted text too, compressed, with its rewrite steps', async ({ page }) => {
  await page.goto('/?test=1');
  await idle(page);
  await page.getByRole('button', { name: 'Paste FX…' }).click();
  await page
    .getByLabel('FX source')
    .fill(readFileSync(new URL('../fixtures/fx/seed/pr28841-before.fragment.txt', import.meta.url), 'utf8'));
  await page.getByRole('button', { name: 'Import' }).click();
  await idle(page);
  await page.getByRole('button', { name: 'Apply slice-hoist' }).click();
  await idle(page);
  await expect(fusable(page)).toHaveText(/^1\s*fusable sites$/);

  await page.reload();
  await idle(page);
  await expect(page.getByText('pasted.py').first()).toBeVisible();
  await expect(fusable(page)).toHaveText(/^1\s*fusable sites$/);
  await expect(page.getByLabel('Rewrite stage')).toHaveValue('1');
});
