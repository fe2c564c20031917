// Screenshots of the graph views, to look at while working on how they look:
//   node bench/ui-screenshots.mjs OUT_DIR '[["name", "query", "optional js to run first"], …]'
// e.g. '[["before", "layers=24&test=1"], ["diff", "layers=24&show=diff&test=1"]]' (the query is
// bench/ui-page.html's). W and H set the viewport (default 1280×720).
import { chromium } from '@playwright/test';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [outDir, spec] = process.argv.slice(2);
if (!outDir || !spec) {
  process.stderr.write('usage: node bench/ui-screenshots.mjs OUT_DIR \'[["name","query","js"],…]\'\n');
  process.exit(2);
}
const shots = JSON.parse(spec);
mkdirSync(outDir, { recursive: true });
const dist = mkdtempSync(join(tmpdir(), 'fusionlab-shots-'));
const build = spawnSync(
  'npx',
  [
    'vite',
    'build',
    '--config',
    'bench/vite.ui.config.ts',
    '--outDir',
    dist,
    '--emptyOutDir',
    '--logLevel',
    'warn',
  ],
  { encoding: 'utf8' },
);
if (build.status !== 0) {
  process.stderr.write(build.stderr);
  process.exit(1);
}
const port = 4738;
const server = spawn(
  'npx',
  [
    'vite',
    'preview',
    '--config',
    'bench/vite.ui.config.ts',
    '--outDir',
    dist,
    '--port',
    String(port),
    '--strictPort',
  ],
  { stdio: 'ignore', detached: true },
);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--font-render-hinting=none'],
});
try {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/bench/ui-page.html`)).ok) break;
    } catch {
      /* starting */
    }
    if (i > 100) throw new Error(`vite preview did not answer on port ${port}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const page = await browser.newPage({
    viewport: { width: Number(process.env.W ?? 1280), height: Number(process.env.H ?? 720) },
  });
  page.on('console', (m) => {
    if (m.type() === 'error') process.stdout.write(`console: ${m.text()}\n`);
  });
  page.on('pageerror', (e) => process.stdout.write(`page error: ${e.message}\n`));
  for (const [name, query, js] of shots) {
    await page.goto(`http://127.0.0.1:${port}/bench/ui-page.html?${query}`);
    await page.waitForSelector('[data-testid="graph-view"][data-ready="true"]', { timeout: 60_000 });
    if (js) await page.evaluate(js);
    await page.waitForTimeout(400);
    await page.screenshot({ path: join(outDir, `${name}.png`) });
    process.stdout.write(
      `${join(outDir, `${name}.png`)} ${JSON.stringify(await page.evaluate('window.__bench'))}\n`,
    );
  }
} finally {
  await browser.close();
  process.kill(-server.pid);
  rmSync(dist, { recursive: true, force: true });
}
