// The test identity providers behave like the real thing: openid-client and plain HTTP as the relying party, no authkit.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as jose from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { type GithubPeer, startGithubPeer } from './support/github-peer.js';
import { type IdTokenClaims, type IdTokenSigner, type OidcPeer, startOidcPeer } from './support/oidc-peer.js';
import { completeAtCallback, type PersonChoice, signInAtProvider } from './support/provider-driver.js';

const callback = 'http://127.0.0.1:9/auth/providers/test/callback';
const secret = 'a-client-secret-long-enough-for-hs256-0123456789';

async function relyingParty(peer: OidcPeer, clientId: string, auth = oidc.ClientSecretBasic(secret)) {
  return oidc.discovery(new URL(peer.issuer), clientId, undefined, auth, { execute: [oidc.allowInsecureRequests] });
}

/** openid-client checks an ID token's signature only when asked: from the token endpoint over TLS it may skip it. */
async function signatureCheckingParty(peer: OidcPeer, clientId: string) {
  const config = await relyingParty(peer, clientId);
  oidc.enableNonRepudiationChecks(config);
  return config;
}

/** One authorization request as authkit will make it: code, PKCE S256, state and nonce. */
async function authorizationRequest(config: oidc.Configuration, extra: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const checks = { pkceCodeVerifier: verifier, expectedState: oidc.randomState(), expectedNonce: oidc.randomNonce(), idTokenExpected: true };
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: callback,
    scope: 'openid email profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    nonce: checks.expectedNonce,
    ...extra,
  });
  return { url, checks };
}

/** The person signs in (or, as 'deny', declines) at the provider; returns what comes back to the callback and what to check it with. */
async function signIn(config: oidc.Configuration, who = 'alice', extra: Record<string, string> = {}) {
  const { url, checks } = await authorizationRequest(config, extra);
  const back = await signInAtProvider(url, who === 'deny' ? 'deny' : { signInAs: who }, { returnTo: callback });
  return { back, checks };
}

