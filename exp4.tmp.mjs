import { chromium } from '@playwright/test';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
const PORT = 4793;
const srv = spawn('npx', ['vite','preview','--outDir','/tmp/fx/app','--port',String(PORT),'--strictPort'], {stdio:'ignore', detached:true, cwd:'/work/main'});
await new Promise(r=>setTimeout(r,3000));
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox','--enable-unsafe-webgpu','--enable-features=Vulkan','--use-angle=swiftshader','--font-render-hinting=none','--disable-background-timer-throttling','--disable-renderer-backgrounding'] });
const which = process.argv[2] || 'rewrite';
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  await page.addInitScript(`(() => { window.__tasks = []; new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__tasks.push(e.duration); }).observe({ type: 'longtask', buffered: true }); })()`);
  await page.goto(`http://127.0.0.1:${PORT}/?test=1`);
  const ready = () => page.waitForSelector('body[data-ready="true"]', { timeout: 600_000 });
  await ready();
  if (which === 'load') await browser.startTracing(page, { path: '/tmp/fx/trace4.json', categories: ['devtools.timeline','blink','toplevel','v8', 'disabled-by-default-devtools.timeline','disabled-by-default-v8.cpu_profiler'] });
  await page.evaluate('window.__tasks = []');
  await page.selectOption('#sample-select', 'gpt-oss-20b-l300-tp4'); await ready();
  console.log('load tasks', JSON.stringify(await page.evaluate('window.__tasks.map(Math.round)')));
  if (which === 'rewrite') await browser.startTracing(page, { path: '/tmp/fx/trace4.json', categories: ['devtools.timeline','blink','toplevel','v8', 'disabled-by-default-devtools.timeline','disabled-by-default-v8.cpu_profiler'] });
  await page.evaluate('window.__tasks = []');
  await page.click('button:has-text("Run pipeline")'); await ready();
  console.log('rewrite tasks', JSON.stringify(await page.evaluate('window.__tasks.map(Math.round)')));
  await browser.stopTracing();
} finally { await browser.close(); process.kill(-srv.pid); }
const tr = JSON.parse(readFileSync('/tmp/fx/trace4.json','utf8'));
const ev = tr.traceEvents ?? tr;
const threads = new Map();
for (const e of ev) if (e.ph==='M' && e.name==='thread_name') threads.set(e.pid+':'+e.tid, e.args.name);
const onMain = (e)=>threads.get(e.pid+':'+e.tid)==='CrRendererMain';
const main = ev.filter(e=>onMain(e) && e.ph==='X' && e.name==='ThreadControllerImpl::RunTask' && e.dur>40000);
const kids = ev.filter(e=>onMain(e) && e.ph==='X' && e.dur>5000 && !/RunTask/.test(e.name));
// profile samples: aggregate self time by function within long tasks using ProfileChunk
const chunks = ev.filter(e=>e.name==='ProfileChunk' && onMain(e));
const nodes = new Map(); const samples=[]; 
const big = main.sort((a,b)=>b.dur-a.dur)[0]; const prof = ev.find(e=>e.name==='Profile' && onMain(e)); let t = prof? prof.args.data.startTime : 0;
for (const c of chunks) { const d=c.args?.data?.cpuProfile; if(!d) continue; for (const n of d.nodes||[]) nodes.set(n.id, n); const td=c.args.data.timeDeltas||[]; (d.samples||[]).forEach((s,i)=>{ t += td[i]||0; if (big && t>=big.ts && t<=big.ts+big.dur) samples.push(s); }); }
const parentOf=new Map(); for (const n of nodes.values()) for (const c of n.children||[]) parentOf.set(c,n.id);
const incl=new Map(); for (const s of samples){ const seen=new Set(); let id=s; while(id!==undefined){ const n=nodes.get(id); if(!n) break; const k=(n.callFrame.functionName||'(anon)')+':'+n.callFrame.lineNumber; if(!seen.has(k)){seen.add(k); incl.set(k,(incl.get(k)||0)+1);} id=parentOf.get(id);} }
console.log('INCL', [...incl].sort((a,b)=>b[1]-a[1]).slice(0,40).map(([k,v])=>v+' '+k).join('\n'));
for (const m of main) { console.log('TASK', (m.dur/1000).toFixed(1), kids.filter(k=>k.ts>=m.ts&&k.ts+k.dur<=m.ts+m.dur).slice(0,12).map(k=>k.name+':'+(k.dur/1000).toFixed(0)+(k.args?.data?.functionName? '('+k.args.data.functionName+')':'')).join(' ')); }
const self = new Map(); for (const s of samples) { const n=nodes.get(s); const k=n? (n.callFrame.functionName||'(anon)')+' '+(n.callFrame.url||'').split('/').pop()+':'+n.callFrame.lineNumber : '?'; self.set(k,(self.get(k)||0)+1); }
console.log([...self].sort((a,b)=>b[1]-a[1]).slice(0,25).map(([k,v])=>v+' '+k).join('\n'));
