// Numbers a decision can rest on (issue 24, items 1–5), on one GPT-OSS-20B layer at TP4 run on the
// CPU reference with 2 ranks: |Δ| and selection pair nodes by provenance; the cost model measures
// the nodes the rewrite changed apart from the rest and calls a change only beyond their spread;
// the verdict says what is proven apart from what the fused kernel changes; every tab names the one
// run it shows; long work shows its progress in the status bar and on the tab.

import { test, expect, type Page } from '@playwright/test';
import { parseFx } from '../src/graph/fx/parse.ts';
import { generateSample } from '../src/graph/samples/index.ts';
import { DEFAULT_PIPELINE, runPipeline } from '../src/graph/passes/pipeline.ts';
import { diffGraphs } from '../src/graph/diff.ts';
import { idle, runSampleOnCpu } from './appPage.ts';

const pane = (page: Page, label: 'before' | 'after') =>
  page.locator(`[data-testid="graph-view"][data-label="${label}"]`);

/** The fused first-layer site's two results, as the pipeline names them: [1] the sum, [3] the normed output. */
function fusedResults() {
  const before = parseFx(generateSample('gpt-oss-20b', { layers: 1, tp: 4 })).graph;
  const r = runPipeline(before, DEFAULT_PIPELINE, { worldSize: 4 });
  const d = diffGraphs(
    before,
    r.output,
    r.stages.flatMap((s) => s.matches),
  );
  const fused = r.output.nodes.find((n) => d.after.get(n.name) === 'fused' && n.kwargs['norm_out'] !== null)!;
  const result = (i: number) =>
    r.output.nodes.find(
      (n) => n.op === 'getitem' && (n.args[0] as { name: string }).name === fused.name && n.args[1] === i,
    )!.name;
  return { sum: result(1), normed: result(3) };
}

async function selectIn(page: Page, label: 'before' | 'after', name: string) {
  await page.evaluate(
    ([l, n]) =>
      window.__fusionlab!.views!()
        .find((v) => v.root.dataset.label === l)!
        .centerOn(n),
    [label, name],
  );
  await idle(page);
  await pane(page, label).locator(`[data-node="${name}"]`).click();
}

/** One GPT-OSS-20B layer at TP4 through the pipeline, run on the CPU reference with 2 ranks. */
async function runLayer(page: Page) {
  await page.goto('/?test=1');
  await idle(page);
  await runSampleOnCpu(page, 'GPT-OSS-20B · 1 layer · TP4', 120_000);
}

test('one run, its numbers read right in every tab', async ({ page }) => {
  test.setTimeout(300_000);
  await runLayer(page);

  // 3. What is proven, and apart from it, what the fused kernel changes per site and through the graph.
  await expect(page.getByTestId('run-verdict')).toHaveText(
    /^proven: the rewrite computes the same function under the same rounding \(all \d+ outputs bitwise equal with the fused norms rounded as the unfused pair\)$/,
  );
  await expect(page.getByTestId('run-verdict')).not.toContainText('ulps');
  await expect(page.getByTestId('fused-change')).toHaveText(
    /^what the fused kernel changes: it rounds the norm once where the unfused pair rounds twice; per site \d ulps? \(the first fused site, auto_functionalized_\d+, measured alone\); through the graph up to \d+ ulps?, max rel \S+ \(\d+ fused sites in series: each starts from values the one before moved, and the GEMMs between them amplify it; reported, not gated\)$/,
  );

  // 4. Every tab names the same run and method; the Timeline shows a timed run, not the warm-up.
  const run = 'run 1: cpu, 2 ranks, tiny';
  await page.getByRole('tab', { name: 'Results' }).click();
  await expect(page.getByTestId('run-verdict')).toHaveText(/^proven: the rewrite computes/);
  await expect(page.getByTestId('timing-method')).toContainText(`${run} · per node and rank: median of 3`);
  await page.getByRole('tab', { name: 'Timeline' }).click();
  await expect(page.getByTestId('timeline-run')).toHaveText(
    new RegExp(
      `^${run} · median of 3 timed runs after a warm-up · showing the median run of each side \\(before: timed run [123] of 3, after: timed run [123] of 3\\)$`,
    ),
  );
  await page.getByRole('tab', { name: 'Cost model' }).click();
  // The prediction is for the run's 2 ranks, not the graph's world size 4.
  await expect(page.getByTestId('cost-table')).toContainText('TP2');
  await expect(page.getByLabel('TP degree')).toContainText("the run's ranks (2)");
  const measured = page.getByTestId('cost-measured');
  await expect(measured).toContainText(`measured, ${run} · median of 3 timed runs after a warm-up`);

  // 2. The rewrite's own nodes apart from the untouched ones, each with its spread, called or not.
  const changed = page.getByTestId('measured-changed');
  await expect(changed).toContainText(/^nodes the rewrite changed \(\d+ → \d+\)/);
  const call = await changed.getAttribute('data-call');
  expect(['faster', 'slower', 'within the run-to-run spread']).toContain(call);
  await expect(changed.locator('td').nth(3)).toHaveText(
    call === 'within the run-to-run spread' ? call : new RegExp(`^[+−-]?[\\d.]+ % \\(${call}\\)$`),
  );
  await expect(changed.locator('td').nth(1)).toHaveText(/^[\d.]+ \([\d.]+–[\d.]+\)$/);
  await expect(page.getByTestId('measured-rest')).toContainText(/^untouched nodes \(\d+\), apart/);
});

