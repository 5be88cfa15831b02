// Lint rules: typescript-eslint's type-aware recommendations, tuned for an Express 5 codebase.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Time comes from the injected clock (deps.clock), so tests can move it: only src/core/clock.ts reads the wall clock. */
const wallClockReads = [
  { selector: "MemberExpression[object.name='Date'][property.name='now']", message: 'Read the time from the injected clock (clock.now()), not Date.now().' },
  { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Read the time from the injected clock: new Date(clock.now()).' },
  { selector: "CallExpression[callee.name='Date']", message: 'Date() reads the wall clock; use new Date(clock.now()).' },
];

/**
 * The layers (see docs/development.md, "Project layout"): main → app → composition → features → kernel → core. An import may only run
 * down: core knows no credential, the kernel knows no feature, and a feature never reaches into another one (what
 * two features share belongs in the kernel, or arrives through composition.ts as a dependency).
 */
/** @param {string[]} layers @param {string} why */
const upward = (layers, why) => layers.map((layer) => ({ regex: `(^|/)(${layer})(/|\\.js$)`, message: why }));
const layering = [
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: upward(['kernel', 'features', 'composition', 'app', 'main'], 'core/ knows nothing above it.') }],
    },
  },
  {
    files: ['src/kernel/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: upward(['features', 'composition', 'app', 'main'], 'The kernel imports core/ only, never a feature: take what you need as a dependency.') },
      ],
    },
  },
  {
    files: ['src/features/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            // From src/features/<name>/x.ts, '../<other>/…' is another feature; '../../kernel' and '../../core' are fine.
            { regex: '^\\.\\./[^./]', message: 'Features never import each other: move the shared piece into the kernel, or take it as a dependency.' },
            ...upward(['composition', 'app', 'main'], 'A feature is built by composition.ts; it does not import it.'),
          ],
        },
      ],
    },
  },
];

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'src/generated/',
      'packages/client/dist/',
      'packages/client/src/generated/',
      'node_modules/',
      '.data/',
      'public/vendor/',
      'scripts/examples/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js'] }, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Express 5 awaits returned promises from handlers; passing async handlers is the point.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      eqeqeq: 'error',
    },
  },
  {
    files: ['src/main.ts'],
    rules: { 'no-restricted-syntax': ['error', ...wallClockReads] },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/core/clock.ts', 'src/main.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        ...wallClockReads,
        // Only the process edge picks the real clock; everything else is handed one.
        {
          selector: "ImportSpecifier[imported.name='systemClock'], ExportSpecifier[local.name='systemClock'], MemberExpression[property.name='systemClock']",
          message: 'Take the clock as a dependency; only src/main.ts picks systemClock.',
        },
      ],
    },
  },
  ...layering,
  {
    files: ['tests/**/*.ts'],
    rules: {
      // supertest bodies are untyped JSON.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    files: ['public/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { projectService: false, project: false, program: null },
      globals: Object.fromEntries(
        ['window', 'document', 'fetch', 'FormData', 'XMLHttpRequest', 'URL', 'URLSearchParams', 'console', 'setTimeout', 'clearTimeout', 'sessionStorage'].map(
          (name) => [name, 'readonly'],
        ),
      ),
    },
  },
);
