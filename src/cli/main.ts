// Entry of the `fusionlab` command: one module per subcommand, each exporting
// `command(argv): Promise<number>` (the exit code; 2 for bad input).

const COMMANDS: Record<string, { load: () => Promise<{ command(argv: string[]): Promise<number> }>; help: string }> = {
  rewrite: { load: () => import('./rewrite.ts'), help: 'rewrite <file|-> [--passes a,b] [--world-size N] [--max-tokens T] [--gpu hopper|blackwell] [--token-gate runtime-fallback|compile-range] [--tp-group NAME] [--emit fx|json] [--out PATH] [--report]' },
  sample: { load: () => import('./sample.ts'), help: 'sample gpt-oss-20b|gpt-oss-120b|llama [--layers L] [--tp N]' },
  run: { load: () => import('./run.ts'), help: 'run <file|sample:gpt-oss-20b|sample:gpt-oss-120b|sample:llama> --backend webgpu|cpu --ranks N --preset tiny|layer --dtype bf16|f32 [--allreduce ring|one-shot|two-shot] [--workers] [--tokens T] [--seed S] [--layers L] [--inputs DIR] [--dump-outputs DIR] [--compare PASSES] [--report]' },
  bench: { load: () => import('./bench.ts'), help: 'bench passes|kernels|ui|agent' },
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help') {
    process.stdout.write(usage());
    return 0;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    process.stderr.write(`fusionlab: unknown command '${cmd}'\n${usage()}`);
    return 2;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(`usage: fusionlab ${entry.help}\n`);
    return 0;
  }
  const mod = await entry.load();
  return mod.command(rest);
}

function usage(): string {
  return `usage: fusionlab <command> [options]\n\n${Object.values(COMMANDS).map((c) => `  ${c.help}`).join('\n')}\n`;
}
