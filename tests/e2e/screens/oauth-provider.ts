// Signing in to another app through the page, in Chromium: the app's request lands on the page, the person signs in
// with a password and a second factor, allows the app, and is back at the app with a code that gives an ID token.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { expect, it } from 'vitest';
import { confirmAddress, type Kit, logIn, logOut, openSettings, refused, register, Visit } from '../support/page-kit.js';
import { startServer } from '../support/server.js';
import { Secret, TOTP } from 'otpauth';
import { totpNow } from './two-factor.js';

function totpAt(secret: string, timestamp: number): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp });
}

const ADMIN = { email: 'e2e-admin@example.com', password: 'e2e admin long passphrase', username: 'e2e_admin' };

/** The app: a page at /callback that says it got a code (the test exchanges it, as the app's server would). */
async function startApp(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Dashboard</title><h1>Dashboard</h1>'),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export function oauthProviderScreens(kit: Kit): void {
  it('when an app sends a person here, then they sign in with two factors, allow it, the app gets an ID token that says so, and another browser later goes straight through', async () => {
    const server = await startServer({ RATE_LIMIT_MAX: '1000', ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, ADMIN_USERNAME: ADMIN.username });
    const app = await startApp();
    try {
      // An administrator registers the app.
      const signIn = await fetch(`${server.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: ADMIN.username, password: ADMIN.password }),
      });
      const adminToken = ((await signIn.json()) as { access_token: string }).access_token;
      const made = await fetch(`${server.url}/admin/oauth-clients`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
        body: JSON.stringify({ name: 'Dashboard', redirectUris: [`${app.url}/callback`] }),
      });
      expect(made.status).toBe(201);
      const client = (await made.json()) as { clientId: string; clientSecret: string };

      // A person with two-factor on, signed out.
      const visit = await Visit.open(kit.browser, server, 1280);
      const { page } = visit;
      const account = await register(visit);
      visit.answerSecondProofs(account);
      await confirmAddress(visit, account);
      await openSettings(visit);
      await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
      await expect.poll(() => visit.text('#mfa-secret')).toMatch(/^[A-Z2-7]{32}$/);
      const secret = await visit.text('#mfa-secret');
      await page.locator('#mfa-enable').getByLabel('Code').fill(totpNow(secret));
      await page.locator('#mfa-enable').getByRole('button', { name: 'Turn on' }).click();
      await expect.poll(() => visit.text('#mfa-section > .result')).toMatch(/^Turned on\./);
      const recoveryCode = (await visit.text('#mfa-codes')).split('\n').find(Boolean) ?? '';
      await logOut(visit);
      visit.expectQuietConsole('oauth setup', [refused(403)]);

      // The app sends the browser to us.
      const config = await oidc.discovery(new URL(server.url), client.clientId, undefined, oidc.ClientSecretBasic(client.clientSecret), {
        execute: [oidc.allowInsecureRequests],
      });
      const verifier = oidc.randomPKCECodeVerifier();
      const checks = { pkceCodeVerifier: verifier, expectedState: oidc.randomState(), expectedNonce: oidc.randomNonce(), idTokenExpected: true };
      const authorize = oidc.buildAuthorizationUrl(config, {
        redirect_uri: `${app.url}/callback`,
        scope: 'openid email profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state: checks.expectedState,
        nonce: checks.expectedNonce,
      });
      await page.goto(authorize.href);
      await expect.poll(() => visit.text('#oauth-waiting')).toBe('Sign in to continue to Dashboard.');
      expect(new URL(page.url()).hash).toBe('');
      await visit.check('80-oauth-sign-in-to-continue');

      // Password, then the second step, then the app's request.
      await logIn(visit, account);
      const step = page.locator('#second-step-form');
      await expect.poll(() => step.isVisible()).toBe(true);
      // The next step's code: this step's was spent turning two-factor on (the server accepts one step of drift).
      await step.getByLabel('Code').fill(totpAt(secret, Date.now() + 30_000));
      await step.getByRole('button', { name: 'Verify' }).click();
      await expect.poll(() => page.locator('#oauth-request').isVisible()).toBe(true);
      expect(await visit.text('#oauth-title')).toBe('Dashboard wants to sign you in');
      expect(await visit.text('#oauth-scopes')).toContain('See your email address');
      // The page asked to go straight on first; the 409 it got is the answer "ask the person".
      await visit.check('81-oauth-consent', [refused(409)]);

      await page.getByRole('button', { name: 'Allow' }).click();
      await page.waitForURL((url) => url.origin === app.url);
      const back = new URL(page.url());
      expect(back.pathname).toBe('/callback');

      const tokens = await oidc.authorizationCodeGrant(config, back, checks);
      const claims = tokens.claims()!;
      expect(claims.acr).toBe('aal2');
      expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
      expect((await oidc.fetchUserInfo(config, tokens.access_token, claims.sub)).email).toBe(account.email);
      await visit.close();

      // Another browser, another day: once signed in, the app it allowed before gets its code with no card shown.
      const again = await Visit.open(kit.browser, server, 390);
      const nextChecks = { ...checks, expectedState: oidc.randomState(), expectedNonce: oidc.randomNonce() };
      await again.page.goto(
        oidc.buildAuthorizationUrl(config, {
          redirect_uri: `${app.url}/callback`,
          scope: 'openid email',
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state: nextChecks.expectedState,
          nonce: nextChecks.expectedNonce,
        }).href,
      );
      await expect.poll(() => again.text('#oauth-waiting')).toBe('Sign in to continue to Dashboard.');
      await logIn(again, account);
      const secondStep = again.page.locator('#second-step-form');
      await expect.poll(() => secondStep.isVisible()).toBe(true);
      await secondStep.getByLabel('Code').fill(recoveryCode);
      await secondStep.getByRole('button', { name: 'Verify' }).click();
      // Nobody clicked Allow: reaching the app is the proof that no card waited for an answer.
      await again.page.waitForURL((url) => url.origin === app.url);
      const remembered = await oidc.authorizationCodeGrant(config, new URL(again.page.url()), nextChecks);
      expect(remembered.claims()?.sub).toBe(claims.sub);
      await again.close();
    } finally {
      await app.close();
      await server.stop();
    }
  });
}
