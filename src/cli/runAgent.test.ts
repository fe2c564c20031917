// `fusionlab run --backend agent`: the CLI against a running agent (its CPU worker), as a user runs it.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorker } from '../../agent/build.mjs';
import { startAgent, type RunningAgent } from '../../agent/server.ts';
import { readNpy } from '../runtime/tensorio.ts';
import { compareTensor } from '../runtime/compareOutputs.ts';

const BIN = join(import.meta.dirname, '../../bin/fusionlab.js');
const SEED = new URL('../../fixtures/fx/seed/pr28841-before.fragment.txt', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'fusionlab-run-agent-'));

/** The CLI in a child process (async: the agent answers from this process meanwhile). */
function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('node', [BIN, 'run', ...args], { env: { ...process.env, ...env } });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let agent: RunningAgent;
beforeAll(async () => {
  agent = await startAgent({
    workerPath: buildWorker({ forceCpu: true, log: () => {} }).path,
    log: () => {},
  });
}, 120_000);
afterAll(async () => agent?.close());

describe('fusionlab run --backend agent', { timeout: 180_000 }, () => {
  it("runs a graph on the agent (token from the environment) with the CPU reference's results", async () => {
    const url = `ws://127.0.0.1:${agent.port}`;
    const a = join(dir, 'agent'),
      c = join(dir, 'cpu');
    const r = await run(
      [SEED, '--backend', 'agent', '--agent', url, '--ranks', '2', '--seed', '3', '--dump-outputs', a],
      { FUSIONLAB_AGENT_TOKEN: agent.token },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^agent on /);
    expect(
      (await run([SEED, '--backend', 'cpu', '--ranks', '2', '--seed', '3', '--dump-outputs', c])).code,
    ).toBe(0);
    for (const rank of ['rank0', 'rank1']) {
      const files = readdirSync(join(c, rank)).sort();
      expect(readdirSync(join(a, rank)).sort()).toEqual(files);
      for (const f of files) {
        const cmp = compareTensor(
          f,
          readNpy(readFileSync(join(c, rank, f))),
          readNpy(readFileSync(join(a, rank, f))),
          4,
          'MoE and norm accumulate in f32',
        );
        expect(cmp.pass, `${rank}/${f}: ${cmp.ulps} ulps`).toBe(true);
      }
    }
  });

  it('a wrong token, no agent listening, or no token at all: one line that says what to do', async () => {
    // The agent answers a wrong token with 401, and Node's WebSocket names the status: say so.
    const wrong = await run([
      SEED,
      '--backend',
      'agent',
      '--agent',
      `ws://127.0.0.1:${agent.port}`,
      '--token',
      'not-the-token',
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(
      /^fusionlab run: the agent at ws:\/\/127\.0\.0\.1:\d+ refused the token \(HTTP 401\): use the link `npm run agent` printed for this run of the agent\n$/,
    );
    const none = await run([SEED, '--backend', 'agent', '--agent', 'ws://127.0.0.1:1', '--token', 't']);
    expect(none.code).toBe(2);
    // Asked again over HTTP, nothing answers on the port: said so, not "is the token right?".
    expect(none.stderr).toBe(
      'fusionlab run: cannot connect to the agent at ws://127.0.0.1:1: nothing answers there (is `npm run agent` running, on this port?)\n',
    );
    const noToken = await run([SEED, '--backend', 'agent'], { FUSIONLAB_AGENT_TOKEN: '' });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(
      /^fusionlab run: --backend agent needs the agent's token: --token T or FUSIONLAB_AGENT_TOKEN/,
    );
  });
});
