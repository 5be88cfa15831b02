// Signed out: the sign-in and register forms (spacing, the strength meter, stale errors), the emailed code, the
// forgotten password with its meter, a confirmation link opened while signed out, and what signing out says.
import { expect, it } from 'vitest';
import { type Kit, logIn, logOut, PASSWORD, refused, register, Visit } from '../support/page-kit.js';

/** The vertical space between the bottom of one element and the top of the next, in CSS pixels. */
async function gapBetween(visit: Visit, above: string, below: string): Promise<number> {
  return (await visit.box(below)).top - (await visit.box(above)).bottom;
}

export function signedOutScreens(kit: Kit): void {
  it('when a person opens the page, then the favicon loads, the links sit apart from the forms, and registering shows the meter and no stale error', async () => {
    const visit = await Visit.open(kit.browser, kit.server, 390);
    const { page } = visit;

    // The favicon is linked and served (a missing one would be a 404 in the checks below).
    expect(await page.locator('link[rel=icon]').getAttribute('href')).toBe('/favicon.svg');
    const favicon = await page.evaluate(async () => {
      const answer = await fetch('/favicon.svg');
      return { status: answer.status, type: answer.headers.get('Content-Type') };
    });
    expect(favicon).toEqual({ status: 200, type: expect.stringMatching(/^image\/svg\+xml/) });

    // Sign-in: password, a passkey button, and the two email links well below the form rather than jammed into it.
    await expect.poll(() => page.getByRole('button', { name: 'Sign in with a passkey' }).isVisible()).toBe(true);
    expect(await gapBetween(visit, '#login-form', '.links')).toBeGreaterThanOrEqual(12);
    await visit.check('01-sign-in');

    // Register: the links belong to the login tab, so nothing sits on top of the Username label.
    await page.getByRole('tab', { name: 'Create account' }).click();
    expect(await page.locator('.links').isVisible()).toBe(false);
    expect(await gapBetween(visit, '#auth-tabs', '#register-form')).toBeGreaterThanOrEqual(12);
    const form = page.locator('#register-form');
    const username = `e2e_${Date.now().toString(36)}`;
    await form.getByLabel('Username').fill(username);
    await form.getByLabel('Email').fill(`${username}@example.com`);
    await form.getByLabel('Password', { exact: true }).fill('password123');
    await expect.poll(() => visit.text('#register-password-hint')).toMatch(/^Very weak\. .*common/i);
    await form.getByRole('button', { name: 'Create account' }).click();
    // The server's reason, beside the form and on screen on a phone.
    const result = '#register-form > .result';
    await expect.poll(() => visit.text(result)).toMatch(/lists of common and leaked passwords/);
    expect(await page.locator(result).getAttribute('class')).toContain('error');
    expect(await visit.inView(result)).toBe(true);
    await visit.check('02-register-refused', [refused(400)]);

    // A better password: the stale refusal goes as soon as typing starts, and the meter has the last word.
    await form.getByLabel('Password', { exact: true }).fill('tulip canyon ember quartz lantern');
    await expect.poll(() => visit.text(result)).toBe('');
    await expect.poll(() => visit.text('#register-password-hint')).toMatch(/^Very strong\./);
    await visit.check('03-register-strong');
    await form.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${username}`);
    expect(await visit.text('#status')).toBe(`Account created. Welcome, ${username}.`);
    await visit.check('04-signed-in-new');

    // Signing out says so only once the server has ended the session.
    await logOut(visit);
    await expect.poll(() => visit.text('#status')).toBe('You are logged out.');
    expect(await page.locator('#register-form').isVisible()).toBe(false);
    await visit.check('05-logged-out');
    await visit.close();
  });

  it('when the server does not end the session, then the page does not say "logged out", and says exactly what happened', async () => {
    const visit = await Visit.open(kit.browser, kit.server);
    const { page } = visit;
    const account = await register(visit);

    // 503: the server did not end the session, so the person is still signed in and is told so.
    await page.route('**/logout', (route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'service_unavailable', reason: 'shutting_down', message: 'The server is stopping.' } }),
      }),
    );
    await page.getByRole('button', { name: 'Log out' }).click();
    await expect.poll(() => visit.text('#status')).toBe('The session could not be ended on the server, so you are still signed in: The server is stopping.');
    expect(await visit.text('#whoami')).toBe(`Signed in as ${account.username}`);
    expect(await page.locator('#signed-in').isVisible()).toBe(true);
    await visit.check('06-logout-refused', [refused(503)]);

    // 401, and the refresh that would tell cannot reach the server: the session may well be alive, so nothing ends.
    const expired = { error: { code: 'invalid_token', reason: 'access_token_expired', message: 'The access token has expired.' } };
    await page.route('**/logout', (route) => route.fulfill({ status: 401, json: expired }));
    await page.route('**/refresh', (route) => route.abort());
    await page.getByRole('button', { name: 'Log out' }).click();
    await expect.poll(() => visit.text('#status')).toMatch(/^The session could not be ended on the server, so you are still signed in/);
    expect(await page.locator('#signed-in').isVisible()).toBe(true);
    visit.expectQuietConsole('logout unresolved', [refused(401), /ERR_FAILED/]);

    // The real server ends it: only now "logged out".
    await page.unroute('**/logout');
    await page.unroute('**/refresh');
    await logOut(visit);
    await expect.poll(() => visit.text('#status')).toBe('You are logged out.');
    visit.expectQuietConsole('logout');

    // 401, and the server refuses the refresh too: the session is over there, and the page says exactly that.
    await logIn(visit, account);
    await expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${account.username}`);
    const revoked = { error: { code: 'invalid_token', reason: 'session_revoked', message: 'The session was ended.' } };
    await page.route('**/logout', (route) => route.fulfill({ status: 401, json: expired }));
    await page.route('**/refresh', (route) => route.fulfill({ status: 401, json: revoked }));
    await page.getByRole('button', { name: 'Log out' }).click();
    await expect.poll(() => visit.text('#status')).toBe('Your session had already ended on the server. You are signed out on this page too.');
    expect(await page.locator('#login-form').isVisible()).toBe(true);
    await visit.check('06b-logout-already-ended', [refused(401)]);
    await visit.close();
  });

  it('when a person signs in with an emailed code and resets a forgotten password, then each panel closes once sent and the new password has a meter', async () => {
    const visit = await Visit.open(kit.browser, kit.server, 390);
    const { page } = visit;
    const account = await register(visit);
    await logOut(visit);

    // Email me a code: the panel opens, and closes once sent; the code form takes its place.
    await page.getByRole('button', { name: 'Email me a sign-in code' }).click();
    await page.locator('#email-form').getByLabel('Email').fill(account.email);
    await visit.check('07-email-code-panel');
    await page.locator('#email-form').getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => visit.text('#links-result')).toMatch(/^If a code can be sent, it will arrive within a minute/);
    expect(await page.locator('#email-form').isVisible()).toBe(false);
    expect(await visit.inView('#links-result')).toBe(true);
    const code = /^\s+(\d{6})$/m.exec(await visit.mail(account.email, /sign-in code/))?.[1] ?? '';
    await page.locator('#code-form').getByLabel('The 6-digit code from the email').fill(code);
    await visit.check('08-email-code-form');
    await page.locator('#code-form').getByRole('button', { name: 'Sign in with the code' }).click();
    await expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${account.username}`);
    await logOut(visit);
    expect(await page.locator('#code-form').isVisible()).toBe(false);

    // Forgot the password: the panel closes once sent, with the answer where it was.
    await page.getByRole('button', { name: 'Forgot your password?' }).click();
    await page.locator('#email-form').getByLabel('Email').fill(account.email);
    await page.locator('#email-form').getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => visit.text('#links-result')).toMatch(/^If that address belongs to an account, a link to reset its password will arrive/);
    expect(await page.locator('#email-form').isVisible()).toBe(false);
    await visit.check('09-forgot-sent');

    // The link, opened in a new load of the page: the new-password form with the same meter as registering.
    const link = await visit.linkFrom(account.email, /^Reset your/);
    await page.goto('about:blank');
    await page.goto(link);
    const reset = page.locator('#reset-form');
    await expect.poll(() => reset.isVisible()).toBe(true);
    expect(await page.locator('#auth-tabs').isVisible()).toBe(false);
    expect(page.url()).not.toContain('#');
    await reset.getByLabel('New password').fill('password');
    await expect.poll(() => visit.text('#reset-password-hint')).toMatch(/^Very weak\./);
    await reset.getByRole('button', { name: 'Set the new password' }).click();
    await expect.poll(() => visit.text('#reset-form > .result')).toMatch(/common/);
    await visit.check('10-reset-weak', [refused(400)]);
    const newPassword = `${PASSWORD} lantern`;
    await reset.getByLabel('New password').fill(newPassword);
    await expect.poll(() => visit.text('#reset-form > .result')).toBe('');
    await expect.poll(() => visit.text('#reset-password-hint')).toMatch(/^Very strong\./);
    await visit.check('11-reset-strong');
    await reset.getByRole('button', { name: 'Set the new password' }).click();
    await expect
      .poll(() => visit.text('#login-form > .result'))
      .toBe('Your password is changed, and every session was signed out. Log in with the new password.');
    await logIn(visit, { ...account, password: newPassword });
    await expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${account.username}`);
    visit.expectQuietConsole('reset');
    await visit.close();
  });

  it('when a confirmation link is opened signed out, pasted again, and reloaded once used, then the page says what is true each time', async () => {
    const visit = await Visit.open(kit.browser, kit.server);
    const { page } = visit;
    const account = await register(visit);
    await logOut(visit);
    const link = await visit.linkFrom(account.email, /^Confirm your email/);

    // Pasted into the tab already open (only the fragment changes, so the page is not reloaded).
    await visit.markDocument();
    await page.goto(link);
    await expect.poll(() => visit.text('#status')).toBe(`Thank you: ${account.email} is confirmed.`);
    expect(await visit.sameDocument()).toBe(true);
    expect(page.url()).not.toContain('#');
    await visit.check('12-link-confirmed-signed-out');

    // The same link again in the same tab: said again, not spent twice.
    await page.goto(link);
    await expect.poll(() => visit.text('#status')).toBe(`Thank you: ${account.email} is confirmed.`);

    // A new load with the used link, signed out: the page cannot know the account, so it says only what is known.
    await page.goto('about:blank');
    await page.goto(link);
    await expect.poll(() => visit.text('#status')).toMatch(/^This confirmation link is no longer valid: it was used already, or it expired\. Log in/);
    await visit.check('13-link-used-signed-out', [refused(401)]);
    await visit.close();
  });
}
