// Reads an import's records from NDJSON (streamed, a line at a time), a JSON document or CSV with a header row; a
// line that cannot be read is one rejection, never the end of the import.
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import type { SourceItem } from './user-import.js';

/** NDJSON: one JSON value a line; blank lines are skipped, and line numbers count every line. */
export async function* readNdjson(input: Readable): AsyncGenerator<SourceItem> {
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++;
    if (text.trim() === '') continue;
    yield parseLine(line, text);
  }
}

/** The same from text already in memory (the admin API's bounded body). */
export function* ndjsonLines(body: string): Generator<SourceItem> {
  let line = 0;
  let start = 0;
  while (start <= body.length) {
    const end = body.indexOf('\n', start);
    const text = body.slice(start, end === -1 ? body.length : end);
    start = end === -1 ? body.length + 1 : end + 1;
    line++;
    if (text.trim() === '') continue;
    yield parseLine(line, text);
  }
}

function parseLine(line: number, text: string): SourceItem {
  try {
    return { line, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { line, rejection: { line, code: 'invalid_json', message: `not JSON: ${err instanceof Error ? err.message : String(err)}` } };
  }
}

/**
 * A JSON document: an array of records, or an object holding one under `users` (Firebase's auth:export, Keycloak's
 * realm export). Read whole: NDJSON is the format for files too large for memory. `line` is the record's position.
 */
export async function* readJsonDocument(input: Readable): AsyncGenerator<SourceItem> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  const document = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  const records = Array.isArray(document) ? document : (document as { users?: unknown } | null)?.users;
  if (!Array.isArray(records)) throw new SourceError('expected a JSON array of users, or an object with a "users" array');
  let line = 0;
  for (const value of records) yield { line: ++line, value: value as unknown };
}

/** CSV with a header row (psql's \copy … csv header writes one); a row's `line` is where it starts in the file. */
export async function* readCsv(input: Readable): AsyncGenerator<SourceItem> {
  const parser = input.pipe(parse({ columns: true, bom: true, skip_empty_lines: true, info: true, relax_column_count: true }));
  try {
    for await (const row of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      yield { line: row.info.lines, value: row.record };
    }
  } catch (err) {
    // A quoting error ends the parser: what came before is imported, the rest is reported as one refusal.
    const where = (err as { lines?: number }).lines ?? 0;
    yield { line: where, rejection: { line: where, code: 'invalid_csv', message: `the CSV cannot be read from here on: ${(err as Error).message}` } };
  }
}

/** The whole source is unusable (not the format it claims): the CLI says so and stops before writing anything. */
export class SourceError extends Error {}

/** The first character that is not white space, and the whole input again (the characters read are put back). */
export async function peek(input: Readable): Promise<{ first: string | undefined; input: Readable }> {
  const iterator = input[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const head: Buffer[] = [];
  let first: string | undefined;
  while (first === undefined) {
    const next = await iterator.next();
    if (next.done) break;
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    head.push(chunk);
    first = /\S/.exec(chunk.toString('utf8'))?.[0];
  }
  const again = Readable.from(
    (async function* () {
      yield* head;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    })(),
  );
  return { first, input: again };
}
