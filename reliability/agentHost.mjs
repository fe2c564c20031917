// The agent in a process of its own, for the reliability suite: its memory is measured from
// outside (/proc), apart from the test's clients. Limits come as JSON in argv[2]; it prints one
// line, {"port", "token", "limits"}, and runs until its stdin closes.
import { register } from 'tsx/esm/api';
import { buildWorker } from '../agent/build.mjs';

const limits = JSON.parse(process.argv[2] ?? '{}');
const worker = buildWorker({ forceCpu: true, log: () => {} });
register();
const { startAgent } = await import('../agent/server.ts');
const agent = await startAgent({ workerPath: worker.path, limits, log: () => {} });
process.stdout.write(`${JSON.stringify({ port: agent.port, token: agent.token, limits: agent.limits })}\n`);
process.stdin.resume();
process.stdin.on('end', async () => { await agent.close(); process.exit(0); });