test("|Δ| and selection pair the fused op's results by provenance, never by index", async ({ page }) => {
  test.setTimeout(300_000);
  const { sum, normed } = fusedResults();
  await runLayer(page);
  await page.getByLabel('Colour by').selectOption('delta');
  await idle(page, 120_000);

  // The fused op's [1] holds the all-reduced sum: it is compared with the all-reduce, and
  // selecting it highlights the all-reduce (not the norm's output, which shares its index).
  await selectIn(page, 'after', sum);
  await expect(page.getByTestId('inspector-counterpart')).toHaveText('vs before: all_reduce');
  await expect(pane(page, 'before').locator('[data-node="all_reduce"]')).toHaveAttribute(
    'data-selected',
    'true',
  );
  await expect(page.getByTestId('inspector-overlay')).toHaveText(/^[\d.e+-]+$/);
  // Its [3] is the normed output: the norm's output is its counterpart, with a value.
  await selectIn(page, 'after', normed);
  await expect(page.getByTestId('inspector-counterpart')).toHaveText(`vs before: ${normed}`);
  await expect(page.getByTestId('inspector-overlay')).not.toHaveText('no data');
  // A node the rewrite made from nothing before says so.
  const zeros = (await pane(page, 'after')
    .locator('[data-node^="zeros_like"]')
    .first()
    .getAttribute('data-node'))!;
  await selectIn(page, 'after', zeros);
  await expect(page.getByTestId('inspector-counterpart')).toHaveText('no counterpart before the rewrite');
});

test('a long run shows its progress in the status bar and on its tab, and Stop there cancels it', async ({
  page,
}) => {
  await page.goto('/?test=1');
  await idle(page);
  test.setTimeout(240_000);
  await page.getByLabel('Sample').selectOption({ label: 'Llama-3.1-8B-style · 32 layers · TP4' });
  await idle(page, 120_000);
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await idle(page, 120_000);
  await page.getByRole('tab', { name: 'Run' }).click();
  await page.getByLabel('Backend').selectOption('cpu');
  await page.getByRole('button', { name: 'Run before & after' }).click();
  const status = page.locator('footer.statusbar');
  // Never "Ready" while it runs: after a second the bar says what, how far, and how long is left.
  await expect(status.getByTestId('busy-status')).toContainText(/^Running before & after: .+ · [\d.]+ %/);
  await expect(status).not.toContainText('Ready');
  await expect(status.getByTestId('busy-status')).toContainText(
    / · (about \d+ (s|min|h)|under a second) left/,
    {
      timeout: 60_000,
    },
  );
  await page.getByRole('tab', { name: 'Results' }).click();
  await expect(page.getByTestId('tab-badge-run')).toContainText(/\d+ %/);
  await status.getByRole('button', { name: /^Stop: Running before & after/ }).click();
  await expect(status).toContainText('Run cancelled');
  await expect(page.getByTestId('tab-badge-run')).toHaveCount(0);
});
