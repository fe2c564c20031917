// `fusionlab bench <suite>`: runs bench/main.ts in a process of its own, so the suites that drive
// the app in chromium (ui) or the agent's native worker (agent) never enter the CLI's module graph
// (dependency-cruiser's cli-does-not-reach-ui-or-agent rule).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CHOOSE_A_SUITE, isBenchSuite } from '../../bench/suites.ts';

const ENTRY = fileURLToPath(new URL('../../bench/main.ts', import.meta.url));

export async function command(argv: string[]): Promise<number> {
  if (!isBenchSuite(argv[0])) {
    process.stderr.write(CHOOSE_A_SUITE);
    return 2;
  }
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), ENTRY, ...argv], {
    stdio: 'inherit',
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
