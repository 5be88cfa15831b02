// The account page: ending another session (its tab signed out), a new address and a new password, the list of every
// way in; deleting the account with its password (every tab signed out, no sign-in after); and the page used with
// the keyboard alone: signing up, in and out, opening Settings, changing the username, the focus in sight and where
// the person expects it at each step.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import {
  accessibilityViolations,
  confirmAddress,
  type Kit,
  logIn,
  logOut,
  openSettings,
  PASSWORD,
  refused,
  register,
  uniqueName,
  Visit,
  WIDTHS,
} from '../support/page-kit.js';

/** Another browser, for the second session: a user agent of its own, so its row is told apart. */
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0';

/** The little of the DOM read inside page.evaluate (the test program is compiled without DOM types). */
interface FocusedElement {
  id: string;
  tagName: string;
  textContent: string | null;
  labels?: ArrayLike<{ textContent: string | null }> | null;
  getAttribute(name: string): string | null;
  matches(selector: string): boolean;
  getBoundingClientRect(): { top: number; bottom: number; left: number; right: number; width: number; height: number };
}

/** Where the keyboard is: the element, its accessible words, and whether the person can see it is there. */
interface Focus {
  /** `tag#id`, or the tag alone. */
  element: string;
  /** Its label, aria-label, or text: what a person would call it. */
  name: string;
  /** Whether :focus-visible matches and draws an outline (not `none`, at least 2 px wide). */
  ringShown: boolean;
  /** Whether it is inside the window. */
  inView: boolean;
}

function focus(page: Page): Promise<Focus> {
  return page.evaluate(() => {
    const browser = globalThis as unknown as {
      document: { activeElement: FocusedElement | null };
      innerWidth: number;
      innerHeight: number;
      getComputedStyle(element: unknown): { outlineStyle: string; outlineWidth: string };
    };
    const element = browser.document.activeElement;
    if (!element) return { element: 'none', name: '', ringShown: false, inView: false };
    const style = browser.getComputedStyle(element);
    const box = element.getBoundingClientRect();
    const label = element.labels?.[0]?.textContent ?? element.getAttribute('aria-label') ?? element.textContent ?? '';
    return {
      element: `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}`,
      name: label.trim().replace(/\s+/g, ' '),
      ringShown: element.matches(':focus-visible') && style.outlineStyle !== 'none' && Number.parseFloat(style.outlineWidth) >= 2,
      inView: box.height > 0 && box.top >= -1 && box.bottom <= browser.innerHeight + 1 && box.left >= -1 && box.right <= browser.innerWidth + 1,
    };
  });
}

/** Presses `key` and answers where the focus went. */
async function press(page: Page, key: string): Promise<Focus> {
  await page.keyboard.press(key);
  return focus(page);
}

/** Tabs forward until the focus is on `target` (at most `limit` presses), every stop on the way in sight and ringed. */
async function tabTo(page: Page, target: (focus: Focus) => boolean, limit = 40): Promise<Focus[]> {
  const stops: Focus[] = [];
  for (let presses = 0; presses < limit; presses++) {
    const now = await press(page, 'Tab');
    stops.push(now);
    expect(now, `Tab stop ${presses + 1}: ${now.element} "${now.name}" is seen where it is`).toMatchObject({ ringShown: true, inView: true });
    if (target(now)) return stops;
  }
  throw new Error(`Tab never reached the target; the stops were:\n${stops.map((stop) => `${stop.element} "${stop.name}"`).join('\n')}`);
}

/** The rows of Settings › Ways you sign in, as a person reads them: what, then its state. */
function waysIn(visit: Visit): Promise<string[]> {
  return visit.page
    .locator('#sign-in-methods li')
    .evaluateAll((items) => items.map((item) => ((item as unknown as { innerText: string }).innerText ?? '').replace(/\s+/g, ' ').trim()));
}

