import { chromium } from '@playwright/test';
import { spawn } from 'node:child_process';
const server = spawn('npx', ['vite', 'preview', '--config', 'bench/vite.ui.config.ts', '--outDir', '/tmp/fl/dist', '--port', '4199', '--strictPort'], { cwd: '/work/main', stdio: 'ignore', detached: true });
await new Promise(r => setTimeout(r, 2500));
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--enable-unsafe-webgpu', '--font-render-hinting=none'] });
try {
  const page = await browser.newPage({ viewport: { width: Number(process.env.W ?? 1280), height: Number(process.env.H ?? 720) } });
  page.on('console', m => { if (m.type() === 'error') console.log('console:', m.text()); });
  page.on('pageerror', e => console.log('pageerror:', e.message));
  const shots = JSON.parse(process.argv[2]);
  for (const [name, q, js] of shots) {
    await page.goto(`http://127.0.0.1:4199/bench/ui-page.html?${q}`);
    await page.waitForSelector('[data-testid="graph-view"][data-ready="true"]', { timeout: 60000 });
    if (js) await page.evaluate(js);
    await page.waitForTimeout(400);
    await page.screenshot({ path: `/tmp/fl/shots/${name}.png` });
    console.log(name, JSON.stringify(await page.evaluate(() => window.__bench)));
  }
} finally {
  await browser.close();
  process.kill(-server.pid);
}
