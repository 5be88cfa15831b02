// Runs documented steps (the README's and docs/') in one bash process, in order and as written, recording what each
// did: its exit status, its output, and every curl call it made (status, headers, body, arguments).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ReadmeStep } from './readme-blocks.js';

export interface RecordedCall {
  status: number;
  /** Response headers, names in lower case. */
  headers: Map<string, string>;
  /** The response body as curl printed it (headers removed when the command asked for them with -i). */
  body: string;
  args: string[];
}

export interface StepRun {
  /** Undefined when the run ended before this step finished. */
  exit?: number;
  stdout: string;
  stderr: string;
  calls: RecordedCall[];
}

/**
 * The script's preamble (the test's, not the documentation's): `curl` becomes a function that runs the real curl with the
 * same arguments, plus `-D` to keep the headers and a `tee` to keep the body, so each command runs as a reader runs
 * it and the test still sees every answer. `--max-time` only stops a hung request from hanging the test.
 */
function preamble(recordDir: string): string {
  return `__dir=${JSON.stringify(recordDir)}
__step=0
curl() {
  local __call="$__dir/call.$__step.\${EPOCHREALTIME/./}.$BASHPID"
  printf '%s\\n' "$@" >"$__call.args"
  command curl --max-time 60 -D "$__call.headers" "$@" | tee "$__call.body"
  return "\${PIPESTATUS[0]}"
}
`;
}

function script(steps: ReadmeStep[], recordDir: string): string {
  const parts = [preamble(recordDir)];
  steps.forEach((step, index) => {
    // A group, not a subshell: variables and functions a step defines stay for the next, as in a reader's shell.
    parts.push(`__step=${index}\n{\n${step.command}\n} >"$__dir/out.${index}" 2>"$__dir/err.${index}"\necho "$?" >"$__dir/exit.${index}"\n`);
  });
  return parts.join('\n');
}

function parseHeaders(text: string): { status: number; headers: Map<string, string> } {
  // Interim answers (100 Continue) come first: the last block is the answer.
  const blocks = text.split(/\r?\n\r?\n/).filter((block) => block.startsWith('HTTP/'));
  const last = blocks.at(-1) ?? '';
  const [statusLine = '', ...lines] = last.split(/\r?\n/);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers };
}

function withoutHeaders(body: string): string {
  if (!body.startsWith('HTTP/')) return body;
  const blocks = body.split(/\r?\n\r?\n/);
  while (blocks[0]?.startsWith('HTTP/')) blocks.shift();
  return blocks.join('\r\n\r\n');
}

async function readOr(file: string, fallback: string): Promise<string> {
  return readFile(file, 'utf8').catch(() => fallback);
}

async function collect(stepCount: number, recordDir: string): Promise<StepRun[]> {
  const files = await readdir(recordDir);
  const calls = files
    .filter((file) => file.startsWith('call.') && file.endsWith('.args'))
    .map((file) => {
      const [, step, time] = file.split('.');
      return { step: Number(step), time: Number(time), base: path.join(recordDir, file.slice(0, -'.args'.length)) };
    })
    .sort((a, b) => a.time - b.time);
  const runs: StepRun[] = [];
  for (let index = 0; index < stepCount; index++) {
    const exit = await readOr(path.join(recordDir, `exit.${index}`), '');
    const recorded: RecordedCall[] = [];
    for (const call of calls.filter((entry) => entry.step === index)) {
      const { status, headers } = parseHeaders(await readOr(`${call.base}.headers`, ''));
      const args = (await readOr(`${call.base}.args`, '')).split('\n').slice(0, -1);
      recorded.push({ status, headers, body: withoutHeaders(await readOr(`${call.base}.body`, '')), args });
    }
    runs.push({
      exit: exit.trim() === '' ? undefined : Number(exit),
      stdout: await readOr(path.join(recordDir, `out.${index}`), ''),
      stderr: await readOr(path.join(recordDir, `err.${index}`), ''),
      calls: recorded,
    });
  }
  return runs;
}

/** Runs `steps` with bash in `cwd` and `env`; a run longer than `timeoutMs` is stopped (its process group killed). */
export async function runSteps(
  steps: ReadmeStep[],
  options: { cwd: string; env: NodeJS.ProcessEnv; recordDir: string; timeoutMs: number },
): Promise<StepRun[]> {
  const file = path.join(options.recordDir, 'examples.sh');
  await writeFile(file, script(steps, options.recordDir));
  const bash = spawn('bash', ['--noprofile', '--norc', file], { cwd: options.cwd, env: options.env, detached: true, stdio: 'ignore' });
  const exited = once(bash, 'exit');
  const timer = setTimeout(() => {
    if (bash.pid) process.kill(-bash.pid, 'SIGKILL');
  }, options.timeoutMs);
  await exited;
  clearTimeout(timer);
  return collect(steps.length, options.recordDir);
}