export function accountScreens(kit: Kit): void {
  it('when a person ends another session, changes address and password, and reads their ways in, then each is said, and done where it matters', async () => {
    const visit = await Visit.open(kit.browser, kit.server, WIDTHS[0]);
    const { page } = visit;
    const account = await register(visit);
    await confirmAddress(visit, account);

    // A second session, in another browser that stays open on the page.
    const elsewhere = await kit.browser.newContext({ userAgent: FIREFOX, viewport: { width: 390, height: 844 } });
    const otherPage = await elsewhere.newPage();
    await otherPage.goto(kit.server.url);
    await otherPage.locator('#login-form').getByLabel('Username or email').fill(account.username);
    await otherPage.locator('#login-form').getByLabel('Password', { exact: true }).fill(account.password);
    await otherPage.locator('#login-form').getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => otherPage.locator('#whoami').textContent()).toBe(`Signed in as ${account.username}`);

    // Every way in, in one list: a password, a code by email, no passkey yet, two-factor off.
    await openSettings(visit);
    await expect
      .poll(() => waysIn(visit))
      .toEqual([
        'Password Set. Change it under Password above.',
        `A code by email A six-digit code sent to ${account.email} signs you in.`,
        'Passkeys None yet.',
        'Two-factor authentication Off: the first step alone signs you in.',
      ]);
    await expect.poll(() => page.locator('#sessions li').count()).toBe(2);
    await visit.check('a0-account-settings');

    // Ending the other session: said beside the list, and the other browser is signed out at its next request.
    const otherRow = page.locator('#sessions li').filter({ hasNot: page.locator('.badge') });
    await otherRow.getByRole('button', { name: /^End the session of Firefox 133/ }).click();
    await expect.poll(() => visit.text('#sessions-section > .result')).toMatch(/^Ended the session of Firefox 133.*: it is signed out\.$/);
    expect(await page.locator('#sessions li').count()).toBe(1);
    await otherPage.locator('#settings summary').click();
    await expect.poll(() => otherPage.locator('#login-form').isVisible()).toBe(true);
    expect(await otherPage.locator('#status').textContent()).toBe('Your session has ended. Please log in again.');
    await elsewhere.close();
    visit.expectQuietConsole('a1-session-ended');

    // A new address: a link goes to it; opened, it is the address, in Settings and in the ways in.
    const newEmail = `${uniqueName('moved')}@example.org`;
    const emailForm = page.locator('#email-change-form');
    await emailForm.getByLabel('New email').fill(newEmail);
    await emailForm.getByLabel('Current password').fill(account.password);
    await emailForm.getByRole('button', { name: 'Send a confirmation link' }).click();
    await expect
      .poll(() => visit.text('#email-change-form > .result'))
      .toMatch(new RegExp(`^A confirmation link for ${newEmail.replace(/\./g, '\\.')} will arrive`));
    await page.goto(await visit.linkFrom(newEmail, /^Confirm your email/));
    await expect.poll(() => visit.text('#status')).toBe(`Thank you: ${newEmail} is confirmed.`);
    await openSettings(visit);
    await expect.poll(() => visit.text('#email-current')).toBe(`Your address is ${newEmail} (confirmed).`);
    await expect.poll(() => visit.text('#sign-in-methods [data-method=email-code]')).toContain(newEmail);

    // A new password: said beside the form; the old one no longer signs in, the new one does.
    const newPassword = `${PASSWORD} harbour`;
    const passwordForm = page.locator('#password-form');
    await passwordForm.getByLabel('Current password').fill(account.password);
    await passwordForm.getByLabel('New password').fill(newPassword);
    await passwordForm.getByRole('button', { name: 'Change password' }).click();
    await expect.poll(() => visit.text('#password-form > .result')).toBe('Your password is changed. Every other session was signed out; this one goes on.');
    visit.expectQuietConsole('a2-address-and-password-changed');
    await logOut(visit);
    await logIn(visit, account);
    await expect.poll(() => visit.text('#login-form > .result')).toBe('The username, email or password is not correct.');
    await logIn(visit, { ...account, password: newPassword });
    await expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${account.username}`);
    visit.expectQuietConsole('the old password refused', [refused(401)]);
    await visit.close();
  });

  it('when a person deletes their account, then it takes their username and password, every tab is signed out and told, and nobody signs in to it again', async () => {
    const visit = await Visit.open(kit.browser, kit.server, WIDTHS[0]);
    const { page } = visit;
    const account = await register(visit);
    // A second tab of this browser, signed in with it.
    const secondTab = await visit.openTab();
    await expect.poll(() => secondTab.text('#whoami')).toBe(`Signed in as ${account.username}`);

    // Deleting: behind a button; the confirmation takes the username typed out and the password, and says a wrong one.
    await openSettings(visit);
    const open = page.getByRole('button', { name: 'Delete account…' });
    expect(await open.getAttribute('aria-expanded')).toBe('false');
    await open.click();
    const confirmation = page.locator('#delete-form');
    await expect.poll(() => confirmation.isVisible()).toBe(true);
    expect(await page.locator('#delete-open').isVisible()).toBe(false);
    expect((await focus(page)).name).toBe('Your username, typed to confirm');
    expect(await page.getByRole('form', { name: 'Confirm that you want your account deleted' }).count()).toBe(1);
    await confirmation.getByLabel('Your username, typed to confirm').fill('someone_else');
    await confirmation.getByLabel('Current password').fill(account.password);
    await confirmation.getByRole('button', { name: 'Delete my account' }).click();
    await expect.poll(() => visit.text('#delete-form > .result')).toBe(`That is not your username: type ${account.username} to confirm.`);
    await confirmation.getByLabel('Your username, typed to confirm').fill(account.username);
    await confirmation.getByLabel('Current password').fill('not the password at all');
    await confirmation.getByRole('button', { name: 'Delete my account' }).click();
    await expect.poll(() => visit.text('#delete-form > .result')).toBe('The password is not correct.');
    expect(await page.locator('#delete-form > .result').getAttribute('class')).toContain('error');
    await visit.check('a4-delete-refused', [refused(401)]);
    // Cancel closes it emptied, the focus back on the button that opened it.
    await confirmation.getByRole('button', { name: 'Cancel' }).click();
    expect(await confirmation.isVisible()).toBe(false);
    expect((await focus(page)).element).toBe('button#delete-open');
    await open.click();
    expect(await confirmation.getByLabel('Current password').inputValue()).toBe('');

    await confirmation.getByLabel('Your username, typed to confirm').fill(account.username);
    await confirmation.getByLabel('Current password').fill(account.password);
    await confirmation.getByRole('button', { name: 'Delete my account' }).click();
    await expect.poll(() => visit.text('#status')).toBe(`Your account ${account.username} is deleted, with everything in it. You are signed out.`);
    expect(await page.locator('#login-form').isVisible()).toBe(true);
    expect((await focus(page)).element).toBe('p#status');
    expect(await visit.everythingShown()).not.toContain(account.email);
    await visit.check('a5-account-deleted');

    // The other tab: signed out without a reload, and told why.
    await expect.poll(() => secondTab.page.locator('#login-form').isVisible()).toBe(true);
    await expect.poll(() => secondTab.text('#status')).toBe('Your account was deleted in another tab, with everything in it. You are signed out here too.');
    expect(await secondTab.page.locator('#whoami').isVisible()).toBe(false);
    await secondTab.check('a6-deleted-in-another-tab');

    // Nobody signs in to it any more, with either name.
    for (const username of [account.username, account.email]) {
      await logIn(visit, { ...account, username });
      await expect.poll(() => visit.text('#login-form > .result')).toBe('The username, email or password is not correct.');
    }
    await visit.check('a7-deleted-account-refused', [refused(401)]);
    await visit.close();
  });

  it('when a screen breaks a WCAG rule, then the check fails, naming the rule, the element and what to fix', async () => {
    const visit = await Visit.open(kit.browser, kit.server, WIDTHS[1]);
    expect(await accessibilityViolations(visit.page)).toEqual([]);
    // An image with no text, a button with no name, and grey on white too faint to read: what a careless edit adds.
    await visit.page.evaluate(() => {
      const { document } = globalThis as unknown as {
        document: { querySelector(selector: string): { insertAdjacentHTML(where: string, html: string): void } };
      };
      document
        .querySelector('#signed-out')
        .insertAdjacentHTML(
          'beforeend',
          '<img id="bad-image" src="/favicon.svg"><button id="bad-button" type="button"></button><p id="bad-text" style="color:#aaa;background:#fff">faint</p>',
        );
    });
    const found = await accessibilityViolations(visit.page);
    expect(found.join('\n')).toMatch(/^image-alt \(critical\): Images must have alternative text\n {4}at #bad-image\n {4}Fix any of the following: /m);
    expect(found.join('\n')).toMatch(/^button-name \(critical\): .*\n {4}at #bad-button\n/m);
    expect(found.join('\n')).toMatch(
      /^color-contrast \(serious\): .*\n {4}at #bad-text\n {4}Fix any of the following: Element has insufficient color contrast of 2\.3/m,
    );
    await expect(visit.check('x0-broken-on-purpose')).rejects.toThrow(
      /x0-broken-on-purpose: axe-core finds WCAG 2\.x A\/AA violations at 1280 px:\n {2}button-name[\s\S]*\n {2}image-alt/,
    );
    await visit.close();
  });

  it('when a person uses only the keyboard, then they sign up, sign out and in, open Settings and change their username, the focus seen and where they expect it', async () => {
    // The style sheet gives every control a ring of its own when the keyboard reaches it.
    const css = await readFile(path.resolve(import.meta.dirname, '../../../public/styles.css'), 'utf8');
    expect(css).toMatch(/button:focus-visible[^{]*\{[^}]*outline: 3px solid/);

    const visit = await Visit.open(kit.browser, kit.server, WIDTHS[0]);
    const { page } = visit;
    const username = uniqueName('keys');

    // Signing up: Tab to the "Create account" tab, Enter opens it, its fields follow in order, Space sends it.
    await tabTo(page, (stop) => stop.name === 'Create account' && stop.element === 'button#tab-register');
    expect(await press(page, 'Enter')).toMatchObject({ element: 'button#tab-register', ringShown: true });
    expect(await page.locator('#register-form').isVisible()).toBe(true);
    expect((await press(page, 'Tab')).name).toBe('Username');
    await page.keyboard.type(username);
    expect((await press(page, 'Tab')).name).toBe('Email');
    await page.keyboard.type(`${username}@example.com`);
    expect((await press(page, 'Tab')).name).toBe('Password');
    await page.keyboard.type(PASSWORD);
    // Shift+Tab goes back to what was typed before, and Tab forward again.
    expect((await press(page, 'Shift+Tab')).name).toBe('Email');
    expect((await press(page, 'Tab')).name).toBe('Password');
    expect(await press(page, 'Tab')).toMatchObject({ name: 'Create account', ringShown: true });
    await page.keyboard.press('Space');
    // The form is gone: the focus is on the greeting, which says what happened, in sight.
    await expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${username}`);
    await expect.poll(() => focus(page)).toMatchObject({ element: 'p#status', name: `Account created. Welcome, ${username}.`, ringShown: true, inView: true });
    await visit.check('k0-keyboard-signed-up');

    // Signing out: Shift+Tab from the greeting reaches "Log out" in the bar above; Enter; the focus on what happened.
    expect(await press(page, 'Shift+Tab')).toMatchObject({ element: 'button#logout', ringShown: true });
    await visit.settled();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#login-form').isVisible()).toBe(true);
    await expect.poll(() => focus(page)).toMatchObject({ element: 'p#status', name: 'You are logged out.', ringShown: true });

    // Signing in: the tabs (the arrow keys move between them too, round the end), then the fields; Enter in the
    // password field sends the form.
    await tabTo(page, (stop) => stop.element === 'button#tab-login');
    expect(await press(page, 'ArrowRight')).toMatchObject({ element: 'button#tab-register', ringShown: true });
    expect(await page.locator('#register-form').isVisible()).toBe(true);
    expect(await press(page, 'ArrowRight')).toMatchObject({ element: 'button#tab-login', ringShown: true });
    expect(await page.locator('#login-form').isVisible()).toBe(true);
    await tabTo(page, (stop) => stop.name === 'Username or email');
    await page.keyboard.type(username);
    expect((await press(page, 'Tab')).name).toBe('Password');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${username}`);
    await expect.poll(() => focus(page)).toMatchObject({ element: 'p#status', name: `Welcome, ${username}.` });
    await visit.settled();

    // Settings: Tab through the signed-in page to its summary (every stop ringed and in sight), Enter opens it.
    await tabTo(page, (stop) => stop.element === 'summary' && stop.name === 'Settings');
    await page.keyboard.press('Enter');
    await expect.poll(() => visit.text('#mfa-state')).toMatch(/^Two-factor authentication is (on|off)\.$/);
    expect(await page.locator('#settings').getAttribute('open')).not.toBeNull();
    await visit.settled();

    // The first field in Settings is the username; Enter in it saves, the focus stays, the result is said.
    expect(await press(page, 'Tab')).toMatchObject({ name: 'Username', ringShown: true });
    const renamed = uniqueName('keyed');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type(renamed);
    await page.keyboard.press('Enter');
    await expect.poll(() => visit.text('#profile-form > .result')).toBe(`Your username is now ${renamed}.`);
    expect((await focus(page)).name).toBe('Username');
    expect(await visit.text('#whoami')).toBe(`Signed in as ${renamed}`);

    // With the button instead: Tab to it, Space; the focus is still on it afterwards (a busy button gives none away).
    const again = uniqueName('spaced');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type(again);
    expect(await press(page, 'Tab')).toMatchObject({ element: 'button', name: 'Save username', ringShown: true });
    await page.keyboard.press('Space');
    await expect.poll(() => visit.text('#profile-form > .result')).toBe(`Your username is now ${again}.`);
    expect(await focus(page)).toMatchObject({ name: 'Save username', ringShown: true, inView: true });
    await visit.check('k1-keyboard-username-changed');

    // Escape closes the delete confirmation, and the focus returns to the button that opened it.
    await tabTo(page, (stop) => stop.element === 'button#delete-open', 80);
    await page.keyboard.press('Enter');
    expect((await focus(page)).name).toBe('Your username, typed to confirm');
    expect(await press(page, 'Escape')).toMatchObject({ element: 'button#delete-open', ringShown: true });
    expect(await page.locator('#delete-form').isVisible()).toBe(false);

    await logOut(visit);
    visit.expectQuietConsole('keyboard');
    await visit.close();
  });
}
