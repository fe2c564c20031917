// ESLint over the project's TypeScript, with type information (typescript-eslint) so switches over
// unions are checked for exhaustiveness; plus the React hooks rules for the app.
// Run from the root: `npm run lint` (scripts/lint.mjs).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'tools/lint/**',
      'dist/**',
      'dist-*/**',
      'fixtures/**',
      'public/**',
      'bench/out/**',
      'agent/native/**',
      '**/*.d.mts',
    ],
  },
  {
    files: ['**/*.{ts,tsx}'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { project: ['./tsconfig.json'], tsconfigRootDir: root },
    },
    rules: {
      // The point of this config: a switch over a union that forgets a member is an error.
      // A default clause (assertNever's, or a deliberate catch-all) covers the members not listed.
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
      // FX prints an open slice end as INT64_MAX (9223372036854775807); the code compares it, never computes with it.
      'no-loss-of-precision': 'off',
      // tsc (noUnusedLocals) already reports unused locals; underscore-prefixed parameters are deliberate.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Non-null assertions mark places where the plan's invariants guarantee a value (a storage the planner made).
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Type-only names (GPU, GPUBuffer) are globals from @webgpu/types; tsc checks undefined names.
      'no-undef': 'off',
    },
  },
  {
    // Hooks exist only in the React app; elsewhere `useX` names a choice (wgsl/moe.ts useMoeGemv: whether to use the GEMV).
    files: ['src/ui/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    rules: { 'react-hooks/rules-of-hooks': 'error', 'react-hooks/exhaustive-deps': 'error' },
  },
  {
    // Tests build deliberately malformed documents field by field.
    files: ['**/*.test.ts', '**/*.test.tsx'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Dawn for Node and Vite's bundler load packages by computed names on purpose (see nodeGpu.ts, agentClient.ts).
    files: ['src/runtime/nodeGpu.ts', 'src/runtime/agentClient.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
