// The agent in a process of its own, for the reliability suite: its memory is measured from
// outside (/proc), apart from the test's clients. Limits come as JSON in argv[2]; it prints one
// line, {"port", "token", "limits"}, and runs until its stdin closes. Each line "loop" on stdin
// is answered with what held up its event loop since the last one: the longest gap between two
// ticks of a 10 ms timer (wall clock: it includes the OS running other processes) and the most
// CPU time its main thread spent within one such gap (its own work; Linux clock ticks, 10 ms).
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { register } from 'tsx/esm/api';
import { buildWorker } from '../agent/build.mjs';

const limits = JSON.parse(process.argv[2] ?? '{}');
const worker = buildWorker({ forceCpu: true, log: () => {} });
register();
const { startAgent } = await import('../agent/server.ts');
const agent = await startAgent({ workerPath: worker.path, limits, log: () => {} });
const stat = `/proc/self/task/${process.pid}/stat`;
/** The main thread's user + system time in ms (fields 14 and 15 of its stat; 100 ticks a second). */
const mainThreadCpuMs = () => {
  const text = readFileSync(stat, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
let lastWall = performance.now();
let lastCpu = mainThreadCpuMs();
let maxGap = 0;
let maxBusy = 0;
setInterval(() => {
  const wall = performance.now();
  const cpu = mainThreadCpuMs();
  maxGap = Math.max(maxGap, wall - lastWall - 10);
  maxBusy = Math.max(maxBusy, cpu - lastCpu);
  lastWall = wall;
  lastCpu = cpu;
}, 10).unref();
process.stdout.write(`${JSON.stringify({ port: agent.port, token: agent.token, limits: agent.limits })}\n`);
const lines = createInterface({ input: process.stdin });
lines.on('line', (l) => {
  if (l !== 'loop') return;
  process.stdout.write(`${JSON.stringify({ gapMs: maxGap, busyMs: maxBusy })}\n`);
  maxGap = 0;
  maxBusy = 0;
});
lines.on('close', async () => {
  await agent.close();
  process.exit(0);
});
