import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

// The project's own lint config, without type information (so a file that does not exist can be linted quickly).
const eslint = new ESLint({
  cwd: new URL('..', import.meta.url).pathname,
  overrideConfig: [{ ...tseslint.configs.disableTypeChecked, languageOptions: { parserOptions: { projectService: false, project: false, program: null } } }],
});

const WALL_CLOCK_READS = [
  'export const a = Date.now();',
  'export const b = new Date();',
  'export const c = Date();',
  'export const d = [1].map(() => Date.now);',
  "export { systemClock } from '../core/clock.js';",
  "import { systemClock as wall } from '../core/clock.js';\nexport const e = wall;",
  "import * as clocks from '../core/clock.js';\nexport const f = clocks.systemClock;",
];

async function restrictedIn(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((message) => message.ruleId === 'no-restricted-syntax').map((message) => message.message);
}

describe('time comes from the injected clock (lint)', () => {
  it.each(WALL_CLOCK_READS)('when src/ reads the wall clock (%s), then lint fails', async (code) => {
    expect(await restrictedIn('src/features/wall-clock-example.ts', code)).toHaveLength(1);
  });

  it('when src/ reads a time it was given, then lint passes', async () => {
    const code =
      'export const at = (clock: { now(): number }) => new Date(clock.now());\nexport const epoch = new Date(0);\nexport const parsed = Date.parse("2026-01-01");';
    expect(await restrictedIn('src/features/wall-clock-example.ts', code)).toEqual([]);
  });

  it('when the clock itself reads the wall clock, then lint passes; main.ts may pick systemClock but not read Date', async () => {
    expect(await restrictedIn('src/core/clock.ts', 'export const systemClock = { now: () => Date.now() };')).toEqual([]);
    expect(await restrictedIn('src/main.ts', "import { systemClock } from './core/clock.js';\nexport const clock = systemClock;")).toEqual([]);
    expect(await restrictedIn('src/main.ts', 'export const now = Date.now();')).toHaveLength(1);
  });
});
