// Builds the native worker: with nvcc (+ cuBLAS and NCCL headers) the CUDA worker, which still
// runs on the CPU where no GPU is present; otherwise the CPU-only build with g++.
// Usage: node agent/build.mjs [--cpu | --check]   (prints the binary's path on the last line)
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Bundled copies (dist-agent/) run from the project root: find the sources there.
const src = existsSync(join(here, 'native', 'worker.cpp'))
  ? join(here, 'native')
  : join(process.cwd(), 'agent', 'native');
const out = join(src, 'build');

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const cudaRoot = () => process.env.CUDA_HOME ?? (existsSync('/usr/local/cuda') ? '/usr/local/cuda' : null);
const headerFound = (name) =>
  [cudaRoot() && join(cudaRoot(), 'include'), '/usr/include', '/usr/local/include'].some(
    (d) => d && existsSync(join(d, name)),
  );

/** `-lnccl`, or the versioned library where only libnccl.so.2 is installed (no dev symlink). */
function ncclLink() {
  const dirs = [
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
    cudaRoot() && join(cudaRoot(), 'lib64'),
  ].filter(Boolean);
  if (dirs.some((d) => existsSync(join(d, 'libnccl.so')))) return ['-lnccl'];
  const d = dirs.find((x) => existsSync(join(x, 'libnccl.so.2')));
  return d ? [`-L${d}`, '-l:libnccl.so.2'] : ['-lnccl'];
}

function newest(files) {
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

/** Returns { path, mode: 'cuda' | 'cpu', note }; rebuilds only when a source is newer than the binary. */
export function buildWorker({ forceCpu = false, log = (m) => process.stderr.write(m + '\n') } = {}) {
  mkdirSync(out, { recursive: true });
  const sources = readdirSync(src)
    .filter((f) => /\.(cpp|cu|hpp|cuh)$/.test(f))
    .map((f) => join(src, f));
  const srcTime = newest(sources);
  const canCuda = !forceCpu && has('nvcc') && headerFound('cublas_v2.h') && headerFound('nccl.h');
  let note = '';
  if (!canCuda && !forceCpu) {
    note = !has('nvcc')
      ? 'no CUDA toolkit (nvcc not found): building the CPU worker; the agent runs every op on the CPU'
      : 'nvcc found but not cuBLAS and NCCL headers: building the CPU worker';
    log(`fusionlab agent: ${note}`);
  }
  if (canCuda) {
    const bin = join(out, 'fusionlab-worker');
    if (!existsSync(bin) || statSync(bin).mtimeMs < srcTime) {
      log('fusionlab agent: building the CUDA worker with nvcc…');
      const arch = process.env.FUSIONLAB_CUDA_ARCH ?? '80;90';
      const gencode = arch.split(';').flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]);
      execFileSync(
        'nvcc',
        [
          '-O3',
          '-std=c++17',
          ...gencode,
          '-Xcompiler',
          '-ffp-contract=off,-Werror=switch',
          '-o',
          bin,
          join(src, 'worker.cpp'),
          join(src, 'cpu_exec.cpp'),
          join(src, 'cuda_exec.cu'),
          join(src, 'bench.cu'),
          '-lcublas',
          ...ncclLink(),
          '-lpthread',
        ],
        { stdio: ['ignore', 'inherit', 'inherit'] },
      );
    }
    return { path: bin, mode: 'cuda', note };
  }
  const bin = join(out, 'fusionlab-worker-cpu');
  if (!existsSync(bin) || statSync(bin).mtimeMs < srcTime) {
    if (!has('g++'))
      throw new Error('fusionlab agent: neither nvcc nor g++ is installed; cannot build the worker');
    execFileSync(
      'g++',
      [
        '-O2',
        '-std=c++17',
        '-ffp-contract=off',
        '-Werror=switch',
        '-DFUSIONLAB_CPU_ONLY',
        '-o',
        bin,
        join(src, 'worker.cpp'),
        join(src, 'cpu_exec.cpp'),
        '-lpthread',
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
  }
  return { path: bin, mode: 'cpu', note };
}

/**
 * The CPU worker built from the sources with one file replaced (`files`: name → text), into a
 * temporary directory: tests plant a wrong op-table entry this way and check it is caught.
 */
export function buildCpuWorkerVariant(files, { log = () => {}, stdio = 'inherit' } = {}) {
  if (!has('g++')) throw new Error('fusionlab agent: g++ is not installed; cannot build a worker variant');
  const dir = mkdtempSync(join(tmpdir(), 'fusionlab-worker-'));
  for (const f of readdirSync(src).filter((x) => /\.(cpp|hpp)$/.test(x)))
    copyFileSync(join(src, f), join(dir, f));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const bin = join(dir, 'fusionlab-worker-cpu');
  log(`fusionlab agent: building a worker variant in ${dir}`);
  execFileSync(
    'g++',
    [
      '-O1',
      '-std=c++17',
      '-ffp-contract=off',
      '-Werror=switch',
      '-DFUSIONLAB_CPU_ONLY',
      '-o',
      bin,
      join(dir, 'worker.cpp'),
      join(dir, 'cpu_exec.cpp'),
      '-lpthread',
    ],
    { stdio: ['ignore', stdio, stdio] },
  );
  return bin;
}

/**
 * Compiles the CUDA sources with cudart alone (cuBLAS and NCCL replaced by plain kernels / a
 * refusal), for machines with nvcc but without those libraries: catches CUDA compile errors early.
 */
export function checkCudaSources({ log = (m) => process.stderr.write(m + '\n') } = {}) {
  if (!has('nvcc')) {
    log('fusionlab agent: nvcc not found; nothing to check');
    return null;
  }
  mkdirSync(out, { recursive: true });
  const bin = join(out, 'fusionlab-worker-check');
  execFileSync(
    'nvcc',
    [
      '-O1',
      '-std=c++17',
      '-arch=sm_90',
      '-Xcompiler',
      '-Werror=switch',
      '-DFUSIONLAB_NO_CUBLAS',
      '-DFUSIONLAB_NO_NCCL',
      '-diag-suppress',
      '177',
      '-o',
      bin,
      join(src, 'worker.cpp'),
      join(src, 'cpu_exec.cpp'),
      join(src, 'cuda_exec.cu'),
      join(src, 'bench.cu'),
      '-lpthread',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  return bin;
}

// Run as a script (not when bundled into another entry point, whose file this then is).
if (
  process.argv[1] &&
  fileURLToPath(import.meta.url) === process.argv[1] &&
  basename(process.argv[1]) === 'build.mjs'
) {
  if (process.argv.includes('--check')) {
    const bin = checkCudaSources();
    if (bin) process.stdout.write(`${bin}\n`);
  } else {
    const r = buildWorker({ forceCpu: process.argv.includes('--cpu') });
    process.stdout.write(`${r.path}\n`);
  }
}
