import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

// The project's own lint config, without type information (so a file that does not exist can be linted quickly).
const eslint = new ESLint({
  cwd: new URL('..', import.meta.url).pathname,
  overrideConfig: [{ ...tseslint.configs.disableTypeChecked, languageOptions: { parserOptions: { projectService: false, project: false, program: null } } }],
});

async function layeringErrors(filePath: string, specifier: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import { x } from '${specifier}';\nexport const y = x;\n`, { filePath });
  return (result?.messages ?? []).filter((message) => message.ruleId === 'no-restricted-imports').map((message) => message.message);
}

describe('the layers (lint): an import only runs down, main → app → composition → features → kernel → core', () => {
  it.each([
    ['src/features/users/example.ts', '../email/email-service.js', 'a feature imports another feature'],
    ['src/features/users/example.ts', '../../composition.js', 'a feature imports the composition'],
    ['src/kernel/sessions/example.ts', '../../features/audit/audit-log.js', 'the kernel imports a feature'],
    ['src/kernel/sessions/example.ts', '../../app.js', 'the kernel imports the app'],
    ['src/core/example.ts', '../kernel/sessions/sessions.js', 'core imports the kernel'],
    ['src/core/http/example.ts', '../../features/images/image-service.js', 'core imports a feature'],
  ])('when %s imports %s (%s), then lint fails', async (file, specifier) => {
    expect(await layeringErrors(file, specifier)).toHaveLength(1);
  });

  it.each([
    ['src/features/users/example.ts', './user-service.js'],
    ['src/features/users/example.ts', '../../kernel/sessions/sessions.js'],
    ['src/features/users/example.ts', '../../core/errors.js'],
    ['src/kernel/sessions/example.ts', '../tokens/tokens.js'],
    ['src/kernel/sessions/example.ts', '../../core/clock.js'],
    ['src/core/http/example.ts', '../errors.js'],
    ['src/composition.ts', './features/users/user-service.js'],
  ])('when %s imports %s (downward or its own), then lint passes', async (file, specifier) => {
    expect(await layeringErrors(file, specifier)).toEqual([]);
  });
});
