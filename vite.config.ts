import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Cross-origin isolation lets rank workers share a SharedArrayBuffer for collectives.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

// The built app runs without 'unsafe-eval' (sizes are parsed, never evaluated) and talks only to
// its own origin and a local agent. Styles stay 'unsafe-inline' for React's style attributes.
// Not on the dev server: its hot-reload preamble is an inline script.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  // http: the agent's handshake probe (why a WebSocket was refused, which the browser hides).
  "connect-src 'self' ws://127.0.0.1:* ws://localhost:* http://127.0.0.1:* http://localhost:*",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'self'",
  "frame-ancestors 'none'",
].join('; ');

export default defineConfig({
  plugins: [react()],
  server: { headers: isolation, host: '127.0.0.1', port: 5173 },
  preview: {
    headers: { ...isolation, 'Content-Security-Policy': CONTENT_SECURITY_POLICY },
    host: '127.0.0.1',
    port: 4173,
  },
  worker: { format: 'es' },
  // bench/ui-page.html mounts the graph views alone, for `npm run bench -- ui` and e2e/graph-view.spec.ts.
  build: {
    target: 'es2022',
    sourcemap: true,
    rollupOptions: { input: { main: 'index.html', 'ui-bench': 'bench/ui-page.html' } },
  },
});
