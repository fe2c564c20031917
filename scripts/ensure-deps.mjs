#!/usr/bin/env node
// Installs what a fresh clone needs: npm packages, and (with --browser) Debian's chromium,
// which the WebGPU tests and Playwright drive. Idempotent and quiet when all is present.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const run = (cmd) => execSync(cmd, { stdio: 'inherit', cwd: root });

if (!existsSync(`${root}node_modules/.package-lock.json`) || !existsSync(`${root}node_modules/vite`)) {
  console.log('fusionlab: installing npm packages (npm ci)…');
  run(
    existsSync(`${root}package-lock.json`)
      ? 'npm ci --no-audit --no-fund'
      : 'npm install --no-audit --no-fund',
  );
}

if (process.argv.includes('--browser')) {
  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) {
    if (process.getuid && process.getuid() === 0) {
      console.log('fusionlab: installing Debian chromium (apt-get install chromium)…');
      run('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null');
    } else {
      console.error(
        `fusionlab: ${chromium} is missing. The browser tests need Debian's chromium:\n` +
          '  sudo apt-get install -y chromium\n(or set CHROMIUM_PATH to a Chromium with WebGPU).',
      );
      process.exit(1);
    }
  }
}
