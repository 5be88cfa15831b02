import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { openKeys } from '../../src/kernel/keys/purpose-keys.js';
import { systemClock } from '../../src/core/clock.js';
import { loadConfig } from '../../src/core/config.js';
import { type Database, openDatabase } from '../../src/core/db.js';
import { boundPort, closeGracefully, listen } from '../../src/core/http/server.js';
import { PasswordHashPool } from '../../src/core/password-hash-pool.js';
import { createLogger } from '../../src/core/logger.js';
import { inProcessStore } from '../../src/core/shared-store.js';
import { png, svg } from '../support/images.js';
import { codeAt } from '../../src/kernel/verifiers/totp.js';
import { readOutbox } from '../../src/features/email/transport.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = path.resolve(import.meta.dirname, '../../test-results');

describe('the browser page', () => {
  let db: Database;
  let server: Server;
  let browser: Browser;
  let baseUrl: string;
  let defaultBudgetsServer: Server | undefined;
  let defaultBudgetsUrl: string;
  let passkeyServer: Server | undefined;
  let passkeyUrl: string;
  let dataDir: string;
  let passwordPool: PasswordHashPool | undefined;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH`);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'authkit-e2e-'));
    // The defaults a newcomer gets, with budgets roomy enough for one scripted visit.
    const config = {
      ...loadConfig({ NODE_ENV: 'test', BCRYPT_COST: '4', DATA_DIR: dataDir, RATE_LIMIT_MAX: '100' }),
      jwtSecret: 'e2e-secret-that-is-at-least-32-bytes-long',
    };
    db = await openDatabase({ dataDir, migrate: true });
    passwordPool = new PasswordHashPool({ threads: 1, queueMax: 100 });
    const { signingKeys, purposeKeys } = await openKeys(
      {
        algorithm: 'ES256',
        jwtSecret: config.jwtSecret,
        keyEncryptionKey: 'e2e-key-encryption-key-at-least-32-bytes',
        accessTtlS: config.accessTokenTtlS,
        clockToleranceS: config.jwtClockToleranceS,
      },
      db.prisma,
      systemClock,
    );
    const deps = { db, clock: systemClock, logger: createLogger({ level: 'silent', pretty: false }), passwordPool, signingKeys, purposeKeys };
    server = await listen(createApp({ ...deps, config, store: inProcessStore }), 0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${boundPort(server)}`;
    // The same, with the budgets a newcomer gets (5 a minute per group) and an in-process store of its own.
    const defaults = { ...loadConfig({ NODE_ENV: 'test', BCRYPT_COST: '4', DATA_DIR: dataDir }), jwtSecret: config.jwtSecret };
    defaultBudgetsServer = await listen(createApp({ ...deps, config: defaults, store: inProcessStore }), 0, '127.0.0.1');
    defaultBudgetsUrl = `http://127.0.0.1:${boundPort(defaultBudgetsServer)}`;
    // Passkeys need the page on the RP ID (localhost) at an origin the server knows, port included: the port is
    // taken first, then the app that names it answers on it.
    passkeyServer = await listen(createApp({ ...deps, config, store: inProcessStore }), 0, '127.0.0.1');
    passkeyUrl = `http://localhost:${boundPort(passkeyServer)}`;
    const passkeyConfig = {
      ...loadConfig({ NODE_ENV: 'test', BCRYPT_COST: '4', DATA_DIR: dataDir, RATE_LIMIT_MAX: '100', WEBAUTHN_ORIGINS: passkeyUrl }),
      jwtSecret: config.jwtSecret,
    };
    passkeyServer.removeAllListeners('request');
    passkeyServer.on('request', createApp({ ...deps, config: passkeyConfig, store: inProcessStore }));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    await mkdir(SCREENSHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    if (server) await closeGracefully(server, 1_000);
    if (defaultBudgetsServer) await closeGracefully(defaultBudgetsServer, 1_000);
    if (passkeyServer) await closeGracefully(passkeyServer, 1_000);
    await db?.close();
    await passwordPool?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function openPage(url = baseUrl): Promise<Page> {
    const page = await browser.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
    await page.goto(url);
    return page;
  }

  /** Opens the page and creates an account through the form, as a person would. */
  async function registerThroughPage(url = baseUrl): Promise<{ page: Page; username: string }> {
    const page = await openPage(url);
    return { page, username: await registerOn(page) };
  }

  /** Creates an account through the form of an open page; resolves with its username once signed in. */
  async function registerOn(page: Page): Promise<string> {
    const username = `e2e_${Date.now().toString(36)}${Math.floor(Math.random() * 1000)}`;
    await page.getByRole('tab', { name: 'Create account' }).click();
    const form = page.locator('#register-form');
    await form.getByLabel('Username').fill(username);
    await form.getByLabel('Email').fill(`${username}@example.com`);
    await form.getByLabel('Password').fill('a long enough password');
    await form.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => page.locator('#whoami').textContent()).toBe(`Signed in as ${username}`);
    return username;
  }

  it('when a person registers, uploads, deletes and logs out, then each step shows on the page', async () => {
    const { page, username } = await registerThroughPage();

    // A wrong type gets a clear message, not a silent failure.
    await page.locator('#file').setInputFiles({ name: 'logo.svg', mimeType: 'image/svg+xml', buffer: svg });
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => page.locator('#status').textContent()).toBe('Only PNG, JPEG, GIF and WebP images are accepted.');

    await page.locator('#file').setInputFiles({ name: 'sunset.png', mimeType: 'image/png', buffer: png(40, 30) });
    await page.getByRole('button', { name: 'Upload' }).click();
    const thumb = page.locator('#gallery li').filter({ hasText: 'sunset.png' });
    await thumb.waitFor();
    await expect
      .poll(() =>
        thumb.locator('img').evaluate((img) => {
          const image = img as unknown as { complete: boolean; naturalWidth: number };
          return image.complete ? image.naturalWidth : 0;
        }),
      )
      .toBe(40);
    await expect.poll(() => thumb.locator('.size').textContent()).toContain('40×30');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'e2e-gallery.png'), fullPage: true });

    await thumb.getByRole('button', { name: 'Delete sunset.png' }).click();
    await expect.poll(() => page.locator('#gallery li').count()).toBe(0);
    await expect.poll(() => page.locator('#empty').isVisible()).toBe(true);

    await page.getByRole('button', { name: 'Log out' }).click();
    await expect.poll(() => page.locator('#login-form').isVisible()).toBe(true);
    await expect.poll(() => page.locator('#status').textContent()).toBe('You are logged out.');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'e2e-logged-out.png'), fullPage: true });

    // Logging back in with the same account works from the login tab.
    await page.locator('#login-form').getByLabel('Username or email').fill(username);
    await page.locator('#login-form').getByLabel('Password').fill('a long enough password');
    await page.locator('#login-form').getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.locator('#whoami').textContent()).toBe(`Signed in as ${username}`);

    expect(consoleErrors.filter((text) => !text.includes('415'))).toEqual([]);
  });

  /** The newest message to `email` whose subject matches, from the outbox every server here writes to. */
  async function newestMailTo(email: string, subject: RegExp): Promise<string> {
    const outbox = path.join(dataDir, 'outbox');
    const find = async () => (await readOutbox(outbox, 500)).find((mail) => mail.to === email && subject.test(mail.subject));
    await expect.poll(async () => (await find()) !== undefined, { timeout: 10_000 }).toBe(true);
    return (await find())?.text ?? '';
  }

  /**
   * Makes the account ready for what outlives a session, as its owner would: opens the confirmation link (on `url`),
   * and answers the page's request for a second proof with the code emailed to them.
   */
  async function proveOwnership(page: Page, username: string, url: string): Promise<void> {
    const email = `${username}@example.com`;
    const fragment = /#verify-email=[A-Za-z0-9_-]+/.exec(await newestMailTo(email, /^Confirm your email/))?.[0] ?? '';
    await page.goto('about:blank');
    await page.goto(`${url}/${fragment}`);
    await expect.poll(() => page.locator('#status').textContent()).toBe(`Thank you: ${email} is confirmed.`);
    page.on('dialog', (dialog) => {
      if (!/emailed you/.test(dialog.message())) return;
      void newestMailTo(email, /confirmation code/).then((text) => dialog.accept(/^\s+(\d{6})\s*$/m.exec(text)?.[1] ?? ''));
    });
  }

  it('when a person opens the settings, then they can create an API key and start two-factor with a QR code', async () => {
    const { page, username } = await registerThroughPage();
    // Adding the first second factor is refused once (403 second_proof_required, which the browser logs) and the
    // page asks for the emailed code: the console checks below let that one status through.
    await proveOwnership(page, username, baseUrl);

    await page.locator('#settings summary').click();
    await page.locator('#key-form').getByLabel('Name').fill('laptop script');
    await page.locator('#key-form').getByRole('button', { name: 'Create key' }).click();
    await expect.poll(() => page.locator('#new-key').textContent()).toMatch(/ak_[A-Za-z0-9]{12}_/);
    await expect.poll(() => page.locator('#keys li').count()).toBe(1);
    // The account's own security log: its creation and the sign-in that followed, newest first.
    await expect
      .poll(() => page.locator('#security-events li').allTextContents())
      .toEqual([expect.stringMatching(/^Signed in \(password\) · .* · .*127\.0\.0\.1/), expect.stringMatching(/^Account created · /)]);

    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    await expect.poll(() => page.locator('#mfa-qr').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(100);
    await expect.poll(() => page.locator('#mfa-secret').textContent()).toMatch(/^[A-Z2-7]{32}$/);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'e2e-settings.png'), fullPage: true });
    expect(consoleErrors.filter((text) => !text.includes('415') && !text.includes('status of 403'))).toEqual([]);
  });

  it('when a person types a password, then the meter shows how guessable it is, and a refusal shows the server’s reason', async () => {
    const page = await openPage();
    await page.getByRole('tab', { name: 'Create account' }).click();
    const form = page.locator('#register-form');
    const username = `e2e_${Date.now().toString(36)}`;
    await form.getByLabel('Username').fill(username);
    await form.getByLabel('Email').fill(`${username}@example.com`);

    await form.getByLabel('Password').fill('password123');
    await expect.poll(() => page.locator('#password-hint').textContent(), { timeout: 10_000 }).toMatch(/^Very weak\. .*common/i);
    expect(await page.locator('#password-strength').evaluate((meter) => (meter as unknown as { value: number }).value)).toBe(0);
    await form.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => page.locator('#status').textContent()).toMatch(/lists of common and leaked passwords/);

    await form.getByLabel('Password').fill('tulip canyon ember quartz lantern');
    await expect.poll(() => page.locator('#password-strength').evaluate((meter) => (meter as unknown as { value: number }).value)).toBe(4);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'e2e-password-strength.png'), fullPage: true });
    await form.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => page.locator('#whoami').textContent()).toBe(`Signed in as ${username}`);
    // The refused registration is the one error the browser reports.
    expect(consoleErrors.filter((text) => !text.includes('415') && !text.includes('status of 403') && !text.includes('400'))).toEqual([]);
  });

  it('when a person uses the page normally under the default budgets of 5 a minute, then no request meets a 429 and nothing shown is guessed', async () => {
    const page = await openPage(defaultBudgetsUrl);
    const refused: string[] = [];
    page.on('response', (response) => {
      if (response.status() === 429) refused.push(`${response.request().method()} ${new URL(response.url()).pathname}`);
    });
    const username = await registerOn(page);

    // Two page loads (opening the emailed confirmation link, which a key needs, then a reload), two uploads, then
    // the settings: an API key and a look at two-factor.
    await proveOwnership(page, username, defaultBudgetsUrl);
    await page.reload();
    await expect.poll(() => page.locator('#whoami').textContent()).toBe(`Signed in as ${username}`);
    for (const name of ['first.png', 'second.png']) {
      await page.locator('#file').setInputFiles({ name, mimeType: 'image/png', buffer: png() });
      await page.locator('#upload-form').getByRole('button', { name: 'Upload' }).click();
      await expect.poll(() => page.locator('#status').textContent()).toBe(`Uploaded ${name}.`);
    }
    await expect.poll(() => page.locator('#gallery li').count()).toBe(2);
    await page.locator('#settings summary').click();
    await expect.poll(() => page.locator('#mfa-state').textContent()).toBe('Two-factor authentication is off.');
    await page.locator('#key-form').getByLabel('Name').fill('laptop script');
    await page.locator('#key-form').getByRole('button', { name: 'Create key' }).click();
    await expect.poll(() => page.locator('#keys li').count()).toBe(1);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'e2e-default-budgets.png'), fullPage: true });
    await expect.poll(() => page.locator('#upload-limit').textContent()).toBe(', at most 5.0 MB');
    // The same screen at a phone's width: nothing may overflow it.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'e2e-phone.png'), fullPage: true });
    const pageWidth = await page.locator('html').evaluate((html) => (html as unknown as { scrollWidth: number }).scrollWidth);
    expect(pageWidth).toBeLessThanOrEqual(390);

    expect(refused).toEqual([]);
    expect(consoleErrors.filter((text) => !text.includes('415') && !text.includes('status of 403') && !text.includes('400'))).toEqual([]);
  });
  it('when a person adds a passkey, then it signs them in, stands in for the code, and can be deleted', async () => {
    const { page, username } = await registerThroughPage(passkeyUrl);
    await proveOwnership(page, username, passkeyUrl);
    // Chromium's own virtual authenticator (DevTools protocol), as a platform authenticator with a PIN or biometrics.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    const status = () => page.locator('#status').textContent();
    const signedIn = () => expect.poll(() => page.locator('#whoami').textContent()).toBe(`Signed in as ${username}`);
    const openSettings = async () => {
      if ((await page.locator('#settings').getAttribute('open')) === null) await page.locator('#settings summary').click();
    };
    const logOut = async () => {
      await page.getByRole('button', { name: 'Log out' }).click();
      await expect.poll(() => page.locator('#login-form').isVisible()).toBe(true);
    };

    // Add one from the settings.
    await openSettings();
    await page.locator('#passkey-form').getByLabel('Name').fill('Test laptop');
    await page.locator('#passkey-form').getByRole('button', { name: 'Add a passkey' }).click();
    await expect.poll(status).toBe('Passkey "Test laptop" added. You can now sign in with it.');
    await expect.poll(() => page.locator('#passkeys li').textContent()).toMatch(/^Test laptop \(on one device, added .*, not used yet\)/);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(credentials[0]?.isResidentCredential).toBe(true);

    // Sign out, and back in with no username or password.
    await logOut();
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await signedIn();

    // Turn on two-factor; then the password login's second step takes the passkey instead of a code.
    await openSettings();
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    await expect.poll(() => page.locator('#mfa-secret').textContent()).toMatch(/^[A-Z2-7]{32}$/);
    const secret = (await page.locator('#mfa-secret').textContent()) ?? '';
    await page.locator('#mfa-enable').getByLabel('Code').fill(codeAt(secret, Date.now()));
    await page.locator('#mfa-enable').getByRole('button', { name: 'Turn on' }).click();
    await expect.poll(status).toBe('Two-factor authentication is on.');
    await logOut();
    await page.locator('#login-form').getByLabel('Username or email').fill(username);
    await page.locator('#login-form').getByLabel('Password').fill('a long enough password');
    await page.locator('#login-form').getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('button', { name: 'Use a passkey instead' }).click();
    await signedIn();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'e2e-passkeys.png'), fullPage: true });

    // Rename it, then delete it; the server forgets it, and the page says so when the device still offers it.
    await openSettings();
    await expect.poll(() => page.locator('#passkeys li').count()).toBe(1);
    page.once('dialog', (dialog) => void dialog.accept('Work laptop'));
    await page.getByRole('button', { name: 'Rename Test laptop' }).click();
    await expect.poll(status).toBe('Renamed to Work laptop.');
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Delete Work laptop' }).click();
    await expect.poll(() => page.locator('#passkeys li').count()).toBe(0);
    await logOut();
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await expect.poll(status).toBe('That passkey is not registered here (it may have been deleted). Sign in with your password.');
    expect(await page.locator('#whoami').isVisible()).toBe(false);

    // An authenticator that refuses (the person cancels, or fails the PIN or biometrics) is said in words too.
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await expect.poll(status).toBe('The passkey request was cancelled or timed out. Nothing was changed.');

    // The one error the browser reports is the server's refusal above.
    expect(consoleErrors.filter((text) => !text.includes('415') && !text.includes('status of 403') && !text.includes('400') && !text.includes('401'))).toEqual(
      [],
    );
  });
  it('when a person confirms their address, forgets their password, and signs in with an emailed code, then each works from the page', async () => {
    const { page, username } = await registerThroughPage();
    const email = `${username}@example.com`;
    const status = () => page.locator('#status').textContent();
    /** The newest message to the person (the embedded default writes them to DATA_DIR/outbox), once it is there. */
    const newestMail = async (subject: RegExp) => {
      await expect
        .poll(async () => (await readOutbox(path.join(dataDir, 'outbox'))).some((mail) => mail.to === email && subject.test(mail.subject)), { timeout: 10_000 })
        .toBe(true);
      const mail = (await readOutbox(path.join(dataDir, 'outbox'))).find((entry) => entry.to === email && subject.test(entry.subject));
      return mail?.text ?? '';
    };
    /** Opens an emailed link on this test's server (the link names the configured base URL). */
    const follow = async (text: string) => {
      const fragment = /#(?:verify-email|reset-password)=[A-Za-z0-9_-]+/.exec(text)?.[0] ?? '';
      await page.goto('about:blank');
      await page.goto(`${baseUrl}/${fragment}`);
    };

    await expect.poll(() => page.locator('#verify-banner').isVisible()).toBe(true);
    await expect.poll(() => page.locator('#verify-address').textContent()).toBe(email);
    await follow(await newestMail(/^Confirm your email/));
    await expect.poll(status).toBe(`Thank you: ${email} is confirmed.`);
    await expect.poll(() => page.locator('#verify-banner').isVisible()).toBe(false);

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Forgot your password?' }).click();
    await page.locator('#email-form').getByLabel('Email').fill(email);
    await page.locator('#email-form').getByRole('button', { name: 'Send' }).click();
    await expect
      .poll(status)
      .toBe(
        'If that address belongs to an account, a link to reset its password will arrive within a minute (an address gets at most 3 messages in 15 minutes).',
      );
    await follow(await newestMail(/^Reset your/));
    await page.locator('#reset-form').getByLabel('New password').fill('tulip canyon ember quartz');
    await page.locator('#reset-form').getByRole('button', { name: 'Set the new password' }).click();
    await expect.poll(status).toBe('Your password is changed, and every session was signed out. Log in with the new password.');
    await page.locator('#login-form').getByLabel('Username or email').fill(username);
    await page.locator('#login-form').getByLabel('Password').fill('tulip canyon ember quartz');
    await page.locator('#login-form').getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.locator('#whoami').textContent()).toBe(`Signed in as ${username}`);

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Email me a sign-in code' }).click();
    await page.locator('#email-form').getByLabel('Email').fill(email);
    await page.locator('#email-form').getByRole('button', { name: 'Send' }).click();
    const code = /^\s+(\d{6})$/m.exec(await newestMail(/sign-in code/))?.[1] ?? '';
    await page.locator('#code-form').getByLabel('The 6-digit code from the email').fill(code);
    await page.locator('#code-form').getByRole('button', { name: 'Sign in with the code' }).click();
    await expect.poll(() => page.locator('#whoami').textContent()).toBe(`Signed in as ${username}`);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'e2e-email.png'), fullPage: true });
    expect(consoleErrors.filter((text) => !text.includes('415') && !text.includes('status of 403') && !text.includes('400') && !text.includes('401'))).toEqual(
      [],
    );
  });
});
