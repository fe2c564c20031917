import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const bin = new URL('../../bin/fusionlab.js', import.meta.url).pathname;
const cli = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

describe('fusionlab command', () => {
  it("prints each subcommand's usage on --help, exit 0, without running it", () => {
    for (const [cmd, word] of [
      ['rewrite', '--passes'],
      ['sample', 'gpt-oss-120b'],
      ['run', '--backend'],
      ['bench', 'kernels'],
      ['trace', '--json'],
    ]) {
      const r = cli(cmd, '--help');
      expect(r.status, cmd).toBe(0);
      expect(r.stdout).toContain(`usage: fusionlab ${cmd}`);
      expect(r.stdout).toContain(word);
    }
  });

  it('refuses an unknown command with exit 2 and the list of commands', () => {
    const r = cli('fuse');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown command 'fuse'");
    expect(r.stderr).toBe(
      "fusionlab: unknown command 'fuse' (commands: rewrite, sample, run, compare-fixes, kernels, bench, trace; see fusionlab --help)\n",
    );
  });
});
