// Exercises the rate limit of running servers and reports what it saw; exits 1 if the limit leaked or never bit.
// Usage: npm run ratelimit:test -- --url http://localhost:3000 [--url http://localhost:3001] [--requests 10] [--concurrency 1]
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string', multiple: true, default: ['http://localhost:3000'] },
    requests: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '1' },
    path: { type: 'string', default: '/protected' },
  },
});
const urls = values.url.map((url) => url.replace(/\/$/, ''));
const total = Number(values.requests);
const concurrency = Number(values.concurrency);
if (!Number.isInteger(total) || total < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error('--requests and --concurrency take whole numbers from 1');
  process.exit(2);
}

interface Outcome {
  index: number;
  url: string;
  status: number;
  remaining?: number;
  resetSeconds?: number;
  retryAfter?: string;
  limit?: number;
}

/** `"account"; r=4; t=60` → { r: 4, t: 60 } */
function parameters(header: string | null): Record<string, number> {
  const found: Record<string, number> = {};
  for (const match of (header ?? '').matchAll(/(\w+)=(\d+)/g)) found[match[1] as string] = Number(match[2]);
  return found;
}

async function post(url: string, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}

async function throwawayUser(base: string): Promise<string> {
  const username = `ratelimit_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('base64url');
  const registered = await post(`${base}/register`, { username, email: `${username}@example.invalid`, password });
  const login = registered.ok ? await post(`${base}/login`, { username, password }) : registered;
  if (!login.ok) {
    const body = (await login.json().catch(() => ({}))) as { error?: { message?: string } };
    throw new Error(`could not set up a user on ${base}: ${login.status} ${body.error?.message ?? ''}`.trim());
  }
  const { access_token } = (await login.json()) as { access_token: string };
  console.log(`user ${username} registered and logged in on ${base}\n`);
  return access_token;
}

async function send(index: number, token: string): Promise<Outcome> {
  const url = urls[index % urls.length] as string;
  const res = await fetch(`${url}${values.path}`, { headers: { Authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  const state = parameters(res.headers.get('ratelimit'));
  const policy = parameters(res.headers.get('ratelimit-policy'));
  return {
    index,
    url,
    status: res.status,
    remaining: state.r,
    resetSeconds: state.t,
    retryAfter: res.headers.get('retry-after') ?? undefined,
    limit: policy.q,
  };
}

function show(outcome: Outcome): void {
  const cells = [
    `#${String(outcome.index + 1).padStart(3)}`,
    outcome.url.padEnd(Math.max(...urls.map((url) => url.length))),
    String(outcome.status),
    `remaining=${outcome.remaining ?? '-'}`,
    `reset=${outcome.resetSeconds ?? '-'}s`,
    outcome.retryAfter ? `retry-after=${outcome.retryAfter}s` : '',
  ];
  console.log(cells.join('  ').trimEnd());
}

async function main(): Promise<number> {
  const token = await throwawayUser(urls[0] as string);
  console.log(
    `${total} × GET ${values.path}, ${concurrency === 1 ? 'one at a time' : `in bursts of ${concurrency}`}, round-robin over ${urls.length} URL(s)\n`,
  );
  const outcomes: Outcome[] = [];
  for (let start = 0; start < total; start += concurrency) {
    const burst = Array.from({ length: Math.min(concurrency, total - start) }, (_, offset) => send(start + offset, token));
    for (const outcome of (await Promise.all(burst)).sort((a, b) => a.index - b.index)) {
      show(outcome);
      outcomes.push(outcome);
    }
  }

  const limit = outcomes.find((outcome) => outcome.limit !== undefined)?.limit;
  const allowed = outcomes.filter((outcome) => outcome.status !== 429).length;
  const limited = outcomes.length - allowed;
  console.log('\nsummary');
  console.table(
    urls.map((url) => {
      const mine = outcomes.filter((outcome) => outcome.url === url);
      return { url, sent: mine.length, allowed: mine.filter((o) => o.status !== 429).length, limited: mine.filter((o) => o.status === 429).length };
    }),
  );
  console.log(`advertised limit: ${limit ?? 'none (no RateLimit-Policy header)'}; allowed: ${allowed}; rate limited: ${limited}`);

  if (limit === undefined) return fail('the server advertised no limit');
  if (allowed > limit) return fail(`the server let ${allowed} requests through, more than its limit of ${limit}`);
  if (limited === 0) return fail('the server never answered 429 (send more requests than the limit)');
  console.log('PASS: the limit held');
  return 0;
}

function fail(reason: string): number {
  console.log(`FAIL: ${reason}`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
