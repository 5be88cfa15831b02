// Reads the documentation as a reader follows it: the README and the pages in docs/, their headings and links, and
// the walk-through (docs/README.md's ordered list of the sections whose shell examples run, in that order).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type ReadmeBlock, shellBlocks } from './readme-blocks.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');
/** The index page, which lists every page and the walk-through. */
export const INDEX = 'docs/README.md';
const WALK_THROUGH_HEADING = '## The walk-through';

/** The README and every page in docs/, as paths from the project root. */
export function documentationFiles(): string[] {
  const pages = readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...pages];
}

export function readPage(file: string): string {
  return readFileSync(path.join(ROOT, file), 'utf8');
}

/** Each line of a page, with whether it lies inside a fenced code block (the fences themselves count as inside). */
function fencedLines(markdown: string): { text: string; fenced: boolean }[] {
  let fence: string | undefined;
  return markdown.split('\n').map((text) => {
    const open = /^\s*(`{3,}|~{3,})/.exec(text)?.[1];
    if (fence === undefined && open) {
      fence = open;
      return { text, fenced: true };
    }
    if (fence !== undefined) {
      if (open && text.trim().startsWith(fence) && text.trim().replace(/[`~]/g, '') === '') fence = undefined;
      return { text, fenced: true };
    }
    return { text, fenced: false };
  });
}

/** GitHub's anchor for a heading's text: lower case, punctuation dropped, spaces as hyphens. */
export function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

export interface Heading {
  /** 1-based line number. */
  line: number;
  level: number;
  text: string;
  anchor: string;
}

/** The headings of a page outside code blocks, each with its anchor (a repeated one gets -1, -2 … as on GitHub). */
export function headings(markdown: string): Heading[] {
  const seen = new Map<string, number>();
  const found: Heading[] = [];
  fencedLines(markdown).forEach(({ text, fenced }, index) => {
    const match = fenced ? null : /^(#{1,6}) (.*?)\s*#*\s*$/.exec(text);
    if (!match) return;
    const [, hashes = '', title = ''] = match;
    const base = slug(title);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.push({ line: index + 1, level: hashes.length, text: title, anchor: count === 0 ? base : `${base}-${count}` });
  });
  return found;
}

export interface Link {
  line: number;
  text: string;
  target: string;
}

/** The inline links of a page, outside code blocks and code spans (a link's text may run onto the next line). */
export function links(markdown: string): Link[] {
  // Fenced lines become empty and code spans blanks of the same length, so an index still gives the line.
  const prose = fencedLines(markdown)
    .map(({ text, fenced }) => (fenced ? '' : text))
    .join('\n')
    .replace(/`[^`]*`/g, (code) => code.replace(/[^\n]/g, ' '));
  const found: Link[] = [];
  for (const match of prose.matchAll(/\[([^[\]]*)\]\(([^)\s]+)\)/g)) {
    const text = match[1] ?? '';
    if (text.includes('\n\n')) continue;
    const line = prose.slice(0, match.index).split('\n').length;
    found.push({ line, text: text.replace(/\s+/g, ' '), target: match[2] ?? '' });
  }
  return found;
}

/** Where a relative link leads from `file`: the page (from the project root) and the anchor, if any. */
export function resolveLink(file: string, target: string): { file: string; anchor?: string } {
  const [pathPart = '', anchor] = target.split('#', 2);
  const resolved = pathPart === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), pathPart));
  return { file: resolved, anchor: anchor || undefined };
}

export function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target);
}

export interface PageSection {
  file: string;
  /** The heading's anchor, or undefined for a whole page. */
  anchor?: string;
  /** 1-based, inclusive. */
  firstLine: number;
  lastLine: number;
  lines: string[];
}

/** A page, or the section under one of its headings up to the next heading of the same or a higher level. */
export function pageSection(file: string, anchor: string | undefined, markdown = readPage(file)): PageSection {
  const lines = markdown.split('\n');
  if (anchor === undefined) return { file, firstLine: 1, lastLine: lines.length, lines };
  const all = headings(markdown);
  const at = all.findIndex((heading) => heading.anchor === anchor);
  if (at < 0) throw new Error(`${file} has no heading with the anchor #${anchor}`);
  const start = all[at] as Heading;
  const end = all.slice(at + 1).find((heading) => heading.level <= start.level);
  const lastLine = end ? end.line - 1 : lines.length;
  return { file, anchor, firstLine: start.line, lastLine, lines: lines.slice(start.line - 1, lastLine) };
}

/** The walk-through's entries, in order: each a link in the ordered list under "## The walk-through" of the index. */
export function walkThroughEntries(index = readPage(INDEX)): { text: string; file: string; anchor?: string }[] {
  const lines = index.split('\n');
  const start = lines.findIndex((line) => line.trim() === WALK_THROUGH_HEADING);
  if (start < 0) throw new Error(`${INDEX} has no "${WALK_THROUGH_HEADING}" section`);
  const entries: { text: string; file: string; anchor?: string }[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,2} /.test(line)) break;
    const item = /^\d+\. \[([^\]]+)\]\(([^)\s]+)\)/.exec(line);
    if (item) entries.push({ text: item[1] ?? '', ...resolveLink(INDEX, item[2] ?? '') });
  }
  return entries;
}

/**
 * The walk-through's sections in order, each with its shell blocks. `rewrite` may change a page's text first (the
 * test points `localhost:3000` at its own server). Two entries that cover the same lines are refused: a block would
 * run twice.
 */
export function walkThrough(rewrite: (markdown: string) => string = (markdown) => markdown): (PageSection & { blocks: ReadmeBlock[] })[] {
  const sections = walkThroughEntries().map(({ file, anchor }) => {
    const section = pageSection(file, anchor, rewrite(readPage(file)));
    return { ...section, blocks: shellBlocks({ lines: section.lines, firstLine: section.firstLine, file }) };
  });
  sections.forEach((one, i) => {
    for (const other of sections.slice(i + 1)) {
      if (one.file === other.file && one.firstLine <= other.lastLine && other.firstLine <= one.lastLine)
        throw new Error(`the walk-through lists ${one.file} lines ${one.firstLine}-${one.lastLine} and ${other.firstLine}-${other.lastLine}: they overlap`);
    }
  });
  return sections;
}
