// A bench suite as one file for the GPU host, which has Node and Dawn but no node_modules:
// `dist-bench/<suite>.mjs`, every dependency inlined but Dawn (`webgpu`), run as `node <suite>.mjs …`.

export async function bundleSuite(suite: 'kernels' | 'fusions'): Promise<number> {
  const { build } = await import('esbuild');
  await build({
    stdin: {
      contents: `import { bench } from './bench/${suite}.ts'; process.exitCode = await bench(process.argv.slice(2));`,
      resolveDir: process.cwd(),
      loader: 'ts',
      sourcefile: `${suite}-entry.ts`,
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['webgpu'],
    outfile: `dist-bench/${suite}.mjs`,
    logLevel: 'warning',
  });
  process.stdout.write(`wrote dist-bench/${suite}.mjs\n`);
  return 0;
}