describe('the OpenID provider peer', () => {
  let peer: OidcPeer;
  let other: OidcPeer;
  let config: oidc.Configuration;

  beforeAll(async () => {
    [peer, other] = await Promise.all([startOidcPeer(), startOidcPeer()]);
    for (const each of [peer, other]) {
      each.addClient({ clientId: 'authkit', clientSecret: secret, redirectUris: [callback] });
      each.setUser({ sub: 'alice', email: 'alice@example.test', email_verified: true, name: 'Alice' });
    }
    peer.addClient({ clientId: 'another-app', clientSecret: secret, redirectUris: [callback] });
    peer.addClient({ clientId: 'apple-shaped', clientSecret: secret, redirectUris: [callback], responseModes: ['form_post'] });
    peer.addClient({ clientId: 'posts-secret', clientSecret: secret, redirectUris: [callback], tokenEndpointAuthMethod: 'client_secret_post' });
    config = await relyingParty(peer, 'authkit');
  });
  afterAll(async () => {
    await Promise.all([peer.close(), other.close()]);
  });

  it('when discovered, then it names its own issuer, PKCE S256 and the iss parameter in authorization responses', async () => {
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(peer.issuer);
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.authorization_response_iss_parameter_supported).toBe(true);
    expect(metadata.response_modes_supported).toContain('form_post');
    expect(other.issuer).not.toBe(peer.issuer);
    const [mine, theirs] = await Promise.all(
      [peer, other].map(async (each) => ((await (await fetch(`${each.issuer}/jwks`)).json()) as jose.JSONWebKeySet).keys),
    );
    expect(mine!.map((key) => key.kid)).not.toEqual(theirs!.map((key) => key.kid));
  });

  it('when a person signs in, then the code, PKCE, state and nonce end in a verified ID token with their claims', async () => {
    const { back, checks } = await signIn(config);
    expect(back.method).toBe('GET');
    expect(back.params.get('iss')).toBe(peer.issuer);
    expect(back.params.get('state')).toBe(checks.expectedState);
    const tokens = await oidc.authorizationCodeGrant(config, back.url, checks);
    expect(tokens.claims()).toMatchObject({
      iss: peer.issuer,
      aud: 'authkit',
      sub: 'alice',
      email: 'alice@example.test',
      email_verified: true,
      name: 'Alice',
      nonce: checks.expectedNonce,
    });
  });

  it('when a client authenticates with client_secret_post, then the exchange works too', async () => {
    const postConfig = await relyingParty(peer, 'posts-secret', oidc.ClientSecretPost(secret));
    const { back, checks } = await signIn(postConfig);
    expect((await oidc.authorizationCodeGrant(postConfig, back.url, checks)).claims()?.sub).toBe('alice');
  });

  it('when claims are left to userinfo, then the ID token names only the subject and userinfo has the rest', async () => {
    const lean = await startOidcPeer({ claimsInIdToken: false });
    try {
      lean.addClient({ clientId: 'authkit', clientSecret: secret, redirectUris: [callback] });
      lean.setUser({ sub: 'carol', email: 'carol@example.test', email_verified: true, name: 'Carol' });
      const leanConfig = await relyingParty(lean, 'authkit');
      const { back, checks } = await signIn(leanConfig, 'carol');
      const tokens = await oidc.authorizationCodeGrant(leanConfig, back.url, checks);
      expect(tokens.claims()).not.toHaveProperty('email');
      expect(await oidc.fetchUserInfo(leanConfig, tokens.access_token, 'carol')).toEqual({
        sub: 'carol',
        email: 'carol@example.test',
        email_verified: true,
        name: 'Carol',
      });
    } finally {
      await lean.close();
    }
  });

  it('when an address is unverified at the provider, then the ID token says so', async () => {
    peer.setUser({ sub: 'bob', email: 'bob@example.test', email_verified: false, name: 'Bob' });
    const { back, checks } = await signIn(config, 'bob');
    expect((await oidc.authorizationCodeGrant(config, back.url, checks)).claims()).toMatchObject({ sub: 'bob', email_verified: false });
  });

  it('when a code is replayed, or redeemed by another client or at another provider, then it is refused', async () => {
    const { back, checks } = await signIn(config);
    await expect(oidc.authorizationCodeGrant(await relyingParty(peer, 'another-app'), back.url, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
    const atOther = new URL(back.url);
    atOther.searchParams.set('iss', other.issuer);
    await expect(oidc.authorizationCodeGrant(await relyingParty(other, 'authkit'), atOther, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
    await oidc.authorizationCodeGrant(config, back.url, checks);
    await expect(oidc.authorizationCodeGrant(config, back.url, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('when the iss in an authorization response names another provider, then the relying party refuses it (mix-up)', async () => {
    const { back, checks } = await signIn(config);
    back.url.searchParams.set('iss', other.issuer);
    await expect(oidc.authorizationCodeGrant(config, back.url, checks)).rejects.toMatchObject({
      code: 'OAUTH_INVALID_RESPONSE',
      cause: { message: expect.stringMatching(/"iss"/) },
    });
  });

  it('when the person declines, then the callback gets access_denied with the state and the issuer', async () => {
    const { back, checks } = await signIn(config, 'deny');
    expect(Object.fromEntries(back.params)).toMatchObject({ error: 'access_denied', state: checks.expectedState, iss: peer.issuer });
    await expect(oidc.authorizationCodeGrant(config, back.url, checks)).rejects.toMatchObject({ error: 'access_denied' });
  });

  it('when PKCE is missing or the redirect_uri is not registered, then the provider refuses', async () => {
    const withoutPkce = oidc.buildAuthorizationUrl(config, { redirect_uri: callback, scope: 'openid', state: 's', nonce: 'n' });
    const back = await signInAtProvider(withoutPkce, { signInAs: 'alice' }, { returnTo: callback });
    expect(back.params.get('error')).toBe('invalid_request');
    const { url } = await authorizationRequest(config, { redirect_uri: 'http://127.0.0.1:9/elsewhere' });
    await expect(signInAtProvider(url, { signInAs: 'alice' }, { returnTo: callback })).rejects.toThrow(/400.*redirect_uri/);
  });

  it('when a client is Apple-shaped, then the code comes back as a form_post and only that way', async () => {
    const apple = await relyingParty(peer, 'apple-shaped');
    const { back, checks } = await signIn(apple, 'alice', { response_mode: 'form_post' });
    expect(back.method).toBe('POST');
    expect(back.from).toBe(peer.issuer);
    expect([...back.params.keys()].sort()).toEqual(['code', 'iss', 'state']);
    const request = new Request(back.url, { method: 'POST', body: back.params, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect((await oidc.authorizationCodeGrant(apple, request, checks)).claims()?.sub).toBe('alice');
    const { back: refused } = await signIn(apple);
    expect(refused.params.get('error')).toBe('invalid_request');
    expect(refused.params.has('code')).toBe(false);
  });

  describe('when the ID token is tampered with', () => {
    type Verdict = 'rejected' | 'accepted' | 'accepted without signature checks';
    const tampers: Array<[string, (claims: IdTokenClaims) => IdTokenClaims, IdTokenSigner, Verdict]> = [
      ['an audience for another client', (claims) => ({ ...claims, aud: 'another-app' }), 'own-key', 'rejected'],
      ['another issuer', (claims) => ({ ...claims, iss: 'http://127.0.0.1:9' }), 'own-key', 'rejected'],
      ['no nonce', ({ nonce: _nonce, ...claims }) => claims, 'own-key', 'rejected'],
      ['another nonce', (claims) => ({ ...claims, nonce: 'not-the-one-sent' }), 'own-key', 'rejected'],
      ['an expiry an hour ago', (claims) => ({ ...claims, iat: claims.iat! - 7200, exp: claims.iat! - 3600 }), 'own-key', 'rejected'],
      ['a signature by a key not in the JWKS, under its kid', (claims) => claims, 'foreign-key-same-kid', 'rejected'],
      ['a signature by a key with an unknown kid', (claims) => claims, 'unknown-kid', 'rejected'],
      ['alg none', (claims) => claims, 'none', 'rejected'],
      ['an HMAC keyed with the client secret', (claims) => claims, 'client-secret-hs256', 'rejected'],
      // The control: the rewrite itself yields a sound token, so each rejection above is the tamper's doing.
      ['the very same claims, re-signed with its own key', (claims) => ({ ...claims }), 'own-key', 'accepted'],
      // From the token endpoint, openid-client checks signatures only when asked (enableNonRepudiationChecks).
      ['a foreign signature', (claims) => claims, 'foreign-key-same-kid', 'accepted without signature checks'],
    ];
    it.each(tampers)('to carry %s, then the relying party finds it %4$s', async (_name, edit, signer, verdict) => {
      const party = verdict === 'accepted without signature checks' ? config : await signatureCheckingParty(peer, 'authkit');
      peer.tamperIdToken(edit);
      peer.signIdTokenWith(signer);
      try {
        const { back, checks } = await signIn(party);
        const exchange = oidc.authorizationCodeGrant(party, back.url, checks);
        if (verdict === 'rejected') await expect(exchange).rejects.toThrow();
        else expect((await exchange).claims()?.sub).toBe('alice');
      } finally {
        peer.reset();
      }
    });
  });

  it('when the provider fails, hangs, is slow or is down, then the relying party sees each', async () => {
    const { back, checks } = await signIn(config);
    peer.setFault({ status: 500, endpoints: ['token'] });
    await expect(oidc.authorizationCodeGrant(config, back.url, checks)).rejects.toThrow();
    peer.setFault({ delayMs: Infinity, endpoints: ['discovery'] });
    const hung = fetch(`${peer.issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(100) });
    await expect(hung).rejects.toThrow(/timeout|aborted/i);
    peer.setFault({ delayMs: 150, endpoints: ['discovery'] });
    const started = performance.now();
    expect((await fetch(`${peer.issuer}/.well-known/openid-configuration`)).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    peer.reset();
    await peer.goDown();
    await expect(fetch(`${peer.issuer}/jwks`)).rejects.toThrow();
    await peer.comeBack();
    expect((await fetch(`${peer.issuer}/jwks`)).status).toBe(200);
  });
});

describe('the browser the driver plays', () => {
  it('when it comes back by form_post, then it carries SameSite=None cookies and not Lax ones, as across sites', async () => {
    const peer = await startOidcPeer();
    const seen: string[] = [];
    const relying = http.createServer((req, res) => {
      if (req.url === '/start') {
        const cookies = ['lax=1; Path=/; SameSite=Lax', 'none=1; Path=/; SameSite=None; Secure', 'insecure-none=1; SameSite=None'];
        return void res.writeHead(302, { location: apple.url.href, 'set-cookie': cookies }).end();
      }
      seen.push(`${req.method} ${req.headers.cookie ?? ''} ${req.headers.origin ?? ''}`);
      res.writeHead(302, { location: 'http://127.0.0.1:9/app?code=final' }).end();
    });
    relying.listen(0, '127.0.0.1');
    await once(relying, 'listening');
    const origin = `http://127.0.0.1:${(relying.address() as AddressInfo).port}`;
    peer.addClient({ clientId: 'rp', clientSecret: secret, redirectUris: [`${origin}/callback`], responseModes: ['form_post'] });
    peer.setUser({ sub: 'alice' });
    const config = await relyingParty(peer, 'rp');
    const apple = await authorizationRequest(config, { response_mode: 'form_post', redirect_uri: `${origin}/callback` });
    try {
      const back = await signInAtProvider(`${origin}/start`, { signInAs: 'alice' });
      expect(back.authorizationUrl?.href).toBe(apple.url.href);
      const answer = await completeAtCallback(back);
      expect(answer.location?.href).toBe('http://127.0.0.1:9/app?code=final');
      expect(seen).toEqual([`POST none=1 ${peer.issuer}`]);
    } finally {
      relying.close();
      await peer.close();
    }
  });
});

describe('the GitHub stand-in', () => {
  const clock = new ManualClock();
  const app = { clientId: 'Iv1.authkit', clientSecret: 'github-secret', callbackUrl: callback };
  let github: GithubPeer;

  beforeAll(async () => {
    github = await startGithubPeer({ clock });
    github.addApp(app);
    github.addApp({ clientId: 'Iv1.another', clientSecret: 'another-secret', callbackUrl: callback });
    github.setUser({
      id: 583231,
      login: 'octocat',
      name: 'The Octocat',
      emails: [
        { email: 'octocat@example.test', primary: true, verified: true, visibility: 'private' },
        { email: 'old@example.test', primary: false, verified: false, visibility: null },
      ],
    });
  });
  afterAll(() => github.close());

  /** The web application flow's first step with PKCE, as a person (or a decline) answers it. */
  async function githubSignIn(params: Record<string, string> = {}, who: PersonChoice = { signInAs: 'octocat' }, returnTo = callback) {
    const verifier = oidc.randomPKCECodeVerifier();
    const challenge = { code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' };
    const query = new URLSearchParams({
      client_id: app.clientId,
      redirect_uri: callback,
      scope: 'read:user user:email',
      state: 'st4te',
      ...challenge,
      ...params,
    });
    const back = await signInAtProvider(`${github.url}/login/oauth/authorize?${query.toString()}`, who, { returnTo });
    return { code: back.params.get('code')!, verifier, back };
  }

  async function exchange(fields: Record<string, string>, accept = 'application/json') {
    const body = new URLSearchParams({ client_id: app.clientId, client_secret: app.clientSecret, redirect_uri: callback, ...fields });
    const response = await fetch(`${github.url}/login/oauth/access_token`, { method: 'POST', headers: { accept }, body });
    expect(response.status).toBe(200);
    return accept === 'application/json' ? ((await response.json()) as Record<string, string>) : Object.fromEntries(new URLSearchParams(await response.text()));
  }

  const api = async (path: string, token: string, scheme = 'Bearer') => fetch(`${github.url}${path}`, { headers: { authorization: `${scheme} ${token}` } });

  it('when a person signs in, then the code buys a token that reads /user and /user/emails', async () => {
    const { code, verifier, back } = await githubSignIn();
    expect(back.params.get('state')).toBe('st4te');
    const token = await exchange({ code, code_verifier: verifier });
    expect(token).toMatchObject({ scope: 'read:user,user:email', token_type: 'bearer' });
    const user = await api('/user', token.access_token!);
    expect(await user.json()).toMatchObject({ id: 583231, login: 'octocat', name: 'The Octocat', email: null });
    const emails = await api('/user/emails', token.access_token!, 'token');
    expect(await emails.json()).toEqual([
      { email: 'octocat@example.test', primary: true, verified: true, visibility: 'private' },
      { email: 'old@example.test', primary: false, verified: false, visibility: null },
    ]);
  });

  it('when the token request does not ask for JSON, then the answer is form-encoded; a JSON body is accepted', async () => {
    const { code, verifier } = await githubSignIn();
    const fields = { client_id: app.clientId, client_secret: app.clientSecret, code, code_verifier: verifier };
    const response = await fetch(`${github.url}/login/oauth/access_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(fields),
    });
    expect(response.headers.get('content-type')).toMatch(/^application\/x-www-form-urlencoded/);
    expect(new URLSearchParams(await response.text()).get('access_token')).toMatch(/^gho_/);
  });

  it('when a code is replayed, then bad_verification_code, and the token it bought is revoked', async () => {
    const { code, verifier } = await githubSignIn();
    const first = await exchange({ code, code_verifier: verifier });
    expect(await exchange({ code, code_verifier: verifier })).toMatchObject({ error: 'bad_verification_code' });
    expect((await api('/user', first.access_token!)).status).toBe(401);
  });

  it('when the PKCE verifier is wrong or missing, the code is late or for another app, or the secret is wrong, then it fails', async () => {
    const stolen = await githubSignIn();
    const another = { client_id: 'Iv1.another', client_secret: 'another-secret', code: stolen.code, code_verifier: stolen.verifier };
    expect(await exchange(another)).toMatchObject({ error: 'bad_verification_code' });
    expect(await exchange({ code: (await githubSignIn()).code, code_verifier: oidc.randomPKCECodeVerifier() })).toMatchObject({
      error: 'bad_verification_code',
    });
    expect(await exchange({ code: (await githubSignIn()).code })).toMatchObject({ error: 'bad_verification_code' });
    const late = await githubSignIn();
    clock.advance(10 * 60 * 1000);
    expect(await exchange({ code: late.code, code_verifier: late.verifier })).toMatchObject({ error: 'bad_verification_code' });
    const good = await githubSignIn();
    expect(await exchange({ code: good.code, code_verifier: good.verifier, client_secret: 'wrong' })).toMatchObject({ error: 'incorrect_client_credentials' });
    expect(await exchange({ code: good.code, code_verifier: good.verifier }, 'text/plain')).toHaveProperty('access_token');
  });

  it('when the redirect_uri is not the registered one, then both steps refuse it', async () => {
    const evil = { redirect_uri: 'http://127.0.0.1:9/auth/providers/test/callback/../evil' };
    const { back } = await githubSignIn(evil, { signInAs: 'octocat' }, 'http://127.0.0.1:9/');
    expect(back.url.pathname).toBe('/auth/providers/test/callback');
    expect(Object.fromEntries(back.params)).toMatchObject({ error: 'redirect_uri_mismatch', state: 'st4te' });
    const { code, verifier } = await githubSignIn();
    expect(await exchange({ code, code_verifier: verifier, redirect_uri: `${callback}/other` })).toMatchObject({ error: 'redirect_uri_mismatch' });
  });

  it('when the person declines, or the token lacks user:email, then access_denied, and /user/emails is a 404', async () => {
    const { back: declined } = await githubSignIn({}, 'deny');
    expect(Object.fromEntries(declined.params)).toMatchObject({ error: 'access_denied', state: 'st4te' });
    const { code, verifier } = await githubSignIn({ scope: 'read:user' });
    const token = await exchange({ code, code_verifier: verifier });
    expect((await api('/user/emails', token.access_token!)).status).toBe(404);
    expect((await api('/user', token.access_token!)).status).toBe(200);
  });
});
