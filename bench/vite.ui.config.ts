// Builds only the graph-view page (bench/ui-page.html), so the UI bench does not depend on the
// rest of the app building.
import { defineConfig, type UserConfig } from 'vite';
import base from '../vite.config.ts';

const config = base as UserConfig;
export default defineConfig({
  ...config,
  build: { ...config.build, rollupOptions: { input: { 'ui-bench': 'bench/ui-page.html' } } },
});
