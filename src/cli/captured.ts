// The CLI run in this process with its output captured: what the fuzz tests drive a thousand
// times, where spawning a process per case would cost seconds each.

import { main } from './main.ts';

export interface CliOutcome {
  code: number;
  stdout: string;
  stderr: string;
  /** An exception that escaped `main` (the process would have printed a stack trace). */
  threw?: string;
}

let running = false;

export async function runCliCaptured(argv: string[]): Promise<CliOutcome> {
  if (running) throw new Error('runCliCaptured: one at a time (it replaces process.stdout.write)');
  running = true;
  const out: string[] = [];
  const err: string[] = [];
  const realOut = process.stdout.write;
  const realErr = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(argv);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } catch (e) {
    return {
      code: -1,
      stdout: out.join(''),
      stderr: err.join(''),
      threw: e instanceof Error ? `${e.name}: ${e.message}`.split('\n')[0] : String(e),
    };
  } finally {
    process.stdout.write = realOut;
    process.stderr.write = realErr;
    running = false;
  }
}
