// Settings on a phone: profile, email change (its link pasted into the open tab), password change with the meter, API
// keys (the secret gone with its key), sessions (a long user agent cut at a word), the activity list kept current,
// each result beside its form, and nothing left for the next person after signing out.
import { expect, it } from 'vitest';
import { confirmAddress, type Kit, logIn, logOut, openSettings, PASSWORD, refused, register, uniqueName, Visit } from '../support/page-kit.js';

const LONG_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 ExampleCorpEnterpriseBrowser/42.7';

export function settingsScreens(kit: Kit): void {
  it('when a person changes each setting on a phone, then each result shows beside its form, the lists stay current, and signing out clears it all', async () => {
    const visit = await Visit.open(kit.browser, kit.server, 390);
    const { page } = visit;
    const account = await register(visit);
    await confirmAddress(visit, account);

    // A second session of the same account, from a browser with a long user agent.
    const other = await kit.browser.newContext({ userAgent: LONG_AGENT });
    const otherPage = await other.newPage();
    await otherPage.goto(kit.server.url);
    await otherPage.locator('#login-form').getByLabel('Username or email').fill(account.username);
    await otherPage.locator('#login-form').getByLabel('Password', { exact: true }).fill(account.password);
    await otherPage.locator('#login-form').getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => otherPage.locator('#whoami').textContent()).toBe(`Signed in as ${account.username}`);
    await other.close();

    await openSettings(visit);
    await expect.poll(() => page.locator('#sessions li').count()).toBe(2);
    await expect.poll(() => visit.text('#email-current')).toBe(`Your address is ${account.email} (confirmed).`);
    expect(await page.locator('#profile-form').getByLabel('Username').inputValue()).toBe(account.username);
    await visit.check('30-settings-open');

    // Sessions: this one marked; the other's agent cut at a word with an ellipsis, the whole of it in a tooltip.
    const current = page.locator('#sessions li').filter({ hasText: 'This browser' });
    expect(await current.getByRole('button').count()).toBe(0);
    const otherSession = page.locator('#sessions li').filter({ hasNot: page.locator('.badge') });
    expect(await otherSession.locator('.device').textContent()).toBe('Chrome 131 on Linux');
    expect(await otherSession.locator('.device').getAttribute('title')).toBe(LONG_AGENT);
    const agent = otherSession.locator('.agent');
    expect(await agent.getAttribute('title')).toBe(LONG_AGENT);
    const shown = (await agent.textContent()) ?? '';
    expect(shown.endsWith('…')).toBe(true);
    const kept = shown.slice(0, -1);
    expect(LONG_AGENT.startsWith(kept)).toBe(true);
    expect(LONG_AGENT[kept.length]).toMatch(/[\s,;(]/);
    await page.getByRole('button', { name: 'End the session of Chrome 131 on Linux from 127.0.0.1' }).click();
    await expect.poll(() => visit.text('#sessions-section > .result')).toBe('Ended the session of Chrome 131 on Linux: it is signed out.');
    expect(await visit.inView('#sessions-section > .result')).toBe(true);
    expect(await page.locator('#sessions li').count()).toBe(1);

    // Profile: a new username, said beside the form and in the header.
    const newName = uniqueName('renamed');
    await page.locator('#profile-form').getByLabel('Username').fill(newName);
    await page.locator('#profile-form').getByRole('button', { name: 'Save username' }).click();
    await expect.poll(() => visit.text('#profile-form > .result')).toBe(`Your username is now ${newName}.`);
    expect(await visit.inView('#profile-form > .result')).toBe(true);
    expect(await visit.text('#whoami')).toBe(`Signed in as ${newName}`);
    await visit.check('31-profile-changed');

    // Email: a wrong current password is refused beside the form; the right one sends a link and empties the form.
    const newEmail = `${newName}@example.org`;
    const emailForm = page.locator('#email-change-form');
    await emailForm.getByLabel('New email').fill(newEmail);
    await emailForm.getByLabel('Current password').fill('not my password at all');
    await emailForm.getByRole('button', { name: 'Send a confirmation link' }).click();
    await expect.poll(() => page.locator('#email-change-form > .result').getAttribute('class')).toContain('error');
    expect(await visit.inView('#email-change-form > .result')).toBe(true);
    await emailForm.getByLabel('Current password').fill(account.password);
    await expect.poll(() => visit.text('#email-change-form > .result')).toBe('');
    await emailForm.getByRole('button', { name: 'Send a confirmation link' }).click();
    await expect
      .poll(() => visit.text('#email-change-form > .result'))
      .toBe(
        `A confirmation link for ${newEmail} will arrive within a minute, unless that address has had too many messages lately. Your address stays ${account.email} until the link is opened.`,
      );
    expect(await emailForm.getByLabel('New email').inputValue()).toBe('');
    await visit.check('32-email-change-sent', [refused(401)]);

    // The link, pasted into this open tab: followed without a reload, once, and the address shown is the new one.
    const link = await visit.linkFrom(newEmail, /^Confirm your email/);
    await visit.markDocument();
    await page.goto(link);
    await expect.poll(() => visit.text('#status')).toBe(`Thank you: ${newEmail} is confirmed.`);
    expect(await visit.sameDocument()).toBe(true);
    expect(await visit.inView('#status')).toBe(true);
    await expect.poll(() => visit.text('#email-current')).toBe(`Your address is ${newEmail} (confirmed).`);
    await expect.poll(() => visit.text('#security-events li:first-child')).toMatch(/^Email address changed · /);
    await visit.check('33-email-confirmed-in-open-tab');
    // Opened again later in a new load of the page: the link is spent, and the address is confirmed: no red "not valid".
    await page.goto('about:blank');
    await page.goto(link);
    await expect.poll(() => visit.text('#status')).toBe(`Your address ${newEmail} is confirmed: this link was used already.`);
    expect(await page.locator('#status').getAttribute('class')).not.toContain('error');
    await openSettings(visit);
    visit.expectQuietConsole('used link', [refused(401)]);

    // Password: a weak one is refused beside the form, the refusal goes once typing starts, the meter stays.
    const passwordForm = page.locator('#password-form');
    await passwordForm.getByLabel('Current password').fill(account.password);
    await passwordForm.getByLabel('New password').fill('password123');
    await passwordForm.getByRole('button', { name: 'Change password' }).click();
    await expect.poll(() => visit.text('#password-form > .result')).toMatch(/common/);
    expect(await visit.inView('#password-form > .result')).toBe(true);
    await passwordForm.getByLabel('New password').fill(`${PASSWORD} lantern`);
    await expect.poll(() => visit.text('#password-form > .result')).toBe('');
    await expect.poll(() => visit.text('#change-password-hint')).toMatch(/^Very strong\./);
    await visit.check('34-password-meter', [refused(400)]);
    await passwordForm.getByRole('button', { name: 'Change password' }).click();
    await expect.poll(() => visit.text('#password-form > .result')).toBe('Your password is changed. Every other session was signed out; this one goes on.');
    await expect.poll(() => visit.text('#security-events li:first-child')).toMatch(/^Password changed · /);
    await visit.check('35-password-changed');

    // API keys: created (its secret shown once), then revoked: the secret goes with it, and the activity follows.
    const keyForm = page.locator('#key-form');
    await keyForm.getByLabel('Name').fill('laptop script');
    await keyForm.getByRole('button', { name: 'Create key' }).click();
    await expect.poll(() => visit.text('#new-key')).toMatch(/ak_[A-Za-z0-9]{12}_/);
    expect(await visit.text('#key-form > .result')).toBe('Created laptop script. Copy its secret below now: it is not shown again.');
    expect(await visit.inView('#key-form > .result')).toBe(true);
    await expect.poll(() => visit.text('#security-events li:first-child')).toMatch(/^API key created · /);
    await visit.check('36-api-key-created');
    await page.getByRole('button', { name: 'Revoke laptop script' }).click();
    await expect.poll(() => visit.text('#keys-section > .result')).toBe('Revoked laptop script: it no longer works.');
    expect(await page.locator('#new-key').isVisible()).toBe(false);
    expect(await visit.text('#new-key')).toBe('');
    expect(await visit.text('#key-form > .result')).toBe('');
    await expect.poll(() => visit.text('#security-events li:first-child')).toMatch(/^API key revoked · /);
    await visit.check('37-api-key-revoked');

    // Leaving Settings takes a new secret off the screen too.
    await keyForm.getByLabel('Name').fill('second script');
    await keyForm.getByRole('button', { name: 'Create key' }).click();
    await expect.poll(() => visit.text('#new-key')).toMatch(/ak_/);
    await page.locator('#settings summary').click();
    await page.locator('#settings summary').click();
    expect(await page.locator('#new-key').isVisible()).toBe(false);
    expect(await visit.text('#new-key')).toBe('');

    // Signing out: Settings closed and emptied; the next person to sign in here sees nothing of this one.
    await logOut(visit);
    expect(await page.locator('#settings').getAttribute('open')).toBeNull();
    const leftover = await visit.everythingShown();
    for (const trace of [newName, newEmail, 'second script', 'ak_']) expect(leftover).not.toContain(trace);
    const next = await register(visit);
    await openSettings(visit);
    await expect.poll(() => page.locator('#sessions li').count()).toBe(1);
    expect(await page.locator('#keys li').count()).toBe(0);
    expect(await page.locator('#profile-form').getByLabel('Username').inputValue()).toBe(next.username);
    expect(await visit.everythingShown()).not.toContain(newName);
    await visit.check('38-next-person-settings');
    await logOut(visit);
    await logIn(visit, { ...account, username: newName, password: `${PASSWORD} lantern` });
    await expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${newName}`);
    visit.expectQuietConsole('settings');
    await visit.close();
  });
}
