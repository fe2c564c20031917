// `fusionlab compare-fixes [--model gpt-oss-20b|gpt-oss-120b] [--ranks N] [--backend cpu|webgpu]
//   [--preset tiny|layer] [--tokens T] [--seed S] [--json]`
// One GPT-OSS layer three ways — the original, PR #28841's slice hoist, the re-land's unpadded MoE
// (#30647) — by fused sites, bytes moved, kernels launched and time (the cost model on an H200
// and this run), with each variant's outputs checked bitwise against the original's.

import { parseFx } from '../graph/fx/parse.ts';
import { generateSample } from '../graph/samples/index.ts';
import { formatBytes } from '../graph/passes/flashinferLimits.ts';
import { RunError, type RunOptions } from '../runtime/index.ts';
import { compareFixes, type FixesReport } from '../runtime/compareFixes.ts';
import { TINY_RUN } from '../runtime/backend.ts';

const USAGE =
  'usage: fusionlab compare-fixes [--model gpt-oss-20b|gpt-oss-120b] [--ranks N] [--backend cpu|webgpu] [--preset tiny|layer] [--tokens T] [--seed S] [--json]';
const MODELS = ['gpt-oss-20b', 'gpt-oss-120b'] as const;

export function formatFixes(r: FixesReport): string {
  const head = [
    '',
    'fused sites',
    'model: kernels',
    'model: HBM',
    'model: link/rank',
    'model: µs',
    'run: kernels',
    'run: bytes',
    `run: µs (${r.rows[0]?.measured.timing ?? 'none'})`,
    'outputs vs original',
  ];
  const rows = r.rows.map((x) => [
    x.label,
    String(x.fusions),
    String(x.model.launches),
    formatBytes(x.model.hbmBytes),
    formatBytes(x.model.linkBytesPerRank),
    x.model.us.toFixed(1),
    String(x.measured.kernels),
    formatBytes(x.measured.bytes),
    x.measured.us.toFixed(1),
    x.equal ? 'bitwise equal' : `${x.check.filter((c) => !c.pass).length} differ`,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return (
    [
      `GPT-OSS layer, ${r.ranks} rank(s), T=${r.tokens}; model: ${r.profile}; run: ${r.backend} (${r.device})`,
      line(head),
      ...rows.map(line),
    ].join('\n') + '\n'
  );
}

export async function command(argv: string[]): Promise<number> {
  let model: (typeof MODELS)[number] = 'gpt-oss-20b';
  const opts: RunOptions = { backend: 'cpu', ...TINY_RUN };
  let json = false;
  const fail = (m: string) => {
    process.stderr.write(`fusionlab compare-fixes: ${m}\n${USAGE}\n`);
    return 2;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!,
      v = () => argv[++i];
    const int = (x: string | undefined) =>
      x !== undefined && /^\d+$/.test(x) && Number(x) >= 1 ? Number(x) : undefined;
    switch (a) {
      case '--model': {
        const m = v();
        if (!MODELS.includes(m as never))
          return fail(`--model takes ${MODELS.join(' | ')}, got '${m ?? ''}'`);
        model = m as typeof model;
        break;
      }
      case '--ranks': {
        const n = int(v());
        if (!n || ![1, 2, 4, 8].includes(n)) return fail('--ranks takes 1, 2, 4 or 8');
        opts.ranks = n;
        break;
      }
      case '--backend': {
        const b = v();
        if (b !== 'cpu' && b !== 'webgpu') return fail(`--backend takes cpu | webgpu, got '${b ?? ''}'`);
        opts.backend = b;
        break;
      }
      case '--preset': {
        const p = v();
        if (p !== 'tiny' && p !== 'layer') return fail(`--preset takes tiny | layer, got '${p ?? ''}'`);
        opts.preset = p;
        break;
      }
      case '--tokens': {
        const n = int(v());
        if (!n) return fail('--tokens takes an integer ≥ 1');
        opts.tokens = n;
        break;
      }
      case '--seed': {
        const x = v();
        if (x === undefined || !/^\d+$/.test(x)) return fail('--seed takes an integer ≥ 0');
        opts.seed = Number(x);
        break;
      }
      case '--json':
        json = true;
        break;
      default:
        return fail(`unknown option '${a}'`);
    }
  }
  if (opts.backend === 'webgpu') opts.gpu = await (await import('../runtime/nodeGpu.ts')).nodeGpu();
  try {
    const layer = parseFx(generateSample(model, { layers: 1, tp: opts.ranks })).graph;
    const r = await compareFixes(layer, opts);
    if (json) {
      const rows = r.rows.map(({ graph: _g, check, ...x }) => ({
        ...x,
        check: check.map((c) => ({ name: c.name, bitwiseEqual: c.bitwiseEqual, ulps: c.ulps })),
      }));
      process.stdout.write(JSON.stringify({ ...r, rows }) + '\n');
    } else process.stdout.write(formatFixes(r));
    return r.rows.every((x) => x.equal) ? 0 : 1;
  } catch (e) {
    if (e instanceof RunError) {
      process.stderr.write(`fusionlab compare-fixes: ${e.message}\n`);
      return 2;
    }
    throw e;
  } finally {
    if (opts.gpu) (await import('../runtime/webgpu/rankDevice.ts')).closeRanks(opts.gpu);
  }
}
