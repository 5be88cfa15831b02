// The answers the README and docs/ write under their commands (`# 200 {"id":"…","roles":["user"],…}`), read as patterns.
//
// The notation is JSON with three additions, so an example can stay short and still be checked:
// - `…` inside a string matches any text there ("eyJ…" is any string starting with "eyJ"; "…" is any string);
// - `…` standing alone is any value, and as an object entry or array item it means "and more" ({…} is any object);
// - a key without a value ({"id","username"}) must be present, whatever it holds; `"a" | "b"` is either value.
// An object or array without `…` must have exactly the keys or items written, so an answer that gains or loses one
// shows up as a difference between the README and the server.

export type Pattern =
  | { kind: 'any' }
  | { kind: 'object'; entries: { key: string; value?: Pattern }[]; open: boolean }
  | { kind: 'array'; items: Pattern[]; open: boolean }
  | { kind: 'string'; parts: string[] }
  | { kind: 'scalar'; value: number | boolean | null }
  | { kind: 'oneOf'; options: Pattern[] };

type Token = { type: 'punct'; value: string } | { type: 'string'; value: string } | { type: 'ellipsis' } | { type: 'scalar'; value: number | boolean | null };

const ELLIPSIS = '…';
const SCALAR = /^(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  while (at < text.length) {
    const char = text[at] as string;
    if (/\s/.test(char)) {
      at++;
    } else if ('{}[]:,|'.includes(char)) {
      tokens.push({ type: 'punct', value: char });
      at++;
    } else if (char === ELLIPSIS) {
      tokens.push({ type: 'ellipsis' });
      at++;
    } else if (char === '"') {
      const end = /^"(?:[^"\\]|\\.)*"/.exec(text.slice(at));
      if (!end) throw new Error(`an unterminated string at ${at} in ${text}`);
      tokens.push({ type: 'string', value: JSON.parse(end[0]) as string });
      at += end[0].length;
    } else {
      const scalar = SCALAR.exec(text.slice(at));
      if (!scalar) throw new Error(`unexpected ${JSON.stringify(text.slice(at, at + 20))} at ${at} in ${text}`);
      tokens.push({ type: 'scalar', value: JSON.parse(scalar[0]) as number | boolean | null });
      at += scalar[0].length;
    }
  }
  return tokens;
}

class Reader {
  private at = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly text: string,
  ) {}

  peek(): Token | undefined {
    return this.tokens[this.at];
  }

  next(): Token {
    const token = this.tokens[this.at++];
    if (!token) throw new Error(`the pattern ends too early: ${this.text}`);
    return token;
  }

  isPunct(value: string): boolean {
    const token = this.peek();
    return token?.type === 'punct' && token.value === value;
  }

  expectPunct(value: string): void {
    const token = this.next();
    if (token.type !== 'punct' || token.value !== value) throw new Error(`expected "${value}" in ${this.text}`);
  }

  done(): boolean {
    return this.at === this.tokens.length;
  }
}

function readValue(reader: Reader): Pattern {
  const first = readSingle(reader);
  if (!reader.isPunct('|')) return first;
  const options = [first];
  while (reader.isPunct('|')) {
    reader.next();
    options.push(readSingle(reader));
  }
  return { kind: 'oneOf', options };
}

function readSingle(reader: Reader): Pattern {
  const token = reader.next();
  if (token.type === 'ellipsis') return { kind: 'any' };
  if (token.type === 'string') return { kind: 'string', parts: token.value.split(ELLIPSIS) };
  if (token.type === 'scalar') return { kind: 'scalar', value: token.value };
  if (token.value === '{') return readObject(reader);
  if (token.value === '[') return readArray(reader);
  throw new Error(`unexpected "${token.value}"`);
}

function readObject(reader: Reader): Pattern {
  const entries: { key: string; value?: Pattern }[] = [];
  let open = false;
  while (!reader.isPunct('}')) {
    const token = reader.next();
    if (token.type === 'ellipsis') open = true;
    else if (token.type === 'string') {
      if (reader.isPunct(':')) {
        reader.next();
        entries.push({ key: token.value, value: readValue(reader) });
      } else entries.push({ key: token.value });
    } else throw new Error('an object entry must be "key", "key": value or …');
    if (!reader.isPunct('}')) reader.expectPunct(',');
  }
  reader.next();
  return { kind: 'object', entries, open };
}

