import { chromium } from '@playwright/test';
import { spawn } from 'node:child_process';
const PORT = 4794;
const srv = spawn('npx', ['vite','preview','--outDir','/tmp/fx/app','--port',String(PORT),'--strictPort'], {stdio:'ignore', detached:true, cwd:'/work/main'});
await new Promise(r=>setTimeout(r,3000));
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox','--enable-unsafe-webgpu','--enable-features=Vulkan','--use-angle=swiftshader','--font-render-hinting=none','--disable-background-timer-throttling','--disable-renderer-backgrounding'] });
const which = process.argv[2] || 'rewrite';
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  await page.addInitScript(`(() => { window.__tasks = []; new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__tasks.push([Math.round(e.startTime), Math.round(e.duration)]); }).observe({ type: 'longtask', buffered: true }); })()`);
  await page.goto(`http://127.0.0.1:${PORT}/?test=1`);
  const ready = () => page.waitForSelector('body[data-ready="true"]', { timeout: 600_000 });
  await ready();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable'); await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
  if (which==='load') await cdp.send('Profiler.start');
  await page.evaluate('window.__tasks = []');
  await page.selectOption('#sample-select', 'gpt-oss-20b-l300-tp4'); await ready();
  console.log('load tasks', JSON.stringify(await page.evaluate('window.__tasks')));
  if (which==='rewrite') await cdp.send('Profiler.start');
  await page.evaluate('window.__tasks = []');
  await page.click('button:has-text("Run pipeline")'); await ready();
  const tasks = await page.evaluate('window.__tasks');
  console.log('rewrite tasks', JSON.stringify(tasks));
  const { profile } = await cdp.send('Profiler.stop');
  const nodes = new Map(profile.nodes.map(n=>[n.id,n])); const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children||[]) parent.set(c, n.id);
  // restrict to the longest task window: sample timestamps are in µs on the profile clock; align by startTime ~ performance.timeOrigin? use all samples
  const incl = new Map(), self = new Map(); let t = profile.startTime;
  profile.samples.forEach((s, i) => { const dt = profile.timeDeltas[i] / 1000; const seen = new Set(); let id = s; let first = true;
    while (id !== undefined) { const n = nodes.get(id); const k = (n.callFrame.functionName || '(anon)') + ' ' + n.callFrame.url.split('/').pop() + ':' + n.callFrame.lineNumber; if (first) { self.set(k, (self.get(k)||0)+dt); first=false; } if (!seen.has(k)) { seen.add(k); incl.set(k, (incl.get(k)||0)+dt); } id = parent.get(id); } });
  console.log('INCL\n' + [...incl].sort((a,b)=>b[1]-a[1]).filter(([k])=>!/^\((root|program|idle)\)/.test(k)).slice(0,45).map(([k,v])=>v.toFixed(0).padStart(6)+' '+k).join('\n'));
  console.log('SELF\n' + [...self].sort((a,b)=>b[1]-a[1]).slice(0,20).map(([k,v])=>v.toFixed(0).padStart(6)+' '+k).join('\n'));
} finally { await browser.close(); process.kill(-srv.pid); }
