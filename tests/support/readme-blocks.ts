// Reads the shell examples of the README and of docs/ into steps: each command, in document order, with the answers
// written under it.
//
// Conventions a block follows (docs/api.md, "Running the examples", says so too):
// - A command may span lines (a trailing `\`, an open quote, brace or parenthesis).
// - Its answer is a comment on its last line or on the comment lines right below it that starts with a status:
//   `# 200 {"status":"ok"}`, `# 204: this session ends`. A JSON value may continue on the next comment lines;
//   indented `#     Name: value` lines below it are response headers; text after the value is prose.
//   `# embedded: 200 …` and `# real services: 200 …` give an answer that differs by backend.
// - A command that calls nothing may document what it prints: `# prints ["pwd","otp","mfa"]`.
// - A comment line starting `# Wait a minute` marks where a reader pasting quickly must pause for the budgets.
// - A block whose info string says `no-run` (```sh no-run) is shown, not run.
import { leadingValue, type Pattern, parsePattern } from './readme-answer-pattern.js';

export type Backend = 'embedded' | 'real services';

export interface DocumentedAnswer {
  line: number;
  status: number;
  backend?: Backend;
  body?: Pattern;
  headers: { name: string; value: string }[];
}

export interface ReadmeStep {
  /** The page the command is on, from the project root (README.md when not given). */
  file?: string;
  /** The page's line the command starts on (1-based). */
  line: number;
  heading: string;
  command: string;
  answers: DocumentedAnswer[];
  prints?: Pattern;
  /** A `# Wait a minute` line came before this step (since the previous one). */
  pauseBefore: boolean;
}

export interface ReadmeBlock {
  file?: string;
  line: number;
  heading: string;
  noRun: boolean;
  steps: ReadmeStep[];
}

const FENCE = /^(\s*)```\s*([\w-]*)(.*)$/;
const ANSWER = /^(?:(embedded|real services): )?(\d{3})\b(.*)$/;
const HEADER = /^#\s{2,}([A-Z][\w-]*): (.*)$/;
const PAUSE = /^#\s*Wait a minute\b/i;

/** The lines of one `## ` section (its heading included) and the line it starts on. */
export function section(markdown: string, heading: string): { lines: string[]; firstLine: number } {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => line.trim() === `## ${heading}`);
  if (start < 0) throw new Error(`the page has no "## ${heading}" section`);
  const end = lines.findIndex((line, index) => index > start && line.startsWith('## '));
  return { lines: lines.slice(start, end < 0 ? undefined : end), firstLine: start + 1 };
}

