// Lint: neostandard (the style fastify/demo uses) settles the code style; ESLint's and typescript-eslint's
// recommended rules catch mistakes; and the project's own rule keeps configuration in one place.
import js from '@eslint/js'
import neostandard from 'neostandard'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  // Global ignores: neostandard's own list applies only to its configs, not to the recommended sets below,
  // and build output (which `npm run bench` makes) must never be linted.
  { ignores: ['**/node_modules/**', '**/dist/**', '**/data/**', '.tap/**', '.bench/**'] },
  ...neostandard({ ts: true, ignores: ['**/node_modules/**', '**/dist/**', '**/data/**', '.tap/**'] }),
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // A TypeBox schema and its Static type share one name on purpose; TypeScript itself catches real clashes.
      '@typescript-eslint/no-redeclare': 'off',
      // `void promise` marks a promise that is deliberately not awaited.
      'no-void': ['error', { allowAsStatement: true }],
      // Loops here wait on flags that a callback sets, which this rule cannot see.
      'no-unmodified-loop-condition': 'off',
      // Services read configuration once, in config.ts; nowhere else may touch process.env.
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration in src/config.ts only.' }]
    }
  },
  {
    files: ['**/src/config.ts', 'scripts/**', 'support/**', 'test/**', 'bench/**', '**/test/**', '.ci/**'],
    rules: { 'no-restricted-properties': 'off' }
  }
)
