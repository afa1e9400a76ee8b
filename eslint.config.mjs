// ESLint (typescript-eslint) finds bugs; Prettier (.prettierrc.json) owns the layout,
// so every stylistic rule is off here (eslint-config-prettier).
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.venv/', '.tmp/', 'test-artifacts/', 'bench/work/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A promise nobody awaits loses its error, and in a workflow its ordering: the bugs that hurt most here.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    // Workflow code is bundled into Temporal's deterministic sandbox: no I/O modules.
    // (test/workflow-imports.test.ts checks the same transitively.)
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/lib/io/*', '**/activities', '**/activities/*'],
              allowTypeImports: true,
              message: 'workflows may not load I/O modules (type-only imports are fine)',
            },
            { group: ['pg', 'pg-*', 'node:*', 'fs', 'path', 'child_process'], message: 'workflows may not do I/O' },
          ],
        },
      ],
    },
  },
  { files: ['**/*.mjs', 'bin/*'], ...tseslint.configs.disableTypeChecked },
  {
    // bin/*.js: plain CommonJS that bin/pgshift loads before anything is compiled.
    files: ['bin/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
);
