// Lint for egressd (npm run lint). src/ and test/ get typescript-eslint's type-aware recommended
// rules (recommendedTypeChecked, through the tsconfig.check.json project, so tests are held to the
// same types as src), plus a few rules the code already follows everywhere; bench/*.mjs and this
// file get the plain JavaScript recommended rules. No formatting rules: the code's layout
// (2 spaces, no semicolons, a space before function parens) is kept by hand, not by the linter.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import globals from 'globals'

const unusedVars = ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }]

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'var/**', 'coverage/**', '.tap/**'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname }
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // tap queues subtests itself: a top-level or nested t.test(...) is not a lost promise.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: '@tapjs/test', name: ['test'] }]
      }],
      // fastify hooks and handlers and tap subtests are async by contract, with or without an await.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': unusedVars,
      // A `let` set once after a teardown that reads it is registered (so a failed start is cleaned up).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Only where a missing await changes behaviour (a rejection escaping try/catch/finally).
      '@typescript-eslint/return-await': ['error', 'error-handling-correctness-only'],
      // Followed everywhere already; each one catches real mistakes.
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-var': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/strict-boolean-expressions': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/prefer-nullish-coalescing': 'error'
    }
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests read parsed JSON bodies (inject().json(), JSON.parse of CLI output: any) and assert on
      // their fields; the assertion is the check, so any flowing into it is deliberate.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // The house rule: no focused, skipped or todo tests.
      'no-restricted-properties': ['error',
        { object: 't', property: 'only', message: 'no focused tests' },
        { object: 't', property: 'skip', message: 'no skipped tests' },
        { object: 't', property: 'todo', message: 'no todo tests' }]
    }
  },
  {
    files: ['bench/**/*.mjs', 'eslint.config.js'],
    extends: [js.configs.recommended],
    languageOptions: { globals: { ...globals.node } },
    rules: { 'no-unused-vars': unusedVars }
  }
)