/** The ```sh and ```bash blocks of a section, in order, with the nearest heading above each. */
export function shellBlocks({ lines, firstLine, file }: { lines: string[]; firstLine: number; file?: string }): ReadmeBlock[] {
  const blocks: ReadmeBlock[] = [];
  let heading = '';
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] as string;
    if (/^#{1,4} /.test(line)) heading = line.replace(/^#+ /, '');
    const fence = FENCE.exec(line);
    if (!fence) continue;
    const [, indent = '', language = '', info = ''] = fence;
    const body: string[] = [];
    let close = index + 1;
    while (close < lines.length && !/^\s*```\s*$/.test(lines[close] as string)) body.push((lines[close++] as string).slice(indent.length));
    if (language === 'sh' || language === 'bash') {
      const fenceLine = firstLine + index;
      blocks.push({ file, line: fenceLine, heading, noRun: /\bno-run\b/.test(info), steps: steps(body, fenceLine + 1, heading, file) });
    }
    index = close;
  }
  return blocks;
}

interface ScanState {
  /** Open quotes and brackets, innermost last: `$(` inside double quotes starts fresh code, as in bash. */
  open: string[];
  /** The comment on the line just scanned (outside quotes), without its `#`. */
  comment?: string;
  continued: boolean;
}

/** Follows quotes, brackets and comments through one more line of a command. */
function scanLine(line: string, state: ScanState): ScanState {
  const open = [...state.open];
  let comment: string | undefined;
  for (let at = 0; at < line.length; at++) {
    const char = line[at] as string;
    const inside = open.at(-1);
    if (inside === "'") {
      if (char === "'") open.pop();
    } else if (inside === '"') {
      if (char === '\\') at++;
      else if (char === '"') open.pop();
      else if (char === '$' && line[at + 1] === '(') {
        open.push('(');
        at++;
      }
    } else if (char === '\\') at++;
    else if (char === "'" || char === '"' || char === '(' || char === '{') open.push(char);
    else if ((char === ')' && inside === '(') || (char === '}' && inside === '{')) open.pop();
    else if (char === '#' && (at === 0 || /\s/.test(line[at - 1] as string))) {
      comment = line.slice(at + 1);
      break;
    }
  }
  const continued = open.length > 0 || (comment === undefined && /(^|[^\\])\\$/.test(line));
  return { open, comment, continued };
}

interface OpenAnswer {
  /** The page, for error messages. */
  file: string;
  answer: DocumentedAnswer;
  /** JSON text still waiting for its closing bracket. */
  pending?: string;
}

function startAnswer(text: string, line: number, file: string): OpenAnswer | undefined {
  const match = ANSWER.exec(text.trim());
  if (!match) return undefined;
  const [, backend, status, rest = ''] = match;
  const open: OpenAnswer = { file, answer: { line, status: Number(status), backend: backend as Backend | undefined, headers: [] } };
  const trimmed = rest.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) continueBody(open, trimmed);
  return open;
}

function continueBody(open: OpenAnswer, text: string): void {
  const joined = open.pending === undefined ? text : `${open.pending} ${text}`;
  const value = leadingValue(joined);
  if (!value) {
    open.pending = joined;
    return;
  }
  open.pending = undefined;
  try {
    open.answer.body = parsePattern(value.value);
  } catch (err) {
    throw new Error(`${open.file} line ${open.answer.line}: ${(err as Error).message}`, { cause: err });
  }
}

function steps(lines: string[], firstLine: number, heading: string, file: string | undefined): ReadmeStep[] {
  const result: ReadmeStep[] = [];
  let pauseBefore = false;
  let index = 0;
  while (index < lines.length) {
    const line = lines[index] as string;
    if (line.trim() === '' || line.trimStart().startsWith('#')) {
      if (PAUSE.test(line.trimStart())) pauseBefore = true;
      index++;
      continue;
    }
    const start = index;
    let state = scanLine(line, { open: [], continued: false });
    while (state.continued && index + 1 < lines.length) state = scanLine(lines[++index] as string, state);
    const step: ReadmeStep = { file, line: firstLine + start, heading, command: lines.slice(start, index + 1).join('\n'), answers: [], pauseBefore };
    pauseBefore = false;
    index++;
    let open = state.comment === undefined ? undefined : readTrailing(step, state.comment, firstLine + index - 1);
    // The comment lines right below a command: answers, their continuation and their headers.
    while (index < lines.length && (lines[index] as string).trimStart().startsWith('#')) {
      const text = (lines[index] as string).trim();
      const lineNumber = firstLine + index;
      const started = startAnswer(text.slice(1), lineNumber, file ?? 'README.md');
      if (open?.pending !== undefined) continueBody(open, text.slice(1).trim());
      else if (started) {
        step.answers.push(started.answer);
        open = started;
      } else if (open && HEADER.test(text)) {
        const [, name = '', rest = ''] = HEADER.exec(text) ?? [];
        open.answer.headers.push({ name, value: rest.split(/\s{2,}|\s+\(/)[0]?.trim() ?? '' });
      } else break;
      index++;
    }
    if (open?.pending !== undefined) throw new Error(`${open.file} line ${open.answer.line}: the documented answer never closes its brackets`);
    result.push(step);
  }
  return result;
}

function readTrailing(step: ReadmeStep, comment: string, line: number): OpenAnswer | undefined {
  const prints = /^\s*prints (.*)$/.exec(comment);
  if (prints) {
    try {
      step.prints = parsePattern(prints[1] as string);
    } catch (err) {
      throw new Error(`${step.file ?? 'README.md'} line ${line}: ${(err as Error).message}`, { cause: err });
    }
    return undefined;
  }
  const open = startAnswer(comment, line, step.file ?? 'README.md');
  if (open) step.answers.push(open.answer);
  return open;
}
