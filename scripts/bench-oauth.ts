// The OpenID provider's share of `npm run bench`: the token endpoint (client credentials), introspection, UserInfo and
// the refresh grant, each under wrk against the built server, with the tokens they need made through the real flow.
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OAuthBrowser } from '../tests/support/oauth-browser.js';

/** The API the service's access tokens are for (OAUTH_RESOURCES of the benchmarked server). */
export const BENCH_RESOURCE = 'https://api.bench.test';
export const BENCH_RESOURCE_SETTING = `${BENCH_RESOURCE} orders:read`;

interface WrkResult {
  rps: number;
  p99Ms: number;
  non2xx: number;
}

export interface OAuthBenchDeps {
  base: string;
  work: string;
  /** An administrator's access token (registers the clients) and a person's (signs in to the app). */
  adminToken: string;
  userToken: string;
  /** How many refresh tokens the refresh grant's run may spend. */
  refreshTokens: number;
  wrk(url: string, options: { headers?: string[]; script?: string; scriptArgs?: string[] }): Promise<WrkResult>;
  record(name: string, result: WrkResult, note?: string): void;
}

async function json(res: Response, what: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/**
 * A wrk script that spends one refresh token per request and queues the one each answer gives back. At the end the
 * queue replaces the file, so a measured run starts from live tokens after the warm-up has rotated the first ones.
 * `request` is the Lua expression of one request, with `token` in scope.
 */
export function rotatingTokensScript(request: string): string {
  return `local threads = {}
function setup(thread) table.insert(threads, thread) end
tokens = {}
function init(args) file = args[1]; for line in io.lines(file) do table.insert(tokens, line) end end
function request()
  local token = table.remove(tokens, 1) or "none"
  return ${request}
end
function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then table.insert(tokens, token) end
end
function done()
  local out = io.open(threads[1]:get("file"), "w")
  for _, token in ipairs(threads[1]:get("tokens")) do out:write(token, "\\n") end
  out:close()
end
`;
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

/** Measures the four and returns their rates (for the per-vCPU line). */
export async function measureOpenIdProvider(deps: OAuthBenchDeps): Promise<Record<'token' | 'introspection' | 'userinfo' | 'refresh', number>> {
  const { base, work } = deps;
  const register = async (body: Record<string, unknown>) =>
    (await json(
      await fetch(`${base}/admin/oauth-clients`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${deps.adminToken}` },
        body: JSON.stringify(body),
      }),
      'registering a client',
    )) as { clientId: string; clientSecret: string };
  const service = await register({
    name: 'bench service',
    grantTypes: ['client_credentials'],
    scopes: ['orders:read'],
    resources: [BENCH_RESOURCE],
    introspection: true,
  });
  const app = 'http://127.0.0.1:9';
  const web = await register({ name: 'bench app', redirectUris: [`${app}/callback`], scopes: ['openid', 'profile', 'email', 'offline_access'] });
  const token = (client: { clientId: string; clientSecret: string }, form: Record<string, string>) =>
    fetch(`${base}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.clientId, client.clientSecret) },
      body: new URLSearchParams(form).toString(),
    }).then((res) => json(res, 'the token endpoint'));

  // Tokens for people come through the code flow, as an app gets them: one browser session, one consent per grant.
  const browser = new OAuthBrowser(app);
  const viaCodeFlow = async () => {
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL(`${base}/oauth2/authorize`);
    url.search = new URLSearchParams({
      client_id: web.clientId,
      redirect_uri: `${app}/callback`,
      response_type: 'code',
      scope: 'openid profile email offline_access',
      prompt: 'consent',
      state: randomBytes(8).toString('hex'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    const back = await browser.signInToApp(base, url, deps.userToken);
    return (await token(web, {
      grant_type: 'authorization_code',
      code: back.searchParams.get('code') ?? '',
      redirect_uri: `${app}/callback`,
      code_verifier: verifier,
    })) as { access_token: string; refresh_token: string };
  };
  // One after another: a browser's flows share its provider session cookie, which each sign-in renews.
  const pairs = [];
  while (pairs.length < deps.refreshTokens) pairs.push(await viaCodeFlow());

  const script = async (name: string, body: string) => {
    const file = path.join(work, name);
    await writeFile(file, body);
    return file;
  };
  const rates = { token: 0, introspection: 0, userinfo: 0, refresh: 0 };
  /** A wrk script that posts one form, as the service client, to whatever URL it is run against. */
  const serviceForm = (name: string, body: string) =>
    script(
      name,
      `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\nwrk.headers["Authorization"] = "${basic(service.clientId, service.clientSecret)}"\nwrk.body = "${body}"\n`,
    );

  const grant = `grant_type=client_credentials&scope=orders%3Aread&resource=${encodeURIComponent(BENCH_RESOURCE)}`;
  const tokenScript = await serviceForm('oauth-token.lua', grant);
  const tokens = await deps.wrk(`${base}/oauth2/token`, { script: tokenScript });
  deps.record('POST /oauth2/token, client credentials (JWT)', tokens);
  rates.token = tokens.rps;

  const opaque = pairs[0]!.access_token;
  const introspectScript = await serviceForm('oauth-introspect.lua', `token=${opaque}`);
  const introspection = await deps.wrk(`${base}/oauth2/introspect`, { script: introspectScript });
  deps.record('POST /oauth2/introspect (active token)', introspection);
  rates.introspection = introspection.rps;

  const userinfo = await deps.wrk(`${base}/oauth2/userinfo`, { headers: [`Authorization: Bearer ${opaque}`] });
  deps.record('GET /oauth2/userinfo', userinfo);
  rates.userinfo = userinfo.rps;

  // The refresh grant spends a token per request and queues the one it gets back (as POST /refresh's run does).
  const refreshFile = path.join(work, 'oauth-refresh-tokens.txt');
  await writeFile(refreshFile, `${pairs.map((pair) => pair.refresh_token).join('\n')}\n`);
  const refreshScript = await script(
    'oauth-refresh.lua',
    rotatingTokensScript(
      `wrk.format("POST", "/oauth2/token", { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "${basic(web.clientId, web.clientSecret)}" }, "grant_type=refresh_token&refresh_token=" .. token)`,
    ),
  );
  const refresh = await deps.wrk(base, { script: refreshScript, scriptArgs: [refreshFile] });
  deps.record('POST /oauth2/token, refresh grant (rotation)', refresh);
  rates.refresh = refresh.rps;
  return rates;
}
