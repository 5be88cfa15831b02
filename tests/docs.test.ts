// The documentation holds together: every relative link and anchor resolves, every page is in the index and leads back
// to it, no example that calls the API sits outside the walk-through unmarked, and every endpoint is in the index.
// (tests/readme-examples.test.ts runs the walk-through itself against a server.)
import { existsSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import {
  documentationFiles,
  headings,
  INDEX,
  isExternal,
  links,
  pageSection,
  readPage,
  resolveLink,
  ROOT,
  slug,
  walkThrough,
  walkThroughEntries,
} from './support/docs-pages.js';
import { shellBlocks } from './support/readme-blocks.js';
import { callsCurl } from './support/readme-checks.js';
import { buildApp, useBackends } from './support/test-app.js';

/** Pages whose links are checked: the documentation and the client library's README, which links into it. */
const LINKING_PAGES = [...documentationFiles(), 'packages/client/README.md'];
const OPERATION = /`(GET|POST|PUT|PATCH|DELETE) (\/[^`\s]*)`/g;

describe('the documentation', () => {
  it('when a page links to a file or a heading of ours, then the file exists and has that heading', () => {
    const broken: string[] = [];
    for (const file of LINKING_PAGES) {
      for (const link of links(readPage(file))) {
        if (isExternal(link.target)) continue;
        const target = resolveLink(file, link.target);
        const where = `${file} line ${link.line}: [${link.text}](${link.target})`;
        if (!existsSync(path.join(ROOT, target.file))) broken.push(`${where}: no file ${target.file}`);
        else if (target.anchor !== undefined) {
          if (!target.file.endsWith('.md')) broken.push(`${where}: an anchor into a file that is not a page`);
          else if (!headings(readPage(target.file)).some((heading) => heading.anchor === target.anchor))
            broken.push(`${where}: ${target.file} has no heading #${target.anchor}`);
        }
      }
    }

    expect(links(readPage('README.md')).length).toBeGreaterThan(20);
    expect(broken).toEqual([]);
  });

  it('when a page is in docs/, then the index lists it and the page links back to the index and the README', () => {
    const listed = links(readPage(INDEX)).map((link) => resolveLink(INDEX, link.target).file);
    const pages = documentationFiles().filter((file) => file.startsWith('docs/') && file !== INDEX);

    expect(pages.length).toBeGreaterThan(10);
    expect(pages.filter((page) => !listed.includes(page))).toEqual([]);
    for (const page of pages) {
      const targets = links(readPage(page)).map((link) => resolveLink(page, link.target).file);
      expect(targets, page).toContain(INDEX);
      expect(targets, page).toContain('README.md');
      expect(headings(readPage(page))[0], page).toMatchObject({ line: 1, level: 1 });
    }
    expect(links(readPage('README.md')).map((link) => resolveLink('README.md', link.target).file)).toContain(INDEX);
  });

  it('when the walk-through is read, then each entry is a section with an example to run, in order, none twice', () => {
    const sections = walkThrough();

    expect(walkThroughEntries()[0]).toMatchObject({ file: 'README.md', anchor: 'the-main-calls' });
    expect(sections.length).toBeGreaterThan(10);
    const empty = sections.filter((part) => !part.blocks.some((block) => !block.noRun && block.steps.length > 0));
    expect(empty.map((part) => `${part.file}#${part.anchor ?? ''}`)).toEqual([]);
  });

  it('when a shell example calls the API outside the walk-through, then it is marked no-run', () => {
    const walked = walkThrough();
    const inWalkThrough = (file: string, line: number) => walked.some((part) => part.file === file && part.firstLine <= line && line <= part.lastLine);
    const unmarked = documentationFiles().flatMap((file) => {
      const lines = readPage(file).split('\n');
      return shellBlocks({ lines, firstLine: 1, file })
        .filter((block) => !block.noRun && !inWalkThrough(file, block.line))
        .filter((block) => block.steps.some((step) => callsCurl(step.command) && step.command.includes('localhost:3000')))
        .map((block) => `${file} line ${block.line} (${block.heading})`);
    });

    expect(unmarked).toEqual([]);
  });

  it('when a heading is linked, then its anchor is the one GitHub makes, and its section ends at the next heading of its level', () => {
    const page = ['# Page', '## Watching it: `npm run ratelimit:test`', 'a', '```sh', '# not a heading', '```', '### Deeper', 'b', '## Next', 'c'].join('\n');

    expect(slug("Where our integration departs from oidc-provider's defaults, and why")).toBe(
      'where-our-integration-departs-from-oidc-providers-defaults-and-why',
    );
    expect(slug('Two-factor authentication (TOTP)')).toBe('two-factor-authentication-totp');
    expect(headings(page).map((heading) => heading.anchor)).toEqual(['page', 'watching-it-npm-run-ratelimittest', 'deeper', 'next']);
    expect(pageSection('x.md', 'watching-it-npm-run-ratelimittest', page)).toMatchObject({ firstLine: 2, lastLine: 8 });
    expect(() => pageSection('x.md', 'missing', page)).toThrow(/no heading/);
    expect(links('[a](b.md#c) `[d](e.md)`\n```\n[f](g.md)\n```\n[two\nlines](h.md)').map((link) => [link.line, link.target])).toEqual([
      [1, 'b.md#c'],
      [5, 'h.md'],
    ]);
  });
});

describe('the endpoint index', () => {
  const backends = useBackends();

  it('when the OpenAPI document lists an operation, then docs/api.md "Every endpoint" names it', async () => {
    const { app } = buildApp(backends);
    const doc = (await request(app).get('/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.entries(doc.paths).flatMap(([route, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${route}`));
    const index = pageSection('docs/api.md', 'every-endpoint').lines.join('\n');
    const named = [...index.matchAll(OPERATION)].map((match) => `${match[1]} ${match[2]}`);

    expect(operations.length).toBeGreaterThan(50);
    expect(operations.filter((operation) => !named.includes(operation))).toEqual([]);
  });
});
