// Compares a run of the documented steps (the README's and docs/') with what the pages say of them: exit statuses,
// documented answers, and the rate-limit budgets a reader pasting the examples quickly would spend.
import { READS_PER_SCREEN } from '../../src/core/config.js';
import { mismatches } from './readme-answer-pattern.js';
import type { Backend, ReadmeStep } from './readme-blocks.js';
import type { RecordedCall, StepRun } from './readme-run.js';

/** What a reader meets: every budget is RATE_LIMIT_MAX (5 a minute) but the signed-URL one and the reads (a multiple of it). */
const DEFAULT_BUDGET = 5;
const DEFAULT_BUDGETS: Record<string, number> = { 'signed-urls': 300, reads: READS_PER_SCREEN * DEFAULT_BUDGET };

/** Whether a command (not its comments) runs curl itself. */
export function callsCurl(command: string): boolean {
  return command.split('\n').some((line) => /(^|[\s(|;&])curl\s/.test(line.replace(/(^|\s)#.*$/, '')));
}

export function where(step: ReadmeStep): string {
  return `${step.file ?? 'README.md'} line ${step.line} (${step.heading}): ${step.command.split('\n')[0]?.slice(0, 100)}`;
}

function parsedBody(call: RecordedCall): { value?: unknown; error?: string } {
  try {
    return { value: JSON.parse(call.body) };
  } catch {
    return { error: `the answer is not JSON: ${call.body.slice(0, 200)}` };
  }
}

/** How a step's run differs from what its page says of it. */
export function stepProblems(step: ReadmeStep, run: StepRun, backend: Backend): string[] {
  const problems: string[] = [];
  if (run.exit === undefined) return ['never finished (the run stopped before it)'];
  if (run.exit !== 0) problems.push(`exited ${run.exit}: ${run.stderr.trim().slice(0, 300)}`);
  const answers = step.answers.filter((answer) => answer.backend === undefined || answer.backend === backend);
  const documented = run.calls.at(-1);
  if (callsCurl(step.command) && run.calls.length > 0 && answers.length === 0) problems.push('calls the API but documents no answer (# 200 …)');
  if (answers.length > 0 && !documented) problems.push('documents an answer but made no request');
  // Calls a helper made on the way (polling the outbox) must succeed; the documented answer is the last call's.
  for (const call of run.calls.slice(0, answers.length > 0 ? -1 : undefined)) {
    if (call.status >= 400 || call.status === 0) problems.push(`an undocumented call answered ${call.status}: ${call.body.slice(0, 200)}`);
  }
  if (answers.length > 1) problems.push(`documents ${answers.length} answers for the ${backend} backend`);
  const [answer] = answers;
  if (answer && documented) {
    if (documented.status !== answer.status)
      problems.push(`answered ${documented.status} where the page says ${answer.status}: ${documented.body.slice(0, 300)}`);
    if (answer.body) {
      const { value, error } = parsedBody(documented);
      problems.push(...(error ? [error] : mismatches(answer.body, value)));
    }
    for (const { name, value } of answer.headers) {
      const actual = documented.headers.get(name.toLowerCase());
      if (actual !== value) problems.push(`header ${name}: the page says "${value}", the answer has ${actual === undefined ? 'none' : `"${actual}"`}`);
    }
  }
  if (step.prints) {
    let printed: unknown;
    try {
      printed = JSON.parse(run.stdout);
      problems.push(...mismatches(step.prints, printed));
    } catch {
      problems.push(`prints ${JSON.stringify(run.stdout.trim())}, not the documented JSON`);
    }
  }
  return problems;
}

/**
 * Where a reader pasting the examples quickly, at the default budgets, would meet a 429: requests counted per budget
 * and key (the RateLimit-Policy header names both) since the last `# Wait a minute` line.
 */
export function budgetProblems(steps: ReadmeStep[], runs: StepRun[]): string[] {
  const problems: string[] = [];
  let spent = new Map<string, number>();
  steps.forEach((step, index) => {
    if (step.pauseBefore) spent = new Map();
    for (const call of runs[index]?.calls ?? []) {
      const policy = /^"([\w-]+)";.*\bpk=([^;\s]+)/.exec(call.headers.get('ratelimit-policy') ?? '');
      if (!policy) continue;
      const [, group = '', key = ''] = policy;
      const count = (spent.get(`${group} ${key}`) ?? 0) + 1;
      spent.set(`${group} ${key}`, count);
      const budget = DEFAULT_BUDGETS[group] ?? DEFAULT_BUDGET;
      if (count === budget + 1) problems.push(`${where(step)}: request ${count} on the "${group}" budget (${budget} a minute) since the last pause`);
    }
  });
  return problems;
}
