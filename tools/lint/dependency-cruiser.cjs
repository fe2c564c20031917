// The layers of DESIGN.md, enforced one way: graph ← runtime ← ui; wgsl beside runtime; the
// agent on top. Type-only imports carry no values, so only value imports count for cycles.
// Run from the root: `npm run lint` (scripts/lint.mjs).
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'graph-imports-only-graph',
      comment:
        'src/graph is the base layer (IR, op table, passes): pure TypeScript, importing nothing of the others.',
      severity: 'error',
      from: { path: '^src/graph/', pathNot: '\\.test\\.tsx?$' },
      to: { path: '^(src/(runtime|ui|wgsl|cli)|agent)/' },
    },
    {
      name: 'wgsl-does-not-import-runtime',
      comment:
        'Kernels are specialized from what they are given; the runtime imports them, never the reverse.',
      severity: 'error',
      from: { path: '^src/wgsl/', pathNot: '\\.test\\.tsx?$' },
      to: { path: '^(src/(runtime|ui|cli)|agent)/' },
    },
    {
      name: 'runtime-does-not-import-ui-cli-or-agent',
      comment:
        'The runtime runs in the page, in workers, in the CLI and in the agent; the wire types it shares with the agent live in src/runtime/agentProtocol.ts.',
      severity: 'error',
      from: { path: '^src/runtime/', pathNot: '\\.test\\.tsx?$' },
      to: { path: '^(src/(ui|cli)|agent)/' },
    },
    {
      name: 'ui-does-not-import-cli-or-agent',
      severity: 'error',
      from: { path: '^src/ui/', pathNot: '\\.test\\.tsx?$' },
      to: { path: '^(src/cli|agent)/' },
    },
    {
      name: 'cli-does-not-reach-ui-or-agent',
      comment:
        'The CLI runs in Node without the app or the agent: not directly, not through bench/, not by a dynamic import. Suites that drive them run in a process of their own (bench/main.ts).',
      severity: 'error',
      from: { path: '^src/cli/', pathNot: '\\.test\\.tsx?$' },
      to: { path: '^(src/ui|agent)/', reachable: true },
    },
    {
      name: 'no-value-cycles',
      comment:
        'A cycle that carries values makes load order matter (collectives.ts ↔ webgpuBackend.ts was one); type-only cycles are harmless.',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist|dist-[^/]*|tools/lint)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.tsx', '.mjs', '.js'] },
  },
};
