// Entry of the `fusionlab` command: dispatches to one module per subcommand.
export async function main(argv: string[]): Promise<number> {
  const [cmd] = argv;
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`fusionlab: unknown command '${cmd}'\n${USAGE}`);
      return 2;
  }
}

const USAGE = `usage: fusionlab <command> [options]

commands:
  rewrite <file|->   apply the fusion passes to an FX graph
  sample <model>     write a generated vLLM-style graph as FX text
  run <file|sample:NAME>  execute a graph (webgpu | cpu), optionally before and after a rewrite
  bench <suite>      measure passes | kernels | ui | agent
`;
