// authkit as an OpenID provider, with openid-client as the relying party: the code flow with PKCE through the page's
// hand-over, refresh, client credentials, introspection, revocation, logout, DPoP, and the attacks on each.
import { generateKeyPairSync, type JsonWebKey, randomUUID } from 'node:crypto';
import type { Express } from 'express';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManualClock } from '../src/core/clock.js';
import { bearer, createAdmin, login, registerAndLogin } from './support/accounts.js';
import { listenFirst, OAuthBrowser, recordingEndpoint } from './support/oauth-browser.js';
import type { SigningKey, SigningKeys } from '../src/kernel/keys/key-ring.js';
import { buildApp, freshStore, testConfig, usingRedis, useBackends } from './support/test-app.js';

/** A key set whose signing key a test switches, as the key ring does at an activation. */
class SwitchableKeys implements SigningKeys {
  readonly algorithm = 'ES256';
  private readonly pairs = ['kid-a', 'kid-b'].map((kid) => ({ kid, ...generateKeyPairSync('ec', { namedCurve: 'P-256' }) }));
  current = 0;

  signing(): SigningKey {
    const pair = this.pairs[this.current]!;
    return { kid: pair.kid, alg: 'ES256', key: pair.privateKey };
  }

  verifying(kid: string): SigningKey | undefined {
    const pair = this.pairs.find((each) => each.kid === kid);
    return pair && { kid, alg: 'ES256', key: pair.publicKey };
  }

  publicJwks(): JsonWebKey[] {
    return this.pairs.map((pair) => ({ ...pair.publicKey.export({ format: 'jwk' }), kid: pair.kid, alg: 'ES256', use: 'sig' }));
  }
}

const APP = 'http://127.0.0.1:9';
const CALLBACK = `${APP}/callback`;
const API = 'https://api.example.test';

/** The OAuth error code of a refusal, whether openid-client reports it from the body or from WWW-Authenticate. */
async function refusal(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    const error = err as { error?: string; cause?: { parameters?: { error?: string } }[] };
    return error.error ?? error.cause?.[0]?.parameters?.error ?? String(err);
  }
}

