// Entry of the `fusionlab` command: one module per subcommand, each exporting
// `command(argv): Promise<number>` (the exit code; 2 for bad input).
import { BENCH_SUITES } from '../../bench/suites.ts';

const COMMANDS: Record<
  string,
  { load: () => Promise<{ command(argv: string[]): Promise<number> }>; help: string }
> = {
  rewrite: {
    load: () => import('./rewrite.ts'),
    help: 'rewrite <file|folder|-> [--frame F/C] [--stage NAME|N] [--passes a,b] [--world-size N] [--max-tokens T] [--gpu hopper|blackwell] [--token-gate runtime-fallback|compile-range] [--tp-group NAME] [--attention-backend FLASH_ATTN|TRITON_ATTN|FLASHINFER|ROCM_ATTN|…] [--kv-cache-dtype auto|fp8] [--emit fx|json] [--out PATH] [--report]  |  vLLM flags instead of --passes: -O0..-O3 -tp N -cc.pass_config.NAME=BOOL --compilation-config JSON --max-num-batched-tokens N [--compile-range A-B] [--platform sm80|sm89|sm90|sm100|rocm]',
  },
  sample: {
    load: () => import('./sample.ts'),
    help: 'sample gpt-oss-20b|gpt-oss-120b|llama|qwen3-moe [--layers L] [--tp N]',
  },
  run: {
    load: () => import('./run.ts'),
    help: 'run <file|sample:gpt-oss-20b|sample:gpt-oss-120b|sample:llama> --backend webgpu|cpu|agent --ranks N --preset tiny|layer --dtype bf16|f32 [--allreduce ring|one-shot|two-shot] [--workers] [--tokens T] [--seed S] [--layers L] [--inputs DIR] [--dump-outputs DIR] [--compare PASSES] [--report] [--agent ws://127.0.0.1:PORT] [--token T]',
  },
  'compare-fixes': {
    load: () => import('./compareFixes.ts'),
    help: 'compare-fixes [--model gpt-oss-20b|gpt-oss-120b] [--ranks N] [--backend cpu|webgpu] [--preset tiny|layer] [--tokens T] [--seed S] [--json]',
  },
  kernels: {
    load: () => import('./kernels.ts'),
    help: 'kernels output_code.py [--trace trace.json[.gz]] [--provenance mapping.json] [--graph post_grad.py]',
  },
  bench: { load: () => import('./bench.ts'), help: `bench ${BENCH_SUITES.join('|')} [suite options]` },
  trace: {
    load: () => import('./trace.ts'),
    help: 'trace <TORCH_TRACE folder|log> [--json]  (then: rewrite <folder> --frame 0/0 --stage post_grad)',
  },
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help') {
    process.stdout.write(usage());
    return 0;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    process.stderr.write(
      `fusionlab: unknown command '${cmd}' (commands: ${Object.keys(COMMANDS).join(', ')}; see fusionlab --help)\n`,
    );
    return 2;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(`usage: fusionlab ${entry.help}\n`);
    return 0;
  }
  const mod = await entry.load();
  try {
    return await mod.command(rest);
  } catch (e) {
    // Every expected failure is reported by the command itself; this is the last guard, so even
    // a bug ends in one line and exit 2 rather than a stack trace.
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    process.stderr.write(`fusionlab ${cmd}: internal error: ${what.split('\n')[0]}\n`);
    return 2;
  }
}

function usage(): string {
  return `usage: fusionlab <command> [options]\n\n${Object.values(COMMANDS)
    .map((c) => `  ${c.help}`)
    .join('\n')}\n`;
}
