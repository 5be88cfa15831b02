// The administrators' console in Chromium: an administrator adds a webhook, finds a person, changes their roles,
// disables and enables them from the keyboard, ends their sessions (their own tab is refused), reads those actions
// in the audit log and the webhook's deliveries, rotates keys, adds, changes and deletes an identity provider and an
// OAuth client, views and deletes an organization. The person never sees the console, and what they forge is refused.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { expect, it } from 'vitest';
import { type Kit, logIn, refused, register, Visit } from '../support/page-kit.js';
import { startServer } from '../support/server.js';

const ADMIN = { username: 'console_admin', email: 'console-admin@example.com', password: 'console admin long passphrase' };

interface Received {
  body: string;
  headers: Record<string, string>;
}

/** A webhook endpoint on loopback: keeps what each POST carried, and answers 204. */
async function startReceiver(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const headers = Object.fromEntries(Object.entries(req.headers).map(([name, value]) => [name, String(value)]));
      received.push({ body, headers });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

interface Focusable {
  getAttribute(name: string): string | null;
  textContent: string | null;
  labels?: ArrayLike<{ textContent: string | null }> | null;
}

/** The name of the control that has the focus: its aria-label, else its label's text, else its own text. */
function focusedName(page: Page): Promise<string> {
  return page.evaluate(() => {
    const element = (globalThis as unknown as { document: { activeElement: Focusable | null } }).document.activeElement;
    if (!element) return '';
    return element.getAttribute('aria-label') ?? (element.labels?.[0]?.textContent ?? element.textContent ?? '').trim();
  });
}

/** Whether the (first) element `selector` names has the focus. */
function isFocused(page: Page, selector: string): Promise<boolean> {
  return page
    .locator(selector)
    .first()
    .evaluate((element) => element === (globalThis as unknown as { document: { activeElement: unknown } }).document.activeElement);
}

/** Presses Tab (and nothing else) until the focus is on the control named `name`. */
async function tabTo(page: Page, name: string, limit = 40): Promise<void> {
  for (let presses = 0; presses < limit; presses++) {
    await page.keyboard.press('Tab');
    if ((await focusedName(page)) === name) return;
  }
  throw new Error(`${limit} presses of Tab never reached “${name}”`);
}

/** Accepts the next confirmation the page asks for, and keeps its question. */
function acceptNextDialog(page: Page): { question: Promise<string> } {
  return {
    question: new Promise((resolve) =>
      page.once('dialog', (dialog) => {
        resolve(dialog.message());
        void dialog.accept();
      }),
    ),
  };
}

export function adminScreens(kit: Kit): void {
  it('when an administrator uses the console, then every admin action works from the page, each result is said beside it, and a non-administrator sees none of it', async () => {
    const server = await startServer({
      RATE_LIMIT_MAX: '1000',
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      ADMIN_USERNAME: ADMIN.username,
      WEBHOOK_INTERNAL_ALLOWLIST: '127.0.0.1',
    });
    const receiver = await startReceiver();
    try {
      // A person signed in on their phone: no console for them.
      const person = await Visit.open(kit.browser, server, 390);
      const account = await register(person);
      await person.settled();
      expect(await person.page.locator('#admin-card').isVisible()).toBe(false);

      // The administrator signs in: the console opens on the users, the administrator marked.
      const visit = await Visit.open(kit.browser, server, 1280);
      const { page } = visit;
      await logIn(visit, ADMIN);
      await expect.poll(() => page.locator('#admin-card').isVisible()).toBe(true);
      await expect.poll(() => visit.text('#admin-users-summary')).toBe('2 users.');
      expect(await page.locator('#admin-users-list li').filter({ hasText: ADMIN.username }).locator('.badge').allTextContents()).toEqual(['You']);
      expect(await page.getByRole('button', { name: `Disable ${ADMIN.username}` }).count()).toBe(0);
      await visit.check('c0-console-users');

      // The tabs from the keyboard: arrows move between them, Enter shows one.
      await page.getByRole('tab', { name: 'Users' }).focus();
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('ArrowRight');
      expect(await focusedName(page)).toBe('Webhooks');
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator('#admin-webhooks').isVisible()).toBe(true);
      expect(await page.locator('#admin-users').isVisible()).toBe(false);

      // A webhook for role changes: its secret shown once, and it verifies what the endpoint receives later.
      const hook = page.locator('#admin-webhook-form');
      await expect.poll(() => hook.getByRole('checkbox').count()).toBeGreaterThan(20);
      await hook.getByLabel('URL').fill(`${receiver.url}/hook`);
      await hook.getByRole('checkbox', { name: 'Role granted' }).check();
      await hook.getByRole('checkbox', { name: 'Account disabled' }).check();
      await hook.getByRole('button', { name: 'Add endpoint' }).click();
      await expect
        .poll(() => visit.text('#admin-webhook-form > .result'))
        .toBe(`Added ${receiver.url}/hook. Copy its signing secret below now: it is not shown again.`);
      const secret = /whsec_[A-Za-z0-9+/=]+/.exec(await visit.text('#admin-webhook-secret'))?.[0] ?? '';
      expect(secret).not.toBe('');
      expect(await page.locator('#admin-webhooks-list li').count()).toBe(1);
      await visit.check('c1-console-webhook-added');

      // Back to the users: find the person by part of their name.
      await page.getByRole('tab', { name: 'Users' }).click();
      expect(await visit.text('#admin-webhook-secret')).toBe('');
      const search = page.locator('#admin-user-search');
      await search.getByLabel('Username or email contains').fill(account.username.slice(0, -1).toUpperCase());
      await search.getByRole('button', { name: 'Search' }).click();
      await expect.poll(() => visit.text('#admin-users-summary')).toBe('1 user.');
      const row = page.locator('#admin-users-list li').filter({ hasText: account.username });
      const rowResult = () => row.locator(':scope > .result').textContent();

      // Roles: made an administrator, then a user again.
      await row.getByRole('button', { name: `Edit roles of ${account.username}` }).click();
      expect(await focusedName(page)).toBe('admin');
      await row.getByRole('checkbox', { name: 'admin' }).check();
      await visit.check('c2-console-roles-editor');
      await row.getByRole('button', { name: 'Save roles' }).click();
      await expect.poll(rowResult).toMatch(/^.* now has the roles admin, user\./);
      expect(await focusedName(page)).toBe(`Edit roles of ${account.username}`);
      await row.getByRole('button', { name: `Edit roles of ${account.username}` }).click();
      await row.getByRole('checkbox', { name: 'admin' }).uncheck();
      await row.getByRole('button', { name: 'Save roles' }).click();
      await expect.poll(rowResult).toMatch(/^.* now has the roles user\./);

      // Disable and enable with the keyboard alone: Tab to the button, Enter, the confirmation, then Space.
      await search.getByLabel('Username or email contains').focus();
      await tabTo(page, `Disable ${account.username}`);
      const asked = acceptNextDialog(page);
      await page.keyboard.press('Enter');
      expect(await asked.question).toMatch(/^Disable .*\? They are signed out everywhere at once/);
      await expect.poll(rowResult).toBe(`Disabled ${account.username}: every session and token of theirs stopped working, and they cannot sign in.`);
      expect(await row.locator('.badge').allTextContents()).toEqual(['Disabled']);
      expect(await focusedName(page)).toBe(`Enable ${account.username}`);
      // The person's tab is refused from now on: the next thing it reads signs it out.
      await person.page.reload();
      await expect.poll(() => person.page.locator('#login-form').isVisible()).toBe(true);
      await page.keyboard.press('Space');
      await expect.poll(rowResult).toBe(`Enabled ${account.username}: they can sign in again.`);
      expect(await focusedName(page)).toBe(`Disable ${account.username}`);

      // Enabled, the person signs in again; then their sessions are ended, and their tab is refused once more.
      await logIn(person, account);
      await expect.poll(() => person.text('#whoami')).toBe(`Signed in as ${account.username}`);
      await person.settled();
      const ending = acceptNextDialog(page);
      await row.getByRole('button', { name: `End sessions of ${account.username}` }).click();
      expect(await ending.question).toMatch(/^End every session of .*\? They are signed out on every device/);
      await expect.poll(rowResult).toBe(`Ended 1 session of ${account.username}: they are signed out everywhere.`);
      await visit.check('c3-console-sessions-ended');
      await person.page.reload();
      await expect.poll(() => person.page.locator('#login-form').isVisible()).toBe(true);
      await expect.poll(() => person.text('#status')).toBe('Your session has ended. Please log in again.');
      person.expectQuietConsole('the person refused after the console acted', [refused(401)]);

      // The audit log: the person's activity from their row, then one kind of event, then a time with none.
      await row.getByRole('button', { name: `Activity of ${account.username}` }).click();
      await expect.poll(() => page.locator('#admin-audit').isVisible()).toBe(true);
      const shownEvents = async () => {
        await page.locator('#admin-audit-filters').getByRole('button', { name: 'Show events' }).click();
        await visit.settled();
        return page.locator('#admin-audit-list li strong').allTextContents();
      };
      await expect
        .poll(shownEvents)
        .toEqual(expect.arrayContaining(['Account created', 'Role granted', 'Role removed', 'Account disabled', 'Account enabled', 'Signed out everywhere']));
      expect(await page.locator('#admin-audit-filters').getByLabel('User', { exact: true }).inputValue()).toBe(account.username);
      await page.locator('#admin-audit-filters').getByLabel('Event', { exact: true }).selectOption({ label: 'Account disabled' });
      await expect.poll(shownEvents).toEqual(['Account disabled']);
      expect(await visit.text('#admin-audit-list li')).toContain(`by ${ADMIN.username} (`);
      expect(await visit.text('#admin-audit-summary')).toBe('1 event.');
      await visit.check('c4-console-audit');
      await page.locator('#admin-audit-filters').getByLabel('From', { exact: true }).fill('2999-01-01T00:00');
      await expect.poll(shownEvents).toEqual([]);
      expect(await visit.text('#admin-audit-summary')).toBe('No event found.');
      await page.getByRole('button', { name: 'Check the hash chain' }).click();
      await expect
        .poll(() => visit.text('#admin-verify-title ~ .result'))
        .toMatch(/^The chain is intact: \d+ events checked, from #1 to #\d+; the newest hash is /);

      // The webhook's deliveries: both events reached the endpoint, signed with the secret shown once.
      const verifier = new Webhook(secret);
      const receivedTypes = () => receiver.received.map(({ body, headers }) => (verifier.verify(body, headers) as { type: string }).type).sort();
      await expect.poll(receivedTypes, { timeout: 30_000 }).toEqual(['account.disabled', 'role.granted']);
      await page.getByRole('tab', { name: 'Webhooks' }).click();
      await page.getByRole('button', { name: `Deliveries to ${receiver.url}/hook` }).click();
      await expect.poll(() => isFocused(page, '#admin-deliveries-title')).toBe(true);
      expect(await visit.text('#admin-deliveries-title')).toBe(`Deliveries to ${receiver.url}/hook`);
      const deliveries = page.locator('#admin-deliveries li');
      await expect
        .poll(async () => {
          await page.getByRole('button', { name: 'Read them again' }).click();
          await visit.settled();
          return deliveries.filter({ hasText: 'Delivered' }).locator('strong').allTextContents();
        })
        .toEqual(expect.arrayContaining(['Role granted', 'Account disabled']));
      expect(await deliveries.first().textContent()).toMatch(/last answer 204/);
      await visit.check('c5-console-webhook-deliveries');
      const removal = acceptNextDialog(page);
      await page.getByRole('button', { name: `Delete the endpoint ${receiver.url}/hook` }).click();
      await removal.question;
      await expect.poll(() => visit.text('#admin-webhooks-list ~ .result')).toBe(`Deleted the endpoint ${receiver.url}/hook.`);
      expect(await page.locator('#admin-deliveries-section').isVisible()).toBe(false);

      // Signing keys: rotating adds the next key, listed beside the one signing now.
      await page.getByRole('tab', { name: 'Signing keys' }).click();
      await expect.poll(() => page.locator('#admin-signing-keys li').filter({ hasText: 'Signing' }).count()).toBe(1);
      const rotation = acceptNextDialog(page);
      await page.getByRole('button', { name: 'Rotate: add the next signing key' }).click();
      expect(await rotation.question).toMatch(/^Add the next signing key\?/);
      await expect.poll(() => visit.text('#admin-rotate ~ .result')).toMatch(/^Added key \S+ \(generation \d+\): published now/);
      const kid = /^Added key (\S+)/.exec(await visit.text('#admin-rotate ~ .result'))?.[1] ?? '';
      const next = page.locator('#admin-signing-keys li').filter({ hasText: kid });
      expect(await next.locator('.badge').textContent()).toBe('Next');
      const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
      expect(jwks.keys.map((key) => key.kid)).toContain(kid);
      const purposeRotation = acceptNextDialog(page);
      await page.getByRole('button', { name: 'Rotate the key of signed image links' }).click();
      await purposeRotation.question;
      await expect.poll(() => visit.text('#admin-purpose-keys ~ .result')).toMatch(/^Added generation 2 for signed image links: in use from /);
      expect(await focusedName(page)).toBe('Rotate the key of signed image links');
      await visit.check('c6-console-keys');

      // An identity provider: added, changed, turned off, deleted.
      await page.getByRole('tab', { name: 'Identity providers' }).click();
      await expect.poll(() => page.locator('#admin-providers-empty').isVisible()).toBe(true);
      const provider = page.locator('#admin-provider-form');
      await provider.getByLabel('Id', { exact: true }).fill('corp-github');
      await provider.getByLabel('Kind').selectOption('github');
      await provider.getByLabel('Name shown').fill('Corp GitHub');
      await provider.getByLabel('Client id').fill('gh-client-id');
      await provider.getByLabel('Client secret').fill('gh-client-secret');
      await provider.getByRole('button', { name: 'Add provider' }).click();
      await expect
        .poll(() => visit.text('#admin-provider-form > .result'))
        .toBe('Added Corp GitHub (corp-github). The sign-in page offers it within a minute.');
      const providerRow = page.locator('#admin-providers-list li').filter({ hasText: 'corp-github' });
      expect(await providerRow.textContent()).toContain('secret kept');
      await providerRow.getByRole('button', { name: 'Edit Corp GitHub' }).click();
      expect(await focusedName(page)).toBe('Name shown');
      expect(await provider.getByLabel('Name shown').inputValue()).toBe('Corp GitHub');
      expect(await visit.text('#admin-provider-form-title')).toBe('Change Corp GitHub');
      expect(await provider.getByLabel('Client secret').inputValue()).toBe('');
      await provider.getByLabel('Name shown').fill('Corp GitHub SSO');
      await visit.check('c7-console-provider-editing');
      await provider.getByRole('button', { name: 'Save changes' }).click();
      await expect.poll(() => visit.text('#admin-provider-form > .result')).toBe('Saved Corp GitHub SSO. Every instance uses the change within a minute.');
      expect(await focusedName(page)).toBe('Edit Corp GitHub SSO');
      await providerRow.getByRole('button', { name: 'Turn off Corp GitHub SSO' }).click();
      await expect.poll(() => providerRow.locator('.badge').allTextContents()).toEqual(['Off']);
      const offered = (await (await fetch(`${server.url}/auth/providers`)).json()) as { providers: Array<{ id: string }> };
      expect(offered.providers.map((one) => one.id)).not.toContain('corp-github');
      const providerRemoval = acceptNextDialog(page);
      await providerRow.getByRole('button', { name: 'Delete Corp GitHub SSO' }).click();
      await providerRemoval.question;
      await expect.poll(() => visit.text('#admin-providers-list ~ .result')).toBe('Deleted Corp GitHub SSO.');
      expect(await page.locator('#admin-providers-list li').count()).toBe(0);

      // An OAuth client: registered (its secret shown once), changed, a new secret, deleted.
      await page.getByRole('tab', { name: 'OAuth clients' }).click();
      await expect.poll(() => page.locator('#admin-clients-empty').isVisible()).toBe(true);
      const clientForm = page.locator('#admin-client-form');
      await clientForm.getByLabel('Name').fill('Console app');
      await clientForm.getByLabel('Redirect URLs', { exact: true }).fill('http://127.0.0.1:9/callback');
      await clientForm.getByRole('button', { name: 'Register app' }).click();
      await expect.poll(() => visit.text('#admin-client-form > .result')).toMatch(/^Registered Console app \(client id [\w-]+\)\. Copy its secret above now/);
      const clientSecret = /\(shown only once\): (\S+)$/.exec(await visit.text('#admin-client-secret'))?.[1] ?? '';
      expect(clientSecret).toMatch(/^[\w-]{43}$/);
      const clientRow = page.locator('#admin-clients-list li').filter({ hasText: 'Console app' });
      await clientRow.getByRole('button', { name: 'Edit Console app' }).click();
      await expect.poll(() => visit.text('#admin-client-form-title')).toBe('Change Console app');
      expect(await focusedName(page)).toBe('Name');
      expect(await clientForm.getByLabel('Redirect URLs', { exact: true }).inputValue()).toBe('http://127.0.0.1:9/callback');
      await clientForm.getByLabel('Name').fill('Console app two');
      await clientForm.getByLabel('First-party: never asks people for consent').check();
      await visit.check('c8-console-client-editing');
      await clientForm.getByRole('button', { name: 'Save changes' }).click();
      await expect.poll(() => visit.text('#admin-client-form > .result')).toBe('Saved Console app two.');
      expect(await clientRow.locator('.badge').allTextContents()).toEqual(['Confidential', 'First-party']);
      const secretRotation = acceptNextDialog(page);
      await clientRow.getByRole('button', { name: 'New secret for Console app two' }).click();
      await secretRotation.question;
      await expect
        .poll(() => visit.text('#admin-clients-list ~ .result'))
        .toBe('Issued a new secret for Console app two: copy it below now. The old one no longer works.');
      expect(/\(shown only once\): (\S+)$/.exec(await visit.text('#admin-client-secret'))?.[1]).not.toBe(clientSecret);
      const clientRemoval = acceptNextDialog(page);
      await clientRow.getByRole('button', { name: 'Delete Console app two' }).click();
      await clientRemoval.question;
      await expect.poll(() => visit.text('#admin-clients-list ~ .result')).toBe('Deleted Console app two.');
      expect(await visit.text('#admin-client-secret')).toBe('');

      // An organization the person made: found, viewed with its members, deleted.
      const signIn = await fetch(`${server.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: account.username, password: account.password }),
      });
      const personToken = ((await signIn.json()) as { access_token: string }).access_token;
      const slug = `console-org-${Math.random().toString(36).slice(2, 8)}`;
      const made = await fetch(`${server.url}/orgs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${personToken}` },
        body: JSON.stringify({ name: 'Console Org', slug }),
      });
      expect(made.status).toBe(201);
      await page.getByRole('tab', { name: 'Organizations' }).click();
      const orgSearch = page.locator('#admin-org-search');
      await orgSearch.getByLabel('Name or slug contains').fill(slug);
      await orgSearch.getByRole('button', { name: 'Search' }).click();
      await expect.poll(() => visit.text('#admin-orgs-summary')).toBe('1 organization.');
      await page.getByRole('button', { name: 'View Console Org' }).click();
      await expect.poll(() => isFocused(page, '#admin-org-title')).toBe(true);
      expect(await visit.text('#admin-org-title')).toBe('Console Org');
      expect(await page.locator('#admin-org-members li').allTextContents()).toEqual([expect.stringContaining(account.username)]);
      expect(await visit.text('#admin-org-members li')).toContain('owner');
      await visit.check('c9-console-org-detail');
      const orgRemoval = acceptNextDialog(page);
      await page.getByRole('button', { name: 'Delete organization' }).click();
      expect(await orgRemoval.question).toMatch(/^Delete Console Org and everything it owns\?/);
      await expect.poll(() => visit.text('#admin-org-search > .result')).toBe("Deleted Console Org: its members' tokens for it stopped working.");
      expect(await page.locator('#admin-org-detail').isVisible()).toBe(false);
      const gone = await fetch(`${server.url}/orgs/${((await made.json()) as { id: string }).id}`, { headers: { authorization: `Bearer ${personToken}` } });
      expect(gone.status).toBe(404);
      visit.expectQuietConsole('the console');

      // The person again: signed in, no console; the admin API refuses them, and a token they forge is refused too.
      await logIn(person, account);
      await expect.poll(() => person.text('#whoami')).toBe(`Signed in as ${account.username}`);
      await person.settled();
      expect(await person.page.locator('#admin-card').isVisible()).toBe(false);
      const asThemselves = await person.page.evaluate(
        "import('/js/api.js').then((api) => api.send('/admin/users').then(() => 'allowed', (error) => `${error.status} ${error.code}`))",
      );
      expect(asThemselves).toBe('403 forbidden');
      const forged = await person.page.evaluate(`import('/js/state.js').then(async ({ state }) => {
        const [header, payload, signature] = state.accessToken.split('.');
        const claims = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/')));
        claims.roles = ['admin', 'user'];
        const forgedPayload = btoa(JSON.stringify(claims)).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
        const answer = await fetch('/admin/users', { headers: { authorization: 'Bearer ' + [header, forgedPayload, signature].join('.') } });
        return answer.status;
      })`);
      expect(forged).toBe(401);
      person.expectQuietConsole('the person refused by the admin API', [refused(403), refused(401)]);
      await person.close();
      await visit.close();
    } finally {
      await receiver.close();
      await server.stop();
    }
  }, 240_000);
}
