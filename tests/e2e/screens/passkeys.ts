// Passkeys with Chromium's virtual authenticator: added in Settings, signing in without a password, standing in for
// the code at the second step (one passkey button there), renamed, deleted, and every refusal said beside its button.
import { expect, it } from 'vitest';
import { confirmAddress, type Kit, logIn, logOut, openSettings, refused, register, Visit } from '../support/page-kit.js';
import { totpNow } from './two-factor.js';

export function passkeyScreens(kit: Kit): void {
  it('when a person adds a passkey, then it signs them in, stands in for the code, and can be renamed and deleted', async () => {
    const visit = await Visit.open(kit.browser, kit.server);
    const { page } = visit;
    const account = await register(visit);
    visit.answerSecondProofs(account);
    await confirmAddress(visit, account);
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
    const signedIn = () => expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${account.username}`);

    // Added from Settings (the first second factor: the emailed code is the second proof).
    await openSettings(visit);
    await page.locator('#passkey-form').getByLabel('Name').fill('Test laptop');
    await page.locator('#passkey-form').getByRole('button', { name: 'Add a passkey' }).click();
    await expect.poll(() => visit.text('#passkey-form > .result')).toBe('Passkey "Test laptop" added. You can now sign in with it.');
    expect(await visit.inView('#passkey-form > .result')).toBe(true);
    await expect.poll(() => visit.text('#passkeys li')).toMatch(/^Test laptop \(on one device, added .*, not used yet\)/);
    // The ways in say so too.
    expect(await visit.text('#sign-in-methods [data-method=passkeys]')).toBe('Passkeys1: Test laptop.');
    await expect.poll(() => visit.text('#security-events li:first-child')).toMatch(/^Passkey added · /);
    await visit.check('50-passkey-added', [refused(403)]);

    // Signed out, and back in with no username or password.
    await logOut(visit);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await signedIn();

    // Two-factor on; then the password's second step offers the passkey: one button, apart from the code field.
    await openSettings(visit);
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    await expect.poll(() => visit.text('#mfa-secret')).toMatch(/^[A-Z2-7]{32}$/);
    await page
      .locator('#mfa-enable')
      .getByLabel('Code')
      .fill(totpNow(await visit.text('#mfa-secret')));
    await page.locator('#mfa-enable').getByRole('button', { name: 'Turn on' }).click();
    await expect.poll(() => visit.text('#mfa-state')).toBe('Two-factor authentication is on.');
    await logOut(visit);
    await logIn(visit, account);
    const step = page.locator('#second-step-form');
    await expect.poll(() => step.isVisible()).toBe(true);
    const passkeyButtons = page.getByRole('button', { name: /passkey/i }).filter({ visible: true });
    expect(await passkeyButtons.count()).toBe(1);
    expect(await passkeyButtons.textContent()).toBe('Use a passkey instead');
    expect((await visit.box('#mfa-passkey')).top - (await visit.box('#second-step-form input[name=code]')).bottom).toBeGreaterThanOrEqual(8);
    await visit.check('51-second-step-with-passkey');
    await passkeyButtons.click();
    await signedIn();

    // Renamed, then deleted; the server forgets it, and the page says so when the device still offers it.
    await openSettings(visit);
    await expect.poll(() => page.locator('#passkeys li').count()).toBe(1);
    page.once('dialog', (dialog) => void dialog.accept('Work laptop'));
    await page.getByRole('button', { name: 'Rename Test laptop' }).click();
    await expect.poll(() => visit.text('#passkeys-section > .result')).toBe('Renamed to Work laptop.');
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Delete Work laptop' }).click();
    await expect
      .poll(() => visit.text('#passkeys-section > .result'))
      .toBe('Deleted the passkey Work laptop. Remove it from your device too, so it stops offering it.');
    expect(await page.locator('#passkeys li').count()).toBe(0);
    await expect.poll(() => visit.text('#security-events li:first-child')).toMatch(/^Passkey deleted · /);
    await visit.check('52-passkey-deleted');
    await logOut(visit);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await expect
      .poll(() => visit.text('#login-form > .result'))
      .toBe('That passkey is not registered here (it may have been deleted). Sign in with your password.');
    expect(await page.locator('#whoami').isVisible()).toBe(false);

    // An authenticator that refuses (cancelled, or a failed PIN or biometrics) is said in words beside the button too.
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await expect.poll(() => visit.text('#login-form > .result')).toBe('The passkey request was cancelled or timed out. Nothing was changed.');
    await visit.check('53-passkey-refused', [refused(401)]);
    await visit.close();
  });
}