describe('the OpenID provider', () => {
  const backends = useBackends();
  let server: Awaited<ReturnType<typeof listenFirst>>;
  let backchannel: Awaited<ReturnType<typeof recordingEndpoint>>;
  let app: Express;
  let clock: ManualClock;
  let issuer: string;
  let adminToken: string;

  beforeAll(async () => {
    server = await listenFirst();
    backchannel = await recordingEndpoint();
    issuer = server.url;
    const config = testConfig({
      publicUrl: issuer,
      email: { ...testConfig().email, baseUrl: issuer },
      oauthResources: [{ resource: API, scopes: ['orders:read', 'orders:write'] }],
    });
    const built = buildApp(backends, { config });
    app = built.app;
    clock = built.deps.clock as ManualClock;
    server.serve(app);
    const admin = { email: `admin-${randomUUID()}@example.com`, password: 'correct horse battery staple', username: `admin_${randomUUID().slice(0, 8)}` };
    await createAdmin(built.deps, admin);
    adminToken = (await login(app, { username: admin.username, password: admin.password })).accessToken;
  });
  afterAll(async () => {
    await server.close();
    await backchannel.close();
  });

  async function registerClient(body: Record<string, unknown> = {}) {
    const res = await request(app)
      .post('/admin/oauth-clients')
      .set(...bearer(adminToken))
      .send({
        name: 'Dashboard',
        redirectUris: [CALLBACK],
        scopes: ['openid', 'profile', 'email', 'offline_access', 'orders:read'],
        resources: [API],
        ...body,
      });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { clientId: string; clientSecret?: string };
  }

  async function relyingParty(client: { clientId: string; clientSecret?: string }, auth?: oidc.ClientAuth) {
    return oidc.discovery(
      new URL(issuer),
      client.clientId,
      undefined,
      auth ?? (client.clientSecret ? oidc.ClientSecretBasic(client.clientSecret) : oidc.None()),
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
  }

  async function authorization(config: oidc.Configuration, extra: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const checks = { pkceCodeVerifier: verifier, expectedState: oidc.randomState(), expectedNonce: oidc.randomNonce(), idTokenExpected: true };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: CALLBACK,
      scope: 'openid profile email offline_access',
      // OpenID Connect Core §11: offline_access (a refresh token) is granted only with prompt=consent.
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: checks.expectedState,
      nonce: checks.expectedNonce,
      ...extra,
    });
    return { url, checks };
  }

  /** A person signed in here, then to the app through the code flow; returns the app's tokens and who it was. */
  async function signedInToApp(
    client: { clientId: string; clientSecret?: string },
    extra: Record<string, string> = {},
    options: { DPoP?: oidc.DPoPHandle } = {},
  ) {
    const person = await registerAndLogin(app);
    const config = await relyingParty(client);
    const browser = new OAuthBrowser(APP);
    const { url, checks } = await authorization(config, extra);
    const back = await browser.signInToApp(issuer, url, person.accessToken);
    const tokens = await oidc.authorizationCodeGrant(config, back, checks, undefined, options);
    return { person, config, browser, tokens, back, checks };
  }

  it('when an app reads the discovery document, then it names this issuer and every endpoint it lists answers', async () => {
    const res = await request(app).get('/.well-known/openid-configuration').set('host', 'evil.example.test').set('x-forwarded-host', 'evil.example.test');

    expect(res.status).toBe(200);
    expect(res.body.issuer).toBe(issuer);
    expect(res.body.code_challenge_methods_supported).toEqual(['S256']);
    expect(res.body.response_types_supported).toEqual(['code']);
    expect(res.body.id_token_signing_alg_values_supported).toEqual(['ES256']);
    expect(res.body.dpop_signing_alg_values_supported).toContain('ES256');
    for (const name of [
      'authorization_endpoint',
      'token_endpoint',
      'userinfo_endpoint',
      'introspection_endpoint',
      'revocation_endpoint',
      'end_session_endpoint',
      'jwks_uri',
    ]) {
      const endpoint = new URL(res.body[name] as string);
      expect(endpoint.origin, name).toBe(issuer);
      const post = ['token_endpoint', 'introspection_endpoint', 'revocation_endpoint'].includes(name);
      const answer = post ? await request(app).post(endpoint.pathname).type('form').send('') : await request(app).get(endpoint.pathname);
      expect(answer.status, `${name} ${endpoint.pathname}`).not.toBe(404);
      expect(answer.status, `${name} ${endpoint.pathname}`).toBeLessThan(500);
    }
  });

  it('when a person signs in to an app with the code flow, then it gets an ID token, UserInfo and a rotating refresh token', async () => {
    const client = await registerClient();
    const { person, config, tokens } = await signedInToApp(client);

    const claims = tokens.claims()!;
    expect(claims.sub).toBe(person.id);
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.acr).toBe('aal1');
    expect(typeof claims.auth_time).toBe('number');
    const info = await oidc.fetchUserInfo(config, tokens.access_token, person.id);
    expect(info.preferred_username).toBe(person.username);
    expect(info.email).toBe(person.email);
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect((await oidc.fetchUserInfo(config, refreshed.access_token, person.id)).sub).toBe(person.id);
  });

  it("when the app asks for the organization scope, then the ID token carries the session's organization and the member's role; without it, nothing", async () => {
    const client = await registerClient({ scopes: ['openid', 'profile', 'offline_access', 'organization'] });
    const person = await registerAndLogin(app);
    const org = await request(app)
      .post('/orgs')
      .set(...bearer(person.accessToken))
      .send({ name: 'Team', slug: `team-${randomUUID().slice(0, 8)}` });
    const switched = await request(app)
      .post(`/orgs/${org.body.id}/switch`)
      .set(...bearer(person.accessToken));
    const signIn = async (scope: string) => {
      const config = await relyingParty(client);
      const { url, checks } = await authorization(config, { scope });
      const back = await new OAuthBrowser(APP).signInToApp(issuer, url, switched.body.access_token as string);
      return { config, tokens: await oidc.authorizationCodeGrant(config, back, checks) };
    };

    const withScope = await signIn('openid organization offline_access');
    const withoutScope = await signIn('openid profile');
    const info = await oidc.fetchUserInfo(withScope.config, withScope.tokens.access_token, person.id);

    expect(withScope.tokens.claims()).toMatchObject({ org_id: org.body.id, org_role: 'owner', org_permissions: expect.arrayContaining(['org:delete']) });
    expect(info).toMatchObject({ org_id: org.body.id, org_role: 'owner' });
    expect(withoutScope.tokens.claims()?.org_id).toBeUndefined();
  });

  it('when a third-party app asks, then the page is told consent is needed; a first-party app is not', async () => {
    const third = await registerClient();
    const first = await registerClient({ firstParty: true });
    const person = await registerAndLogin(app);
    for (const [client, expected] of [
      [third, true],
      [first, false],
    ] as const) {
      const browser = new OAuthBrowser(APP);
      const landing = await browser.walk((await authorization(await relyingParty(client))).url);
      expect(landing.kind).toBe('interaction');
      const details = await browser.details(issuer, (landing as { uid: string }).uid);
      expect(details.status).toBe(200);
      expect(((await details.json()) as { consentRequired: boolean }).consentRequired).toBe(expected);
    }
    expect(person.id).toBeTruthy();
  });

  it('when the person declines, then the app gets access_denied', async () => {
    const client = await registerClient();
    const person = await registerAndLogin(app);
    const browser = new OAuthBrowser(APP);
    const { url } = await authorization(await relyingParty(client));

    const back = await browser.signInToApp(issuer, url, person.accessToken, 'deny');

    expect(back.searchParams.get('error')).toBe('access_denied');
  });

  it('when the browser already signed in to a web app, then a second request needs no interaction; prompt=none works', async () => {
    // A web app: oidc-provider never answers prompt=none for a native (loopback) one, whose identity it cannot check.
    const web = 'https://app.example.test';
    const client = await registerClient({ redirectUris: [`${web}/callback`] });
    const person = await registerAndLogin(app);
    const config = await relyingParty(client);
    const browser = new OAuthBrowser(web);
    await browser.signInToApp(issuer, (await authorization(config, { redirect_uri: `${web}/callback` })).url, person.accessToken);

    const { url } = await authorization(config, { prompt: 'none', redirect_uri: `${web}/callback` });
    const landing = await browser.walk(url);

    expect(landing.kind).toBe('app');
    expect((landing as { url: URL }).url.searchParams.get('code'), JSON.stringify(landing)).toBeTruthy();
  });

  it('when prompt=none arrives without a session, then the app gets login_required', async () => {
    const client = await registerClient();
    const browser = new OAuthBrowser(APP);

    const landing = await browser.walk((await authorization(await relyingParty(client), { prompt: 'none' })).url);

    expect(landing.kind).toBe('app');
    expect((landing as { url: URL }).url.searchParams.get('error')).toBe('login_required');
  });

  it('when the redirect URI is not registered, then an error page answers and nobody is redirected', async () => {
    const client = await registerClient();
    const { url } = await authorization(await relyingParty(client), { redirect_uri: 'https://evil.example.test/steal' });

    const landing = await new OAuthBrowser(APP).walk(url);

    expect(landing.kind).toBe('page');
    const page = landing as { status: number; body: string; headers: Headers };
    expect(page.status).toBe(400);
    expect(page.headers.get('location')).toBeNull();
    expect(page.body).toContain('redirect_uri');
    expect(page.body).toContain('/styles.css');
  });

  it('when PKCE is missing or plain, then the request is refused; a wrong verifier gets no tokens', async () => {
    const client = await registerClient();
    const config = await relyingParty(client);
    const browser = new OAuthBrowser(APP);
    const bare = new URL((await authorization(config)).url);
    bare.searchParams.delete('code_challenge');
    bare.searchParams.delete('code_challenge_method');
    const plain = new URL((await authorization(config)).url);
    plain.searchParams.set('code_challenge_method', 'plain');

    for (const url of [bare, plain]) {
      const landing = await browser.walk(url);
      expect(landing.kind).toBe('app');
      expect((landing as { url: URL }).url.searchParams.get('error')).toBe('invalid_request');
    }

    const person = await registerAndLogin(app);
    const { url, checks } = await authorization(config);
    const back = await browser.signInToApp(issuer, url, person.accessToken);
    await expect(oidc.authorizationCodeGrant(config, back, { ...checks, pkceCodeVerifier: oidc.randomPKCECodeVerifier() })).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  it('when a code is used twice, then the second use fails and the tokens the first gave stop working', async () => {
    const client = await registerClient();
    const { config, tokens, back, checks, person } = await signedInToApp(client);

    await expect(oidc.authorizationCodeGrant(config, back, checks)).rejects.toMatchObject({ error: 'invalid_grant' });

    await expect(oidc.fetchUserInfo(config, tokens.access_token, person.id)).rejects.toBeDefined();
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('when two requests race with one code, then exactly one gets tokens', async () => {
    const client = await registerClient();
    const person = await registerAndLogin(app);
    const config = await relyingParty(client);
    const { url, checks } = await authorization(config);
    const back = await new OAuthBrowser(APP).signInToApp(issuer, url, person.accessToken);

    const results = await Promise.allSettled(Array.from({ length: 4 }, () => oidc.authorizationCodeGrant(config, back, checks)));

    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
  });

  it('when another client presents the code, or the secret is wrong, then no tokens are issued', async () => {
    const client = await registerClient();
    const other = await registerClient();
    const person = await registerAndLogin(app);
    const config = await relyingParty(client);
    const { url, checks } = await authorization(config);
    const back = await new OAuthBrowser(APP).signInToApp(issuer, url, person.accessToken);

    await expect(oidc.authorizationCodeGrant(await relyingParty(other), back, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await refusal(oidc.authorizationCodeGrant(await relyingParty({ clientId: client.clientId }, oidc.ClientSecretBasic('wrong')), back, checks))).toBe(
      'invalid_client',
    );
  });

  it('when a code has expired, then it is refused', async () => {
    const client = await registerClient();
    const person = await registerAndLogin(app);
    const config = await relyingParty(client);
    const { url, checks } = await authorization(config);
    const back = await new OAuthBrowser(APP).signInToApp(issuer, url, person.accessToken);

    clock.advance(61_000);

    await expect(oidc.authorizationCodeGrant(config, back, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('when an app asks for a scope or an audience it was not given, then it is refused', async () => {
    const client = await registerClient({ scopes: ['openid', 'email'], resources: [] });
    const config = await relyingParty(client);
    const browser = new OAuthBrowser(APP);

    const scoped = await browser.walk((await authorization(config, { scope: 'openid email orders:write' })).url);
    const audience = await browser.walk((await authorization(config, { scope: 'openid', resource: API })).url);

    expect((scoped as { url: URL }).url.searchParams.get('error')).toBe('invalid_scope');
    expect((audience as { url: URL }).url.searchParams.get('error')).toBe('invalid_target');
  });

  it('when a service uses client credentials for an API, then it gets a JWT for that audience signed by the JWKS', async () => {
    const client = await registerClient({ grantTypes: ['client_credentials'], redirectUris: [], scopes: ['orders:read'] });
    const config = await relyingParty(client);

    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'orders:read', resource: API });

    const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
    const { payload } = await jose.jwtVerify(tokens.access_token, jwks, { issuer, audience: API, algorithms: ['ES256'] });
    expect(payload.client_id).toBe(client.clientId);
    expect(payload.scope).toBe('orders:read');
    await expect(oidc.clientCredentialsGrant(config, { scope: 'orders:write', resource: API })).rejects.toMatchObject({ error: 'invalid_scope' });
  });

  it('when a client may introspect, then it learns whether a token is active; another client learns nothing', async () => {
    const client = await registerClient();
    const introspector = await registerClient({ introspection: true, grantTypes: ['client_credentials'], redirectUris: [], scopes: ['orders:read'] });
    const bystander = await registerClient({ grantTypes: ['client_credentials'], redirectUris: [], scopes: ['orders:read'] });
    const { tokens } = await signedInToApp(client);

    const allowed = await oidc.tokenIntrospection(await relyingParty(introspector), tokens.access_token);
    const refused = await oidc.tokenIntrospection(await relyingParty(bystander), tokens.access_token);

    expect(allowed.active).toBe(true);
    expect(allowed.client_id).toBe(client.clientId);
    expect(refused.active).toBe(false);
  });

  it('when an app revokes its refresh token, then it stops working; another client cannot revoke it', async () => {
    const client = await registerClient();
    const other = await registerClient();
    const { config, tokens } = await signedInToApp(client);

    await oidc.tokenRevocation(await relyingParty(other), tokens.refresh_token!);
    const still = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    await oidc.tokenRevocation(config, still.refresh_token!);

    await expect(oidc.refreshTokenGrant(config, still.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('when a rotated refresh token comes back, then within the grace interval it is refused alone, after it the whole grant ends', async () => {
    const client = await registerClient();
    const { config, tokens } = await signedInToApp(client);
    const next = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    // A racing tab: refused, and no second chain is minted; the successor still works.
    expect(await refusal(oidc.refreshTokenGrant(config, tokens.refresh_token!))).toBe('invalid_grant');
    const later = await oidc.refreshTokenGrant(config, next.refresh_token!);
    expect(later.refresh_token).toBeTruthy();

    clock.advance(11_000);

    expect(await refusal(oidc.refreshTokenGrant(config, tokens.refresh_token!))).toBe('invalid_grant');
    expect(await refusal(oidc.refreshTokenGrant(config, later.refresh_token!))).toBe('invalid_grant');
  });

  it('when the person logs out here, then the app is told over the back channel, its refresh token dies and prompt=none needs a sign-in', async () => {
    const client = await registerClient({ backchannelLogoutUri: backchannel.url });
    const { person, config, tokens, browser } = await signedInToApp(client);
    const before = backchannel.received.length;

    const out = await request(app)
      .post('/logout')
      .set(...bearer(person.accessToken));
    expect(out.status).toBe(204);

    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const landing = await browser.walk((await authorization(config, { prompt: 'none' })).url);
    expect((landing as { url: URL }).url.searchParams.get('error')).toBe('login_required');
    await expect.poll(() => backchannel.received.length, { timeout: 5_000 }).toBeGreaterThan(before);
    const logoutToken = backchannel.received.at(-1)!.get('logout_token')!;
    const { payload } = await jose.jwtVerify(logoutToken, jose.createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`)), {
      issuer,
      audience: client.clientId,
    });
    expect(payload.sub).toBe(person.id);
    expect(payload.events).toHaveProperty(['http://schemas.openid.net/event/backchannel-logout']);
  });

  it('when an administrator disables the person, then the app can no longer refresh', async () => {
    const client = await registerClient();
    const { person, config, tokens } = await signedInToApp(client);

    const res = await request(app)
      .post(`/admin/users/${person.id}/disable`)
      .set(...bearer(adminToken));
    expect(res.status).toBe(200);

    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('when the app logs the person out (RP-initiated), then our session ends too', async () => {
    const client = await registerClient({ postLogoutRedirectUris: [`${APP}/bye`] });
    const { person, config, tokens, browser } = await signedInToApp(client);
    const end = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${APP}/bye` });

    const question = await browser.walk(end);
    expect(question.kind).toBe('page');
    const body = (question as { body: string }).body;
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(body)?.[1];
    const action = /<form[^>]*action="([^"]+)"/.exec(body)?.[1];
    expect(xsrf && action).toBeTruthy();
    const confirm = await browser.request(new URL(action!, issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf: xsrf!, logout: 'yes' }).toString(),
    });
    expect(new URL(confirm.headers.get('location')!).href).toContain(`${APP}/bye`);

    const refresh = await request(app).post('/refresh').send({ refresh_token: person.refreshToken });
    expect(refresh.status).toBe(401);
  });

  describe('DPoP', () => {
    it('when an app presents a DPoP proof, then its tokens are bound to its key and refused without a matching proof', async () => {
      // A public client's refresh token is bound too (RFC 9449 §5; a confidential client's is bound by its own credentials).
      const client = await registerClient({ public: true });
      const key = await oidc.randomDPoPKeyPair('ES256');
      const { config, tokens, person } = await signedInToApp(client, {}, { DPoP: oidc.getDPoPHandle(await relyingParty(client), key) });

      expect(tokens.token_type.toLowerCase()).toBe('dpop');
      const bound = await fetch(`${issuer}/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(bound.status).toBe(401);
      const info = await oidc.fetchUserInfo(config, tokens.access_token, person.id, { DPoP: oidc.getDPoPHandle(config, key) });
      expect(info.sub).toBe(person.id);
      const otherKey = await oidc.randomDPoPKeyPair('ES256');
      await expect(oidc.fetchUserInfo(config, tokens.access_token, person.id, { DPoP: oidc.getDPoPHandle(config, otherKey) })).rejects.toBeDefined();
      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: oidc.getDPoPHandle(config, otherKey) })).rejects.toMatchObject({
        error: 'invalid_grant',
      });
    });

    it('when a client must use DPoP, then a code exchange without a proof gets nothing, and one with a proof gets bound tokens', async () => {
      const client = await registerClient({ public: true, requireDpop: true });
      const person = await registerAndLogin(app);
      const config = await relyingParty(client);
      const browser = new OAuthBrowser(APP);

      const first = await authorization(config);
      const bare = await browser.signInToApp(issuer, first.url, person.accessToken);
      expect(await refusal(oidc.authorizationCodeGrant(config, bare, first.checks))).toBe('invalid_grant');

      const second = await authorization(config);
      const back = await browser.signInToApp(issuer, second.url, person.accessToken);
      const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
      const tokens = await oidc.authorizationCodeGrant(config, back, second.checks, undefined, { DPoP });
      expect(tokens.token_type.toLowerCase()).toBe('dpop');
      const read = await request(app)
        .get(`/admin/oauth-clients/${client.clientId}`)
        .set(...bearer(adminToken));
      expect(read.body.requireDpop).toBe(true);
    });

    it('when a DPoP proof is replayed, made for another URL or method, then it is refused', async () => {
      const client = await registerClient({ grantTypes: ['client_credentials'], redirectUris: [], scopes: ['orders:read'] });
      const { privateKey, publicKey } = await jose.generateKeyPair('ES256');
      const jwk = await jose.exportJWK(publicKey);
      const proof = (htm: string, htu: string) =>
        new jose.SignJWT({ htm, htu, jti: randomUUID(), iat: Math.floor(Date.now() / 1000) })
          .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
          .sign(privateKey);
      const token = (dpop: string) =>
        fetch(`${issuer}/oauth2/token`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
            dpop,
          },
          body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'orders:read', resource: API }).toString(),
        });

      const good = await proof('POST', `${issuer}/oauth2/token`);
      expect((await token(good)).status).toBe(200);
      expect((await token(good)).status).toBe(400);
      expect((await token(await proof('POST', `${issuer}/oauth2/userinfo`))).status).toBe(400);
      expect((await token(await proof('GET', `${issuer}/oauth2/token`))).status).toBe(400);
    });
  });

  describe('consent remembered, and taken back', () => {
    it('when a person allowed an app, then a new browser goes straight on, unless the app asks for more or for consent', async () => {
      const client = await registerClient();
      const { person, config } = await signedInToApp(client);
      const fresh = new OAuthBrowser(APP);
      const continueFrom = async (extra: Record<string, string>) => {
        const landing = await fresh.walk((await authorization(config, extra)).url);
        expect(landing.kind).toBe('interaction');
        return fresh.decide(issuer, (landing as { uid: string }).uid, person.accessToken, 'continue');
      };

      const known = await continueFrom({ scope: 'openid email', prompt: 'login' });
      const more = await continueFrom({ scope: 'openid email orders:read', resource: API });
      const forced = await continueFrom({ scope: 'openid', prompt: 'consent' });

      expect(known.status).toBe(200);
      expect(more.status).toBe(409);
      expect(((await more.json()) as { error: { reason: string } }).error.reason).toBe('oauth_consent_required');
      expect(forced.status).toBe(409);
    });

    it('when a person takes back what an app was allowed, then its refresh token dies and it must ask again; nobody else can', async () => {
      const client = await registerClient();
      const { person, config, tokens } = await signedInToApp(client);
      const stranger = await registerAndLogin(app);

      const listed = await request(app)
        .get('/me/apps')
        .set(...bearer(person.accessToken));
      expect(listed.status).toBe(200);
      expect(listed.body.apps).toEqual([expect.objectContaining({ clientId: client.clientId, name: 'Dashboard', scopes: expect.arrayContaining(['openid']) })]);
      expect(
        (
          await request(app)
            .delete(`/me/apps/${client.clientId}`)
            .set(...bearer(stranger.accessToken))
        ).status,
      ).toBe(404);
      expect(await refusal(oidc.refreshTokenGrant(config, tokens.refresh_token!))).toBeUndefined();

      const taken = await request(app)
        .delete(`/me/apps/${client.clientId}`)
        .set(...bearer(person.accessToken));
      expect(taken.status).toBe(204);

      expect(
        (
          await request(app)
            .get('/me/apps')
            .set(...bearer(person.accessToken))
        ).body.apps,
      ).toEqual([]);
      const rotated = await oidc.refreshTokenGrant(config, tokens.refresh_token!).catch(() => undefined);
      expect(rotated).toBeUndefined();
      const fresh = new OAuthBrowser(APP);
      const landing = await fresh.walk((await authorization(config, { scope: 'openid', prompt: 'login' })).url);
      const again = await fresh.decide(issuer, (landing as { uid: string }).uid, person.accessToken, 'continue');
      expect(again.status).toBe(409);
      expect(
        (
          await request(app)
            .delete(`/me/apps/${client.clientId}`)
            .set(...bearer(person.accessToken))
        ).status,
      ).toBe(404);
    });
  });

  describe('what an attack review found', () => {
    it("when an interaction cookie is planted in another person's browser, then their answer cannot be resumed in the planter's", async () => {
      const client = await registerClient({ firstParty: true });
      const victim = await registerAndLogin(app);
      const mallory = new OAuthBrowser(APP);
      const { url } = await authorization(await relyingParty(client));
      const landing = await mallory.walk(url);
      const uid = (landing as { uid: string }).uid;
      const interactionPath = `/oauth2/interaction/${uid}`;
      // The victim's browser gets Mallory's interaction cookie (from a sibling subdomain, say) and its page answers.
      const answer = await fetch(`${issuer}${interactionPath}`, {
        method: 'POST',
        headers: {
          cookie: mallory.jar.header(new URL(interactionPath, issuer), 'POST', false),
          authorization: `Bearer ${victim.accessToken}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ decision: 'continue' }),
      });
      expect(answer.status).toBe(200);
      const resume = new URL(((await answer.json()) as { redirectTo: string }).redirectTo);

      const stolen = await mallory.walk(resume);

      expect(stolen.kind).toBe('page');
      expect((stolen as { status: number }).status).toBe(400);
    });

    it('when a logout confirmation carries a forged xsrf value, then nobody is signed out', async () => {
      const client = await registerClient();
      const { person, browser } = await signedInToApp(client);
      const confirm = await browser.request(new URL('/oauth2/logout/confirm', issuer), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'xsrf=forged&logout=yes',
      });

      expect(confirm.status).toBe(400);
      expect((await request(app).post('/refresh').send({ refresh_token: person.refreshToken })).status).toBe(200);
    });

    it('when a public client is changed to use client credentials or to introspect, then the change is refused', async () => {
      const spa = await registerClient({ public: true });
      for (const change of [{ grantTypes: ['authorization_code', 'client_credentials'] }, { introspection: true }, { scopes: [] }]) {
        const res = await request(app)
          .patch(`/admin/oauth-clients/${spa.clientId}`)
          .set(...bearer(adminToken))
          .send(change);
        expect(res.status, JSON.stringify(change)).toBe(400);
      }
      const anonymous = await fetch(`${issuer}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: spa.clientId, resource: API }).toString(),
      });
      expect(anonymous.status).toBe(400);
    });

    it("when a person allowed one API's scope, then another API's scope of the same name still needs asking", async () => {
      const other = 'https://other.example.test';
      const own = await listenFirst();
      try {
        const config = testConfig({
          publicUrl: own.url,
          email: { ...testConfig().email, baseUrl: own.url },
          oauthResources: [
            { resource: API, scopes: ['orders:read'] },
            { resource: other, scopes: ['orders:read'] },
          ],
        });
        const built = buildApp(backends, { config });
        own.serve(built.app);
        const client = await registerClient({ resources: [API, other] });
        const rp = await oidc.discovery(new URL(own.url), client.clientId, undefined, oidc.ClientSecretBasic(client.clientSecret), {
          execute: [oidc.allowInsecureRequests],
        });
        const person = await registerAndLogin(built.app);
        const first = new OAuthBrowser(APP);
        await first.signInToApp(own.url, (await authorization(rp, { scope: 'openid orders:read', resource: API })).url, person.accessToken);

        const second = new OAuthBrowser(APP);
        const landing = await second.walk((await authorization(rp, { scope: 'openid orders:read', resource: other, prompt: 'login' })).url);
        const answer = await second.decide(own.url, (landing as { uid: string }).uid, person.accessToken, 'continue');

        expect(answer.status).toBe(409);
      } finally {
        await own.close();
      }
    });

    it("when a flood of authorization requests comes from one address, then the provider's budget stops it", async () => {
      const own = await listenFirst();
      try {
        const built = buildApp(backends, {
          config: testConfig({
            publicUrl: own.url,
            email: { ...testConfig().email, baseUrl: own.url },
            rateLimit: { ...testConfig().rateLimit, budgets: { ...testConfig().rateLimit.budgets, oauth: { limit: 5, windowMs: 60_000, keyBy: 'ip' } } },
          }),
          store: freshStore(backends),
        });
        own.serve(built.app);
        const statuses = [];
        for (let i = 0; i < 7; i += 1)
          statuses.push((await fetch(`${own.url}/oauth2/authorize?client_id=nobody&state=${'x'.repeat(2_000)}`, { redirect: 'manual' })).status);

        expect(statuses.slice(0, 5).every((status) => status !== 429)).toBe(true);
        expect(statuses.slice(5)).toEqual([429, 429]);
      } finally {
        await own.close();
      }
    });
  });

  describe('the page hand-over', () => {
    it('when another browser asks about an interaction, then it is not found', async () => {
      const client = await registerClient();
      const browser = new OAuthBrowser(APP);
      const landing = await browser.walk((await authorization(await relyingParty(client))).url);
      const uid = (landing as { uid: string }).uid;
      const person = await registerAndLogin(app);

      const stranger = new OAuthBrowser(APP);
      expect((await stranger.details(issuer, uid)).status).toBe(404);
      expect((await stranger.decide(issuer, uid, person.accessToken)).status).toBe(404);
      expect((await browser.decide(issuer, uid, 'not-a-token')).status).toBe(401);
    });

    it('when prompt=login asks for a fresh sign-in, then an older one must step up first', async () => {
      const client = await registerClient();
      const person = await registerAndLogin(app);
      clock.advance(5 * 60_000);
      const browser = new OAuthBrowser(APP);
      const landing = await browser.walk((await authorization(await relyingParty(client), { prompt: 'login' })).url);

      const answer = await browser.decide(issuer, (landing as { uid: string }).uid, person.accessToken);

      expect(answer.status).toBe(401);
      expect(((await answer.json()) as { error: { reason?: string; code: string } }).error.code).toBe('reauthentication_required');
    });
  });

  describe('clients that authenticate with a key, registration, key rotation and several instances', () => {
    it('when a private_key_jwt client signs its assertion, then it gets tokens; an assertion by another key does not', async () => {
      const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
      const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'service-1', alg: 'ES256', use: 'sig' };
      const made = await request(app)
        .post('/admin/oauth-clients')
        .set(...bearer(adminToken))
        .send({
          name: 'Keyed service',
          grantTypes: ['client_credentials'],
          scopes: ['orders:read'],
          resources: [API],
          tokenEndpointAuthMethod: 'private_key_jwt',
          jwks: { keys: [jwk] },
        });
      expect(made.status, JSON.stringify(made.body)).toBe(201);
      expect(made.body.clientSecret).toBeUndefined();
      const clientId = made.body.clientId as string;

      const config = await relyingParty({ clientId }, oidc.PrivateKeyJwt({ key: privateKey, kid: 'service-1' }));
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'orders:read', resource: API });
      expect(tokens.access_token).toBeTruthy();

      const stranger = await jose.generateKeyPair('ES256', { extractable: true });
      const forged = await relyingParty({ clientId }, oidc.PrivateKeyJwt({ key: stranger.privateKey, kid: 'service-1' }));
      expect(await refusal(oidc.clientCredentialsGrant(forged, { scope: 'orders:read', resource: API }))).toBe('invalid_client');
    });

    it('when dynamic registration is on, then only the initial access token registers, and only a digest of the secret is kept', async () => {
      const own = await listenFirst();
      try {
        const token = 'an-initial-access-token-long-enough-0123456789';
        const config = testConfig({ publicUrl: own.url, email: { ...testConfig().email, baseUrl: own.url }, oauthRegistrationToken: token });
        const built = buildApp(backends, { config });
        own.serve(built.app);
        const metadata = { client_name: 'Registered', redirect_uris: [CALLBACK], grant_types: ['authorization_code'], response_types: ['code'] };

        const anonymous = await fetch(`${own.url}/oauth2/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(metadata),
        });
        const wrong = await fetch(`${own.url}/oauth2/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer not-the-token' },
          body: JSON.stringify(metadata),
        });
        const registered = await fetch(`${own.url}/oauth2/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify(metadata),
        });

        expect(anonymous.status).toBe(401);
        expect(wrong.status).toBe(401);
        expect(registered.status).toBe(201);
        const client = (await registered.json()) as { client_id: string; client_secret: string };
        const row = await backends.db.prisma.oAuthClient.findUnique({ where: { id: client.client_id } });
        expect(row?.dynamic).toBe(true);
        expect(row?.secretHash).not.toBe(client.client_secret);
        const rp = await oidc.discovery(new URL(own.url), client.client_id, undefined, oidc.ClientSecretBasic(client.client_secret), {
          execute: [oidc.allowInsecureRequests],
        });
        const person = await registerAndLogin(built.app);
        const { url, checks } = await authorization(rp);
        const back = await new OAuthBrowser(APP).signInToApp(own.url, url, person.accessToken);
        expect((await oidc.authorizationCodeGrant(rp, back, checks)).claims()?.sub).toBe(person.id);
      } finally {
        await own.close();
      }
    });

    it('when the key ring starts signing with a new key, then new ID tokens carry it and both verify against the JWKS', async () => {
      const own = await listenFirst();
      try {
        const keys = new SwitchableKeys();
        const config = testConfig({ publicUrl: own.url, email: { ...testConfig().email, baseUrl: own.url } });
        const built = buildApp(backends, { config, signingKeys: keys });
        own.serve(built.app);
        const admin = { email: `admin-${randomUUID()}@example.com`, password: 'correct horse battery staple', username: `admin_${randomUUID().slice(0, 8)}` };
        await createAdmin(built.deps, admin);
        const owner = (await login(built.app, admin)).accessToken;
        const made = await request(built.app)
          .post('/admin/oauth-clients')
          .set(...bearer(owner))
          .send({ name: 'Rotating', redirectUris: [CALLBACK] });
        expect(made.status, JSON.stringify(made.body)).toBe(201);
        const client = made.body as { clientId: string; clientSecret: string };
        const rp = await oidc.discovery(new URL(own.url), client.clientId, undefined, oidc.ClientSecretBasic(client.clientSecret), {
          execute: [oidc.allowInsecureRequests],
        });
        oidc.enableNonRepudiationChecks(rp);
        const signIn = async () => {
          const person = await registerAndLogin(built.app);
          const { url, checks } = await authorization(rp);
          const back = await new OAuthBrowser(APP).signInToApp(own.url, url, person.accessToken);
          return (await oidc.authorizationCodeGrant(rp, back, checks)).id_token!;
        };

        const before = await signIn();
        keys.current = 1;
        const after = await signIn();

        expect(jose.decodeProtectedHeader(before).kid).toBe('kid-a');
        expect(jose.decodeProtectedHeader(after).kid).toBe('kid-b');
        const jwks = jose.createRemoteJWKSet(new URL(`${own.url}/.well-known/jwks.json`));
        for (const idToken of [before, after]) await jose.jwtVerify(idToken, jwks, { issuer: own.url, algorithms: ['ES256'] });
      } finally {
        await own.close();
      }
    });

    it.runIf(usingRedis)('when one instance starts a sign-in, then another sharing Redis finishes it and serves its tokens', async () => {
      const own = await listenFirst();
      const second = await listenFirst();
      try {
        const config = testConfig({
          publicUrl: own.url,
          email: { ...testConfig().email, baseUrl: own.url },
          oauthResources: [{ resource: API, scopes: ['orders:read', 'orders:write'] }],
        });
        const store = freshStore(backends);
        const one = buildApp(backends, { config, store });
        const two = buildApp(backends, { config, store });
        own.serve(one.app);
        second.serve(two.app);
        const client = await registerClient();
        const person = await registerAndLogin(one.app);
        const rp = await oidc.discovery(new URL(own.url), client.clientId, undefined, oidc.ClientSecretBasic(client.clientSecret), {
          execute: [oidc.allowInsecureRequests],
        });
        const browser = new OAuthBrowser(APP);
        const { url, checks } = await authorization(rp);
        // Behind one address, the browser's requests reach either instance: it starts at one, the page answers at two,
        // the provider resumes at two, and the app exchanges the code at one.
        const landing = await browser.walk(url);
        expect(landing.kind, JSON.stringify(landing).slice(0, 1500)).toBe('interaction');
        const uid = (landing as { uid: string }).uid;
        const cookiesFor = (path: string, method: string) => browser.jar.header(new URL(path, own.url), method, false);
        const answer = await fetch(`${second.url}/oauth2/interaction/${uid}`, {
          method: 'POST',
          headers: {
            cookie: cookiesFor(`/oauth2/interaction/${uid}`, 'POST'),
            authorization: `Bearer ${person.accessToken}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ decision: 'allow' }),
        });
        expect(answer.status).toBe(200);
        browser.jar.store(new URL(`/oauth2/interaction/${uid}`, own.url), answer.headers.getSetCookie());
        const resume = new URL(((await answer.json()) as { redirectTo: string }).redirectTo);
        const resumed = await fetch(`${second.url}${resume.pathname}`, { headers: { cookie: cookiesFor(resume.pathname, 'GET') }, redirect: 'manual' });
        const back = new URL(resumed.headers.get('location') ?? '', own.url);
        expect(back.origin).toBe(APP);
        const tokens = await oidc.authorizationCodeGrant(rp, back, checks);
        expect((await oidc.fetchUserInfo(rp, tokens.access_token, person.id)).sub).toBe(person.id);
      } finally {
        await own.close();
        await second.close();
      }
    });

    it('when an API leaves OAUTH_RESOURCES, then its clients keep signing people in without its scopes', async () => {
      const client = await registerClient();
      const own = await listenFirst();
      try {
        const built = buildApp(backends, {
          config: testConfig({ publicUrl: own.url, email: { ...testConfig().email, baseUrl: own.url }, oauthResources: [] }),
        });
        own.serve(built.app);
        const rp = await oidc.discovery(new URL(own.url), client.clientId, undefined, oidc.ClientSecretBasic(client.clientSecret), {
          execute: [oidc.allowInsecureRequests],
        });
        const person = await registerAndLogin(built.app);
        const browser = new OAuthBrowser(APP);

        const { url, checks } = await authorization(rp);
        const back = await browser.signInToApp(own.url, url, person.accessToken);
        const gone = await browser.walk((await authorization(rp, { scope: 'openid orders:read' })).url);

        expect((await oidc.authorizationCodeGrant(rp, back, checks)).claims()?.sub).toBe(person.id);
        // A scope nobody offers any more is dropped from the request, as oidc-provider does with unknown scopes.
        expect(gone.kind).toBe('interaction');
        const details = (await (await browser.details(own.url, (gone as { uid: string }).uid)).json()) as { scopes: string[] };
        expect(details.scopes).toEqual(['openid']);
      } finally {
        await own.close();
      }
    });

    it('when another client presents a refresh token, or asks for more scope at refresh, then it is refused', async () => {
      const client = await registerClient();
      const other = await registerClient();
      const { config, tokens } = await signedInToApp(client);

      expect(await refusal(oidc.refreshTokenGrant(await relyingParty(other), tokens.refresh_token!))).toBe('invalid_grant');
      expect(await refusal(oidc.refreshTokenGrant(config, tokens.refresh_token!, { scope: 'openid orders:write' }))).toBe('invalid_scope');
    });
  });

  describe('the client registry', () => {
    it('when an administrator registers, reads, rotates and removes a client, then the secret is shown only when made', async () => {
      const made = await registerClient();
      expect(made.clientSecret).toMatch(/^[\w-]{43}$/);

      const read = await request(app)
        .get(`/admin/oauth-clients/${made.clientId}`)
        .set(...bearer(adminToken));
      expect(read.status).toBe(200);
      expect(read.body.clientSecret).toBeUndefined();
      const list = await request(app)
        .get('/admin/oauth-clients')
        .set(...bearer(adminToken));
      expect((list.body as { clients: { clientId: string }[] }).clients.some((client) => client.clientId === made.clientId)).toBe(true);
      const rotated = await request(app)
        .patch(`/admin/oauth-clients/${made.clientId}`)
        .set(...bearer(adminToken))
        .send({ rotateSecret: true });
      expect(rotated.status).toBe(200);
      expect(rotated.body.clientSecret).not.toBe(made.clientSecret);
      expect(await refusal(oidc.clientCredentialsGrant(await relyingParty(made), {}))).toBe('invalid_client');
      const removed = await request(app)
        .delete(`/admin/oauth-clients/${made.clientId}`)
        .set(...bearer(adminToken));
      expect(removed.status).toBe(204);
      expect(
        (
          await request(app)
            .get(`/admin/oauth-clients/${made.clientId}`)
            .set(...bearer(adminToken))
        ).status,
      ).toBe(404);
    });

    it('when the body is malformed, extra, or describes a client that cannot work, then it is refused with 400', async () => {
      const post = (body: unknown) =>
        request(app)
          .post('/admin/oauth-clients')
          .set(...bearer(adminToken))
          .send(body as object);
      for (const body of [
        {},
        { name: 'x', redirectUris: ['not a url'] },
        { name: 'x', redirectUris: [CALLBACK], extra: true },
        { name: 'x', redirectUris: [`${CALLBACK}#frag`] },
        { name: 'x', public: true, grantTypes: ['client_credentials'] },
        { name: 'x', tokenEndpointAuthMethod: 'private_key_jwt', redirectUris: [CALLBACK] },
        { name: 'x', grantTypes: ['implicit'] },
        { name: 'x', redirectUris: [CALLBACK], scopes: [] },
        { name: 'x', grantTypes: ['client_credentials'], scopes: [] },
        { name: 'x', public: true, redirectUris: [CALLBACK], introspection: true },
        { name: 'x'.repeat(101) },
      ]) {
        const res = await post(body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body.error.code).toBe('validation_failed');
      }
    });

    it('when someone who is not an administrator asks, then it is forbidden', async () => {
      const person = await registerAndLogin(app);
      const res = await request(app)
        .get('/admin/oauth-clients')
        .set(...bearer(person.accessToken));
      expect(res.status).toBe(403);
    });
  });
});
