// @ts-check
/*
 * ESLint over the whole repository (`npm run lint`, part of `npm test`).
 * TypeScript (src, test, bench, console/src) is linted with type information: typescript-eslint's
 * projectService finds each file's tsconfig (tsconfig.json, console/tsconfig.json). The plain
 * JavaScript files (bin, scripts, console/build.js, jest.config.js, ...) are CommonJS run by Node and
 * are linted without types. Formatting is Prettier's job (`prettier --check .`), not ESLint's.
 */
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'coverage/', '.cordon/', 'src/types/generated/']),
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A promise nobody awaits or catches is an unhandled rejection waiting to crash the process.
      '@typescript-eslint/no-floating-promises': 'error',
      // A new alert kind, frame type or error code must be handled wherever its union is switched on.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // `import type` is erased under isolatedModules; a value import kept only for types is not.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      // tsc's noUnusedLocals/noUnusedParameters report these too; `_` marks one kept on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Off: an `async` implementation of a Promise-returning port method (the memory adapters, Fastify
      // handlers) turns a throw into a rejection, which is what callers handle; removing `async` would not.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests read HTTP bodies, frames and files as untyped JSON and assert on them; typing every
      // one would add casts, not safety. Source code and benchmarks keep these rules.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module' },
  },
);