function readArray(reader: Reader): Pattern {
  const items: Pattern[] = [];
  let open = false;
  while (!reader.isPunct(']')) {
    if (reader.peek()?.type === 'ellipsis') {
      reader.next();
      open = true;
    } else items.push(readValue(reader));
    if (!reader.isPunct(']')) reader.expectPunct(',');
  }
  reader.next();
  return { kind: 'array', items, open };
}

/** Reads a pattern written in the notation above; throws, naming the text, when it is not one. */
export function parsePattern(text: string): Pattern {
  const reader = new Reader(tokenize(text), text);
  const pattern = readValue(reader);
  if (!reader.done()) throw new Error(`text after the pattern in ${text}`);
  return pattern;
}

/**
 * The bracketed value that `text` starts with (an object or array, strings respected) and what follows it, or
 * undefined when its brackets do not close within `text` (an answer may continue on the next comment line).
 */
export function leadingValue(text: string): { value: string; rest: string } | undefined {
  let depth = 0;
  let inString = false;
  for (let at = 0; at < text.length; at++) {
    const char = text[at];
    if (inString) {
      if (char === '\\') at++;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === '{' || char === '[') depth++;
    else if (char === '}' || char === ']') {
      depth--;
      if (depth === 0) return { value: text.slice(0, at + 1), rest: text.slice(at + 1) };
    }
  }
  return undefined;
}

function shown(value: unknown): string {
  const json = JSON.stringify(value);
  return json.length > 120 ? `${json.slice(0, 117)}…` : json;
}

function matchString(parts: string[], actual: string): boolean {
  const [first = '', ...more] = parts;
  if (more.length === 0) return actual === first;
  const last = more.pop() as string;
  if (!actual.startsWith(first) || actual.length < first.length + last.length || !actual.endsWith(last)) return false;
  let at = first.length;
  const end = actual.length - last.length;
  for (const part of more) {
    const found = actual.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

/** Every way `actual` differs from `pattern`, each naming where (`$.user.roles[0]`); empty when it matches. */
export function mismatches(pattern: Pattern, actual: unknown, where = '$'): string[] {
  switch (pattern.kind) {
    case 'any':
      return [];
    case 'scalar':
      return actual === pattern.value ? [] : [`${where}: expected ${shown(pattern.value)}, got ${shown(actual)}`];
    case 'string':
      return typeof actual === 'string' && matchString(pattern.parts, actual)
        ? []
        : [`${where}: expected "${pattern.parts.join(ELLIPSIS)}", got ${shown(actual)}`];
    case 'oneOf':
      return pattern.options.some((option) => mismatches(option, actual, where).length === 0)
        ? []
        : [`${where}: none of the documented values matches ${shown(actual)}`];
    case 'array': {
      if (!Array.isArray(actual)) return [`${where}: expected an array, got ${shown(actual)}`];
      const problems: string[] = [];
      if (pattern.open ? actual.length < pattern.items.length : actual.length !== pattern.items.length) {
        problems.push(`${where}: expected ${pattern.open ? 'at least ' : ''}${pattern.items.length} items, got ${actual.length}: ${shown(actual)}`);
      }
      pattern.items.forEach((item, index) => {
        if (index < actual.length) problems.push(...mismatches(item, actual[index], `${where}[${index}]`));
      });
      return problems;
    }
    case 'object': {
      if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return [`${where}: expected an object, got ${shown(actual)}`];
      const record = actual as Record<string, unknown>;
      const problems: string[] = [];
      for (const { key, value } of pattern.entries) {
        if (!(key in record)) problems.push(`${where}.${key}: documented but absent`);
        else if (value) problems.push(...mismatches(value, record[key], `${where}.${key}`));
      }
      if (!pattern.open) {
        const documented = new Set(pattern.entries.map((entry) => entry.key));
        for (const key of Object.keys(record)) if (!documented.has(key)) problems.push(`${where}.${key}: in the answer but not documented (add it, or …)`);
      }
      return problems;
    }
  }
}
