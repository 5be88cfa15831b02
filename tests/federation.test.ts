// Signing in with outside identity providers, over HTTP, against a real OpenID provider (panva's oidc-provider) and a
// GitHub-shaped OAuth 2.0 stand-in, both on loopback: the flows, linking, and the attacks, each of which gets no token.
import { randomBytes, createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppConfig } from '../src/app.js';
import type { ProviderSettings } from '../src/core/config.js';
import { bearer, createAdmin, login, readyToEnrol, registerAndLogin, uniqueName } from './support/accounts.js';
import { readOutbox } from '../src/features/email/transport.js';
import { vouchesForEmail } from '../src/features/providers/provider-clients.js';
import { codeAt } from '../src/kernel/verifiers/totp.js';
import { type GithubPeer, startGithubPeer } from './support/github-peer.js';
import { type OidcPeer, startOidcPeer } from './support/oidc-peer.js';
import { CookieJar, completeAtCallback, type PersonChoice, signInAtProvider, signInThroughProvider } from './support/provider-driver.js';
import { buildApp, builtWith, testConfig, useBackends } from './support/test-app.js';

const SECRET = 'corp-client-secret-0123456789abcdefghijklmnop';
const APP_URL = 'https://app.example.com/callback';
const MOBILE_URL = 'com.example.app:/oauth';

interface Authkit {
  base: string;
  app: Express;
  config: AppConfig;
  server: http.Server;
  deps: ReturnType<typeof buildApp>['deps'];
}

