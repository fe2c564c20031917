// Placeholder until this suite lands.
export async function bench(_argv: string[]): Promise<number> {
  process.stderr.write("fusionlab bench: this suite is not built yet\n");
  return 2;
}
