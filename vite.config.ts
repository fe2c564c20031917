import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Cross-origin isolation lets rank workers share a SharedArrayBuffer for collectives.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  plugins: [react()],
  server: { headers: isolation, host: '127.0.0.1', port: 5173 },
  preview: { headers: isolation, host: '127.0.0.1', port: 4173 },
  worker: { format: 'es' },
  // bench/ui-page.html mounts the graph views alone, for `npm run bench -- ui` and e2e/graph-view.spec.ts.
  build: { target: 'es2022', sourcemap: true, rollupOptions: { input: { main: 'index.html', 'ui-bench': 'bench/ui-page.html' } } },
});
