// Driver of `npm run bench -- agent` (plain Node, no dependencies, so it runs on the GPU host
// as is). It runs the native worker's `--bench` mode and torch.distributed's all-reduce on the
// same GPUs, and prints ratios against ceilings measured in the same run:
//   NCCL all-reduce bus bandwidth, native ÷ torch.distributed   (target ≥ 0.95 from 64 MiB)
//   NCCL all-reduce + fused add+RMSNorm time ÷ one-shot fused time   (> 1: the fused kernel wins)
//   add+RMSNorm bandwidth ÷ device-to-device copy bandwidth   (target ≥ 0.85)
// Usage: node agent/bench.mjs [--world N] [--json FILE] [--skip-torch]
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWorker } from './build.mjs';

const here = dirname(fileURLToPath(import.meta.url));

function jsonLines(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('close', (code) => {
      const rows = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`));
      else resolve(rows);
    });
  });
}

const mib = (b) => `${b / 2 ** 20} MiB`;
const pad = (s, n) => String(s).padStart(n);

export async function runAgentBench(argv = []) {
  const opt = (k) => { const i = argv.indexOf(k); return i >= 0 ? argv[i + 1] : undefined; };
  const worker = buildWorker();
  if (worker.mode !== 'cuda') {
    process.stderr.write('fusionlab bench agent: needs the CUDA worker (nvcc, cuBLAS and NCCL) and a GPU; this machine has neither\n');
    return 2;
  }
  const world = opt('--world');
  const native = await jsonLines(worker.path, ['--bench', ...(world ? ['--world', world] : [])]);
  const dev = native.find((r) => r.section === 'device');
  if (!dev) { process.stderr.write('fusionlab bench agent: the worker found no CUDA device\n'); return 2; }
  const torch = argv.includes('--skip-torch') ? [] : await jsonLines('python3', [join(here, '..', 'bench', 'torch_allreduce.py'), String(dev.world)]);
  const lines = [];
  const say = (l = '') => { lines.push(l); process.stdout.write(`${l}\n`); };
  say(`agent bench on ${dev.world}× ${dev.gpu} (CUDA ${dev.cuda}, NCCL ${dev.nccl}, peer access ${dev.peer ? 'yes' : 'no'}), ${new Date().toISOString()}`);
  say('');
  say('NCCL all-reduce (bf16 sum), bus bandwidth: native worker vs torch.distributed on the same GPUs');
  say(`${pad('size', 10)} ${pad('native GB/s', 12)} ${pad('torch GB/s', 11)} ${pad('ratio', 7)}`);
  const ar = native.filter((r) => r.section === 'allreduce');
  const ratios = [];
  for (const r of ar) {
    const t = torch.find((x) => x.bytes === r.bytes);
    const ratio = t ? r.busbw_GBps / t.busbw_GBps : NaN;
    if (r.bytes >= 64 * 2 ** 20) ratios.push(ratio);
    say(`${pad(mib(r.bytes), 10)} ${pad(r.busbw_GBps.toFixed(1), 12)} ${pad(t ? t.busbw_GBps.toFixed(1) : '—', 11)} ${pad(Number.isNaN(ratio) ? '—' : ratio.toFixed(3), 7)}`);
  }
  if (ratios.length) say(`  from 64 MiB up: min ratio ${Math.min(...ratios).toFixed(3)} (target ≥ 0.95)`);
  const fused = native.filter((r) => r.section === 'fused');
  if (fused.length) {
    say('');
    say('all-reduce + residual + RMSNorm, hidden 2880 bf16: one-shot fused kernel vs NCCL all-reduce + fused add+RMSNorm kernel');
    say(`${pad('T', 6)} ${pad('fused µs', 10)} ${pad('unfused µs', 11)} ${pad('unfused/fused', 14)} ${pad('max ulp', 8)} ${pad('max |Δ|', 9)}`);
    for (const r of fused) {
      const sp = r.fused_us > 0 ? r.unfused_us / r.fused_us : NaN;
      say(`${pad(r.tokens, 6)} ${pad(r.fused_us > 0 ? r.fused_us.toFixed(2) : 'n/a', 10)} ${pad(r.unfused_us.toFixed(2), 11)} ${pad(Number.isNaN(sp) ? '—' : sp.toFixed(2), 14)} ${pad(r.max_ulp, 8)} ${pad(r.max_abs ?? '—', 9)}`);
    }
    say('  (> 1: the fused kernel wins; expected for T ≤ 128)');
  }
  const an = native.find((r) => r.section === 'addnorm');
  if (an) {
    say('');
    say(`fused add+RMSNorm (in place, ${an.rows}×${an.hidden} bf16) vs device-to-device copy on GPU 0`);
    say(`  add+RMSNorm ${an.norm_GBps.toFixed(0)} GB/s, copy ${an.copy_GBps.toFixed(0)} GB/s, ratio ${(an.norm_GBps / an.copy_GBps).toFixed(3)} (target ≥ 0.85)`);
  }
  const json = opt('--json');
  if (json) writeFileSync(json, JSON.stringify({ native, torch, text: lines }, null, 2));
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await runAgentBench(process.argv.slice(2));
}