describe('signing in with outside identity providers', () => {
  const backends = useBackends();
  let oidcPeer: OidcPeer;
  let github: GithubPeer;
  const servers: http.Server[] = [];

  beforeAll(async () => {
    [oidcPeer, github] = await Promise.all([startOidcPeer(), startGithubPeer()]);
  });
  afterAll(async () => {
    await Promise.all([oidcPeer?.close(), github?.close(), ...servers.map((server) => new Promise((resolve) => server.close(resolve)))]);
  });

  /** authkit on a port of its own, with `corp` (OpenID Connect, the peer) and `github` (the stand-in) from its config. */
  async function authkit(overrides: Partial<AppConfig> = {}, listenOn?: http.Server): Promise<Authkit> {
    const server = listenOn ?? http.createServer();
    if (!listenOn) {
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      servers.push(server);
    }
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const providers: ProviderSettings[] = [
      { id: 'corp', type: 'oidc', name: 'Corp', clientId: `corp-${base}`, clientSecret: SECRET, issuer: oidcPeer.issuer },
      {
        id: 'github',
        type: 'github',
        name: 'GitHub',
        clientId: `gh-${base}`,
        clientSecret: SECRET,
        authorizationUrl: `${github.url}/login/oauth/authorize`,
        tokenUrl: `${github.url}/login/oauth/access_token`,
        apiUrl: github.url,
      },
    ];
    oidcPeer.addClient({
      clientId: `corp-${base}`,
      clientSecret: SECRET,
      redirectUris: [`${base}/auth/providers/corp/callback`],
      tokenEndpointAuthMethod: 'client_secret_post',
    });
    github.addApp({ clientId: `gh-${base}`, clientSecret: SECRET, callbackUrl: `${base}/auth/providers/github/callback` });
    const defaults = testConfig();
    const config: AppConfig = {
      ...defaults,
      providers,
      authRedirectUrls: [APP_URL, MOBILE_URL],
      authProviderTimeoutMs: 1_000,
      email: { ...defaults.email, baseUrl: base },
      ...overrides,
    };
    const { app, deps } = buildApp(backends, { config });
    server.removeAllListeners('request');
    server.on('request', app);
    return { base, app, config, server, deps };
  }

  function person(email: string | undefined, verified = true) {
    const sub = randomBytes(8).toString('hex');
    oidcPeer.setUser({ sub, email, email_verified: verified, name: 'Grace Hopper' });
    return { sub, choice: { signInAs: sub } as PersonChoice };
  }

  function fragment(location: URL | undefined): URLSearchParams {
    return new URLSearchParams(location?.hash.slice(1) ?? '');
  }

  /** The page's round trip: start without redirect_to, come back with #provider-code, exchange it with the cookie. */
  async function pageSignIn(kit: Authkit, provider: string, choice: PersonChoice, jar = new CookieJar()) {
    const back = await signInThroughProvider(`${kit.base}/auth/providers/${provider}/start`, choice, { jar });
    expect(back.status).toBe(303);
    const answer = fragment(back.location);
    if (!answer.has('provider-code')) return { error: answer.get('provider-error'), location: back.location };
    const exchange = await fetch(`${kit.base}/auth/providers/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: jar.header(new URL(`${kit.base}/auth/providers/token`), 'POST', false) },
      body: JSON.stringify({ code: answer.get('provider-code') }),
    });
    return { status: exchange.status, body: (await exchange.json()) as Record<string, unknown> };
  }

  function claims(token: unknown): { sub: string; amr: string[] } {
    return JSON.parse(Buffer.from(String(token).split('.')[1] ?? '', 'base64url').toString()) as { sub: string; amr: string[] };
  }

  const pkce = () => {
    const verifier = randomBytes(32).toString('base64url');
    return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
  };

  describe('the flows', () => {
    let kit: Authkit;
    beforeAll(async () => {
      kit = await authkit();
    });

    it('when the page asks which providers are on, then it gets each id, name and type, and nothing secret', async () => {
      const res = await request(kit.app).get('/auth/providers');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        providers: [
          { id: 'corp', name: 'Corp', type: 'oidc' },
          { id: 'github', name: 'GitHub', type: 'github' },
        ],
      });
    });

    it('when a new person signs in with OpenID Connect through the page, then an account is made with the address verified and no password, and the next sign-in finds it', async () => {
      const email = `${uniqueName('grace')}@corp.example`;
      const { choice } = person(email);
      const first = await pageSignIn(kit, 'corp', choice);
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ token_type: 'Bearer', user: { email, emailVerified: true } });
      expect(claims(first.body?.access_token).amr).toEqual(['fed']);
      const user = await backends.db.prisma.user.findUniqueOrThrow({ where: { email } });
      expect(user.hasPassword).toBe(false);
      // Its owner reads that too: the page offers no password step-up it cannot answer.
      const me = await request(kit.app)
        .get('/me')
        .set(...bearer(String(first.body?.access_token)));
      expect(me.body).toMatchObject({ email, hasPassword: false });

      const again = await pageSignIn(kit, 'corp', choice);
      expect(claims(again.body?.access_token).sub).toBe(user.id);
      const identities = await request(kit.app)
        .get('/me/identities')
        .set(...bearer(String(again.body?.access_token)));
      expect(identities.body.identities).toEqual([expect.objectContaining({ provider: 'corp', email })]);
      await builtWith(kit.app).graph.audit.settled(); // audit writes finish after the answer
      const events = await backends.db.prisma.auditEvent.findMany({ where: { targetId: user.id, type: 'session.signed_in' } });
      expect(events.map((event) => (event.details as { provider?: string }).provider)).toEqual(['corp', 'corp']);
    });

    it('when a new person signs in with the GitHub-shaped provider, then its verified primary address makes the account', async () => {
      const login = uniqueName('octo');
      const email = `${login}@users.example`;
      github.setUser({
        id: Math.floor(Math.random() * 1e9),
        login,
        name: null,
        emails: [
          { email: `old-${email}`, primary: false, verified: false, visibility: null },
          { email, primary: true, verified: true, visibility: 'private' },
        ],
      });
      const result = await pageSignIn(kit, 'github', { signInAs: login });
      expect(result.status).toBe(200);
      expect(result.body).toMatchObject({ user: { email, username: login, emailVerified: true } });
    });

    it('when an app signs in with redirect_to and PKCE, then only its code_verifier exchanges the code, once', async () => {
      const { choice } = person(`${uniqueName('app')}@corp.example`);
      const { verifier, challenge } = pkce();
      const start = `${kit.base}/auth/providers/corp/start?redirect_to=${encodeURIComponent(APP_URL)}&code_challenge=${challenge}&code_challenge_method=S256`;
      const back = await signInThroughProvider(start, choice);
      expect(back.status).toBe(303);
      expect(back.location?.href.startsWith(`${APP_URL}?code=`)).toBe(true);
      const code = back.location?.searchParams.get('code');

      const wrong = await request(kit.app).post('/auth/providers/token').send({ code, code_verifier: pkce().verifier });
      expect(wrong.status).toBe(401);
      expect(wrong.body.error.reason).toBe('provider_code_invalid');
      // The wrong verifier spent it: a code is single use whatever the outcome.
      const late = await request(kit.app).post('/auth/providers/token').send({ code, code_verifier: verifier });
      expect(late.status).toBe(401);
    });

    it('when the right verifier comes first, then the app gets tokens, and a replay of the code gets nothing', async () => {
      const { choice } = person(`${uniqueName('app')}@corp.example`);
      const { verifier, challenge } = pkce();
      const back = await signInThroughProvider(
        `${kit.base}/auth/providers/corp/start?redirect_to=${encodeURIComponent(`${APP_URL}/deeper`)}&code_challenge=${challenge}`,
        choice,
      );
      const code = back.location?.searchParams.get('code');
      const ok = await request(kit.app).post('/auth/providers/token').send({ code, code_verifier: verifier });
      expect(ok.status).toBe(200);
      expect(ok.body.access_token).toEqual(expect.any(String));
      const replay = await request(kit.app).post('/auth/providers/token').send({ code, code_verifier: verifier });
      expect(replay.status).toBe(401);
      expect(replay.body.error.reason).toBe('provider_code_invalid');
    });

    it('when a mobile app starts with its own custom-scheme address, then the start sends it to the provider', async () => {
      const res = await request(kit.app)
        .get('/auth/providers/corp/start')
        .query({ redirect_to: `${MOBILE_URL}/done`, code_challenge: pkce().challenge });
      expect(res.status).toBe(302);
      expect(new URL(String(res.headers.location)).origin).toBe(oidcPeer.issuer);
    });

    it.each([
      ['an address outside the allowlist', 'https://evil.example/callback'],
      ['a longer host that starts with an allowed one', 'https://app.example.com.evil.example/callback'],
      ['a sibling path', 'https://app.example.com/callbackevil'],
      ['credentials in the URL', 'https://user@app.example.com/callback'],
      ['plain http for an https entry', 'http://app.example.com/callback'],
      ["another app's custom scheme", 'com.evil.app:/oauth'],
      ['a custom scheme with a host', 'com.example.app://evil.example/oauth'],
    ])('when redirect_to is %s, then the start refuses it (no open redirect)', async (_case, redirectTo) => {
      const res = await request(kit.app).get('/auth/providers/corp/start').query({ redirect_to: redirectTo, code_challenge: pkce().challenge });
      expect(res.status).toBe(400);
      expect(res.body.error.reason).toBe('redirect_not_allowed');
      expect(res.headers.location).toBeUndefined();
    });

    it('when redirect_to comes without a PKCE challenge, or the start has junk, then 400 and no redirect', async () => {
      for (const query of [{ redirect_to: APP_URL }, { code_challenge_method: 'plain' }, { extra: '1' }, { code_challenge: 'short' }]) {
        const res = await request(kit.app).get('/auth/providers/corp/start').query(query);
        expect(res.status, JSON.stringify(query)).toBe(400);
        expect(res.body.error.code).toBe('validation_failed');
      }
      expect((await request(kit.app).get('/auth/providers/nope/start')).status).toBe(404);
      expect((await request(kit.app).get('/auth/providers/Not_An_Id/start')).status).toBe(400);
    });

    it('when the exchange gets a forged code, no code, or junk, then 4xx in the one shape', async () => {
      expect((await request(kit.app).post('/auth/providers/token').send({ code: 'made-up' })).body.error.reason).toBe('provider_code_invalid');
      expect((await request(kit.app).post('/auth/providers/token').send({})).status).toBe(400);
      expect((await request(kit.app).post('/auth/providers/token').send({ code: 'x', extra: 1 })).status).toBe(400);
      expect(
        (
          await request(kit.app)
            .post('/auth/providers/token')
            .send({ code: 'x'.repeat(300) })
        ).status,
      ).toBe(400);
    });
  });

  describe('the attacks', () => {
    let kit: Authkit;
    beforeAll(async () => {
      kit = await authkit();
    });
    afterAll(() => oidcPeer.reset());

    async function usersNow() {
      return backends.db.prisma.user.count();
    }

    it('when the callback comes with no state, an unknown one, or one spent already, then the page is told state_mismatch', async () => {
      const { choice } = person(`${uniqueName('st')}@corp.example`);
      const back = await signInAtProvider(`${kit.base}/auth/providers/corp/start`, choice);
      const first = await completeAtCallback(back);
      expect(fragment(first.location).has('provider-code')).toBe(true);
      const replay = await completeAtCallback(back);
      expect(fragment(replay.location).get('provider-error')).toBe('state_mismatch');
      for (const query of ['', '?state=forged&code=abc', '?code=abc']) {
        const res = await request(kit.app).get(`/auth/providers/corp/callback${query}`);
        expect(res.status).toBe(303);
        expect(fragment(new URL(String(res.headers.location), kit.base)).get('provider-error')).toBe('state_mismatch');
      }
    });

    it('when a parameter comes twice, then the callback refuses it with a redirect, not an error page', async () => {
      const res = await request(kit.app).get('/auth/providers/corp/callback?state=a&state=b&code=c');
      expect(res.status).toBe(303);
      expect(fragment(new URL(String(res.headers.location), kit.base)).get('provider-error')).toBe('state_mismatch');
    });

    it('when another browser brings the callback (login CSRF), then it is refused: the state is bound to the browser that started', async () => {
      const { choice } = person(`${uniqueName('csrf')}@corp.example`);
      const back = await signInAtProvider(`${kit.base}/auth/providers/corp/start`, choice);
      // The victim's browser gets the attacker's callback URL, without the attacker's cookie.
      const res = await fetch(back.url, { redirect: 'manual' });
      expect(fragment(new URL(res.headers.get('location') ?? '', kit.base)).get('provider-error')).toBe('state_mismatch');
    });

    it("when one provider's answer is brought to another provider's callback (mix-up), then it is refused", async () => {
      const { choice } = person(`${uniqueName('mix')}@corp.example`);
      const back = await signInAtProvider(`${kit.base}/auth/providers/corp/start`, choice);
      const mixed = new URL(back.url.href.replace('/corp/callback', '/github/callback'));
      const answer = await completeAtCallback({ ...back, url: mixed });
      expect(fragment(answer.location).get('provider-error')).toBe('state_mismatch');
    });

    it.each([
      ['a wrong audience', { tamper: (c: Record<string, unknown>) => ({ ...c, aud: 'someone-else' }) }],
      ['a wrong issuer', { tamper: (c: Record<string, unknown>) => ({ ...c, iss: 'https://evil.example' }) }],
      ['a wrong nonce', { tamper: (c: Record<string, unknown>) => ({ ...c, nonce: 'replayed-nonce' }) }],
      [
        'an expired token',
        { tamper: (c: Record<string, unknown>) => ({ ...c, exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 7200 }) },
      ],
      ['a signature by another key under the same kid', { signer: 'foreign-key-same-kid' as const }],
      ['an unknown kid', { signer: 'unknown-kid' as const }],
      ['alg none', { signer: 'none' as const }],
      ['HS256 with the client secret (an algorithm the provider does not announce)', { signer: 'client-secret-hs256' as const }],
    ])('when the ID token has %s, then no account, no token', async (_case, forgery) => {
      const email = `${uniqueName('forged')}@corp.example`;
      const { choice } = person(email);
      if ('tamper' in forgery) oidcPeer.tamperIdToken(forgery.tamper);
      if ('signer' in forgery) oidcPeer.signIdTokenWith(forgery.signer);
      try {
        const result = await pageSignIn(kit, 'corp', choice);
        expect(result.error).toBe('provider_response_invalid');
      } finally {
        oidcPeer.reset();
      }
      expect(await backends.db.prisma.user.count({ where: { email } })).toBe(0);
    });

    it('when the provider vouches for the address of an existing account, then it is not linked and no token is issued for it', async () => {
      const owner = await registerAndLogin(kit.app);
      const { choice } = person(owner.email);
      const result = await pageSignIn(kit, 'corp', choice);
      expect(result.error).toBe('link_requires_sign_in');
      expect(await backends.db.prisma.identity.count({ where: { userId: owner.id } })).toBe(0);
    });

    it('when the provider does not vouch for the address, or gives none, then no account is made', async () => {
      const email = `${uniqueName('unverified')}@corp.example`;
      expect((await pageSignIn(kit, 'corp', person(email, false).choice)).error).toBe('provider_email_unverified');
      expect((await pageSignIn(kit, 'corp', person(undefined).choice)).error).toBe('provider_email_unverified');
      expect(await backends.db.prisma.user.count({ where: { email } })).toBe(0);
    });

    it('when a provider is not trusted with addresses, then its sign-in makes no account, yet a linked identity signs in', async () => {
      const wary = await authkit();
      const providers = wary.config.providers.map((provider) => ({ ...provider, trustEmail: false }));
      const kitNoTrust = await authkit({ providers }, wary.server);
      const { choice } = person(`${uniqueName('wary')}@corp.example`);
      expect((await pageSignIn(kitNoTrust, 'corp', choice)).error).toBe('provider_email_unverified');
      const owner = await readyToEnrol(kitNoTrust.app);
      const linking = await request(kitNoTrust.app)
        .post('/me/identities')
        .set(...bearer(owner.accessToken))
        .send({ provider: 'corp' });
      const jar = new CookieJar();
      jar.store(new URL(`${kitNoTrust.base}/me/identities`), ([] as string[]).concat(linking.headers['set-cookie'] ?? []));
      await signInThroughProvider(linking.body.url as string, choice, { jar, returnTo: kitNoTrust.base });
      expect(claims((await pageSignIn(kitNoTrust, 'corp', choice)).body?.access_token).sub).toBe(owner.id);
    });

    it("when Microsoft's ID token names an address, then only its xms_edov claim vouches for it, never email_verified alone", () => {
      expect(vouchesForEmail('microsoft', { email: 'ceo@bank.example', email_verified: true })).toBe(false);
      expect(vouchesForEmail('microsoft', { email: 'ceo@bank.example', xms_edov: true })).toBe(true);
      expect(vouchesForEmail('oidc', { email_verified: true })).toBe(true);
      expect(vouchesForEmail('oidc', { email_verified: 'false' })).toBe(false);
      expect(vouchesForEmail('google', {})).toBe(false);
    });

    it('when the person declines at the provider, then the page is told provider_denied', async () => {
      expect((await pageSignIn(kit, 'corp', 'deny')).error).toBe('provider_denied');
    });

    it('when the provider is down or hangs, then 503 provider_unavailable within the timeout, and nothing is half-made', async () => {
      const down = await startOidcPeer();
      const slowKit = await authkit({
        providers: [{ id: 'down', type: 'oidc', name: 'Down', clientId: 'down', clientSecret: SECRET, issuer: down.issuer }],
      });
      down.setFault({ delayMs: Infinity, endpoints: ['discovery'] });
      const began = Date.now();
      const hung = await request(slowKit.app).get('/auth/providers/down/start');
      expect(hung.status).toBe(503);
      expect(hung.body.error.reason).toBe('provider_unavailable');
      expect(Date.now() - began).toBeLessThan(10_000);
      await down.close();
      const refused = await request(slowKit.app).get('/auth/providers/down/start');
      expect(refused.status).toBe(503);

      // The token endpoint hangs after the person signed in: the callback gives up, no account is made.
      const before = await usersNow();
      const email = `${uniqueName('slow')}@corp.example`;
      const { choice } = person(email);
      const back = await signInAtProvider(`${kit.base}/auth/providers/corp/start`, choice);
      oidcPeer.setFault({ delayMs: Infinity, endpoints: ['token'] });
      try {
        const answer = await completeAtCallback(back);
        expect(fragment(answer.location).get('provider-error')).toBe('provider_unavailable');
      } finally {
        oidcPeer.reset();
      }
      expect(await backends.db.prisma.user.count({ where: { email } })).toBe(0);
      expect(await usersNow()).toBeGreaterThanOrEqual(before);
    });
  });

  describe('linking', () => {
    let kit: Authkit;
    beforeAll(async () => {
      kit = await authkit();
    });

    async function startLink(accessToken: string, provider = 'corp') {
      const res = await request(kit.app)
        .post('/me/identities')
        .set(...bearer(accessToken))
        .send({ provider });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const jar = new CookieJar();
      jar.store(new URL(`${kit.base}/me/identities`), ([] as string[]).concat(res.headers['set-cookie'] ?? []));
      return { url: res.body.url as string, jar };
    }

    it('when a signed-in person links a provider, then it is listed, signs them in, the link is in the audit log, and the owner is told by email', async () => {
      const owner = await readyToEnrol(kit.app);
      const { choice } = person(owner.email);
      const { url, jar } = await startLink(owner.accessToken);
      const back = await signInThroughProvider(url, choice, { jar, returnTo: kit.base });
      expect(fragment(back.location).get('provider-linked')).toBe('corp');
      const result = await pageSignIn(kit, 'corp', choice);
      expect(claims(result.body?.access_token).sub).toBe(owner.id);
      await builtWith(kit.app).graph.audit.settled(); // audit writes finish after the answer
      const linked = await backends.db.prisma.auditEvent.count({ where: { targetId: owner.id, type: 'identity.linked' } });
      expect(linked).toBe(1);
      const told = async () =>
        (await readOutbox(kit.config.email.outboxDir, 200)).find((mail) => mail.to === owner.email && /linked to an account at Corp/.test(mail.text));
      await expect.poll(told).toBeDefined();
    });

    it('when the linked account has two-factor on, then the provider sign-in asks for the second factor, and the session names the provider', async () => {
      const owner = await readyToEnrol(kit.app);
      const { choice } = person(owner.email);
      const { url, jar } = await startLink(owner.accessToken);
      await signInThroughProvider(url, choice, { jar, returnTo: kit.base });
      const setup = await request(kit.app)
        .post('/mfa/totp/setup')
        .set(...bearer(owner.accessToken));
      const enabled = await request(kit.app)
        .post('/mfa/totp/enable')
        .set(...bearer(owner.accessToken))
        .send({ code: codeAt(setup.body.secret as string, kit.deps.clock.now()) });
      expect(enabled.status, JSON.stringify(enabled.body)).toBe(200);

      const first = await pageSignIn(kit, 'corp', choice);
      expect(first.body).toMatchObject({ mfa_required: true });
      const done = await request(kit.app)
        .post('/login/mfa')
        .send({ mfa_token: first.body?.mfa_token, code: (enabled.body.recoveryCodes as string[])[0] });
      expect(done.status).toBe(200);
      expect(claims(done.body.access_token).amr).toEqual(expect.arrayContaining(['fed', 'otp', 'mfa']));
      await builtWith(kit.app).graph.audit.settled(); // audit writes finish after the answer
      const signedIn = await backends.db.prisma.auditEvent.findMany({
        where: { targetId: owner.id, type: 'session.signed_in' },
        orderBy: { createdAt: 'desc' },
        take: 1,
      });
      expect((signedIn[0]?.details as { provider?: string }).provider).toBe('corp');
    });

    it('when the address is not proven yet, then linking is refused: whoever registered it first must not keep a way in', async () => {
      const squatter = await registerAndLogin(kit.app);
      const res = await request(kit.app)
        .post('/me/identities')
        .set(...bearer(squatter.accessToken))
        .send({ provider: 'corp' });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('email_not_verified');
    });

    it('when the session that started a link is signed out before the provider answers, then nothing is linked', async () => {
      const owner = await readyToEnrol(kit.app);
      const { choice } = person(`${uniqueName('stolen')}@corp.example`);
      const { url, jar } = await startLink(owner.accessToken);
      expect(
        (
          await request(kit.app)
            .post('/logout')
            .set(...bearer(owner.accessToken))
        ).status,
      ).toBe(204);
      const back = await signInThroughProvider(url, choice, { jar, returnTo: kit.base });
      expect(fragment(back.location).get('provider-error')).toBe('session_revoked');
      expect(await backends.db.prisma.identity.count({ where: { userId: owner.id } })).toBe(0);
    });

    it('when the identity is unlinked between the callback and the exchange, then the code signs nobody in', async () => {
      const { choice } = person(`${uniqueName('late')}@corp.example`);
      const jar = new CookieJar();
      const back = await signInThroughProvider(`${kit.base}/auth/providers/corp/start`, choice, { jar });
      const code = fragment(back.location).get('provider-code');
      await backends.db.prisma.identity.deleteMany({ where: { subject: (choice as { signInAs: string }).signInAs } });
      const res = await fetch(`${kit.base}/auth/providers/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: jar.header(new URL(`${kit.base}/auth/providers/token`), 'POST', false) },
        body: JSON.stringify({ code }),
      });
      expect(res.status).toBe(401);
    });

    it('when the identity is linked to another account already, then linking it again is refused', async () => {
      const first = await readyToEnrol(kit.app);
      const second = await readyToEnrol(kit.app);
      const { choice } = person(`${uniqueName('shared')}@corp.example`);
      const one = await startLink(first.accessToken);
      await signInThroughProvider(one.url, choice, { jar: one.jar, returnTo: kit.base });
      const two = await startLink(second.accessToken);
      const back = await signInThroughProvider(two.url, choice, { jar: two.jar, returnTo: kit.base });
      expect(fragment(back.location).get('provider-error')).toBe('identity_already_linked');
      expect(await backends.db.prisma.identity.count({ where: { userId: second.id } })).toBe(0);
    });

    it('when linking, then a sign-in older than REAUTH_MAX_AGE_S is not enough, and a token alone cannot link for someone else', async () => {
      const stale = await authkit({ reauthMaxAgeS: 0 });
      const owner = await registerAndLogin(stale.app);
      const res = await request(stale.app)
        .post('/me/identities')
        .set(...bearer(owner.accessToken))
        .send({ provider: 'corp' });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('reauthentication_required');
      expect((await request(kit.app).post('/me/identities').send({ provider: 'corp' })).status).toBe(401);
    });

    it('when the last way in is unlinked, then it is refused; with a password set through a reset, it is allowed', async () => {
      const email = `${uniqueName('last')}@corp.example`;
      const { choice } = person(email);
      const signedIn = await pageSignIn(kit, 'corp', choice);
      const token = String(signedIn.body?.access_token);
      const [identity] = (
        await request(kit.app)
          .get('/me/identities')
          .set(...bearer(token))
      ).body.identities as Array<{ id: string }>;
      const refused = await request(kit.app)
        .delete(`/me/identities/${identity?.id}`)
        .set(...bearer(token));
      expect(refused.status).toBe(409);
      expect(refused.body.error.reason).toBe('last_sign_in_method');

      await backends.db.prisma.user.update({ where: { email }, data: { hasPassword: true } });
      const other = await registerAndLogin(kit.app);
      const notTheirs = await request(kit.app)
        .delete(`/me/identities/${identity?.id}`)
        .set(...bearer(other.accessToken));
      expect(notTheirs.status).toBe(404);
      const unlinked = await request(kit.app)
        .delete(`/me/identities/${identity?.id}`)
        .set(...bearer(token));
      expect(unlinked.status).toBe(204);
      await builtWith(kit.app).graph.audit.settled(); // audit writes finish after the answer
      expect(
        await backends.db.prisma.auditEvent.count({ where: { type: 'identity.unlinked', details: { path: ['provider'], equals: 'corp' } } }),
      ).toBeGreaterThan(0);
    });
  });

  describe('two instances and the administrators', () => {
    it('when the sign-in starts on one instance and comes back to another, then it completes', async () => {
      const first = await authkit();
      // A second instance behind the same address (as behind a load balancer): same store, same database.
      const second = await authkit({}, first.server);
      const { choice } = person(`${uniqueName('two')}@corp.example`);
      const back = await signInAtProvider(`${first.base}/auth/providers/corp/start`, choice);
      expect(second.app).not.toBe(first.app);
      const answer = await completeAtCallback(back);
      expect(fragment(answer.location).has('provider-code')).toBe(true);
    });

    it('when an administrator adds, disables and removes a provider, then the page sees it, its secret is sealed, and environment providers are read-only', async () => {
      const kit = await authkit();
      const username = uniqueName('boss');
      await createAdmin(kit.deps, { username, email: `${username}@example.com`, password: 'admin password 123' });
      const admin = await login(kit.app, { username, password: 'admin password 123' });
      const id = `extra-${randomBytes(3).toString('hex')}`;
      oidcPeer.addClient({
        clientId: id,
        clientSecret: SECRET,
        redirectUris: [`${kit.base}/auth/providers/${id}/callback`],
        tokenEndpointAuthMethod: 'client_secret_post',
      });
      const added = await request(kit.app)
        .post('/admin/identity-providers')
        .set(...bearer(admin.accessToken))
        .send({ id, type: 'oidc', name: 'Extra', clientId: id, clientSecret: SECRET, issuer: oidcPeer.issuer });
      expect(added.status, JSON.stringify(added.body)).toBe(201);
      expect(added.body).toMatchObject({ id, source: 'api', hasSecret: true });
      expect(JSON.stringify(added.body)).not.toContain(SECRET);
      const row = await backends.db.prisma.identityProvider.findUniqueOrThrow({ where: { id } });
      expect(row.secretSealed).not.toContain(SECRET);

      expect((await request(kit.app).get('/auth/providers')).body.providers).toContainEqual({ id, name: 'Extra', type: 'oidc' });
      const original = person(`${uniqueName('extra')}@corp.example`);
      const result = await pageSignIn(kit, id, original.choice);
      expect(result.status).toBe(200);

      // The provider id pointed at another issuer, where someone holds the same subject: not the first one's account.
      const other = await startOidcPeer();
      try {
        other.addClient({
          clientId: id,
          clientSecret: SECRET,
          redirectUris: [`${kit.base}/auth/providers/${id}/callback`],
          tokenEndpointAuthMethod: 'client_secret_post',
        });
        other.setUser({ sub: original.sub, email: `${uniqueName('namesake')}@elsewhere.example`, email_verified: true });
        const moved = await request(kit.app)
          .patch(`/admin/identity-providers/${id}`)
          .set(...bearer(admin.accessToken))
          .send({ issuer: other.issuer });
        expect(moved.status).toBe(200);
        const namesake = await pageSignIn(kit, id, { signInAs: original.sub });
        expect(namesake.status).toBe(200);
        expect(claims(namesake.body?.access_token).sub).not.toBe(claims(result.body?.access_token).sub);
      } finally {
        await other.close();
      }

      const disabled = await request(kit.app)
        .patch(`/admin/identity-providers/${id}`)
        .set(...bearer(admin.accessToken))
        .send({ enabled: false });
      expect(disabled.body.enabled).toBe(false);
      expect((await request(kit.app).get(`/auth/providers/${id}/start`)).status).toBe(404);
      const envProvider = await request(kit.app)
        .patch('/admin/identity-providers/corp')
        .set(...bearer(admin.accessToken))
        .send({ enabled: false });
      expect(envProvider.status).toBe(409);
      expect(envProvider.body.error.reason).toBe('provider_configured_in_environment');
      const taken = await request(kit.app)
        .post('/admin/identity-providers')
        .set(...bearer(admin.accessToken))
        .send({ id: 'corp', type: 'google', clientId: 'x', clientSecret: 'y' });
      expect(taken.body.error.reason).toBe('provider_id_taken');
      expect(
        (
          await request(kit.app)
            .delete(`/admin/identity-providers/${id}`)
            .set(...bearer(admin.accessToken))
        ).status,
      ).toBe(204);

      const someone = await registerAndLogin(kit.app);
      expect(
        (
          await request(kit.app)
            .get('/admin/identity-providers')
            .set(...bearer(someone.accessToken))
        ).status,
      ).toBe(403);
    });
  });
});
