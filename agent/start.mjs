#!/usr/bin/env node
// `npm run agent [-- --port N] [--origin URL]… [--cpu] [--max-connections N]`: builds the native worker, starts the
// agent on 127.0.0.1 and prints the app URL that selects it (with a one-time token).
import { register } from 'tsx/esm/api';
import { buildWorker } from './build.mjs';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
if (args.includes('-h') || args.includes('--help')) {
  process.stdout.write(
    'usage: npm run agent -- [--port N] [--origin http://127.0.0.1:5173]… [--cpu] [--max-connections N]\n',
  );
  process.exit(0);
}
const origins = args.flatMap((a, i) => (a === '--origin' && args[i + 1] ? [args[i + 1]] : []));
const port = opt('--port') !== undefined ? Number(opt('--port')) : 0;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`fusionlab agent: --port must be 0..65535, got '${opt('--port')}'\n`);
  process.exit(2);
}

const maxConnections = opt('--max-connections') !== undefined ? Number(opt('--max-connections')) : undefined;
if (maxConnections !== undefined && !(Number.isInteger(maxConnections) && maxConnections >= 1)) {
  process.stderr.write(
    `fusionlab agent: --max-connections must be a whole number ≥ 1, got '${opt('--max-connections')}'\n`,
  );
  process.exit(2);
}

register();
// The worker's op codes and map bodies come from the op table: regenerate them before building.
const { writeOpTableHeader, OP_TABLE_HEADER } = await import('./opTableCpp.ts');
if (writeOpTableHeader()) process.stderr.write(`fusionlab agent: regenerated ${OP_TABLE_HEADER}\n`);
const worker = buildWorker({ forceCpu: args.includes('--cpu') });
const { startAgent, DEFAULT_ORIGINS } = await import('./server.ts');
const agent = await startAgent({
  workerPath: worker.path,
  port,
  allowedOrigins: origins.length ? [...DEFAULT_ORIGINS, ...origins] : DEFAULT_ORIGINS,
  ...(maxConnections !== undefined ? { limits: { maxConnections } } : {}),
});
const dev = await agent.device();
const what =
  dev.mode === 'cuda'
    ? `${dev.gpus.length} GPU(s): ${dev.gpus.map((g) => `${g.name} (sm ${g.computeCapability})`).join(', ')}; CUDA ${dev.cuda}, NCCL ${dev.nccl}`
    : `CPU only (${dev.reason ?? 'no GPU'})`;
process.stdout.write(
  `fusionlab agent on 127.0.0.1:${agent.port} — ${what}\n` +
    `Open the app with this address (the token is for this run of the agent only):\n\n  ${agent.appUrl()}\n\n` +
    `or enter ws://127.0.0.1:${agent.port} and the token ${agent.token} in the app's backend menu.\n`,
);
const stop = async () => {
  await agent.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
