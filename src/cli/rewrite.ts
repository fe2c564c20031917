// Placeholder until this subcommand lands.
export async function command(_argv: string[]): Promise<number> {
  process.stderr.write("fusionlab: this command is not built yet\n");
  return 2;
}
