// Two-factor: turning it on in Settings (QR code, the second proof, recovery codes), then the sign-in's second step:
// spaced, with a way back, refusing a wrong code beside the field, and taking a recovery code.
import { Secret, TOTP } from 'otpauth';
import { expect, it } from 'vitest';
import { confirmAddress, type Kit, logIn, logOut, openSettings, refused, register, Visit } from '../support/page-kit.js';

/** The code an authenticator app shows now for `secret` (RFC 6238: SHA-1, six digits, 30-second steps). */
export function totpNow(secret: string): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate();
}

export function twoFactorScreens(kit: Kit): void {
  it('when a person turns two-factor on and signs in again, then the second step is spaced, can be left, and takes a recovery code', async () => {
    const visit = await Visit.open(kit.browser, kit.server, 390);
    const { page } = visit;
    const account = await register(visit);
    visit.answerSecondProofs(account);
    await confirmAddress(visit, account);
    await openSettings(visit);

    // Set up: adding a first second factor asks for a second proof (the emailed code, answered above).
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    await expect.poll(() => visit.text('#mfa-secret')).toMatch(/^[A-Z2-7]{32}$/);
    await expect.poll(() => visit.prop('#mfa-qr', 'naturalWidth')).toBeGreaterThan(100);
    await visit.check('20-two-factor-setup', [refused(403)]);
    const secret = await visit.text('#mfa-secret');

    // A wrong code is refused beside the form; the right one turns it on, with recovery codes and the activity updated.
    const enable = page.locator('#mfa-enable');
    await enable.getByLabel('Code').fill(totpNow(secret) === '000000' ? '111111' : '000000');
    await enable.getByRole('button', { name: 'Turn on' }).click();
    await expect.poll(() => visit.text('#mfa-enable > .result')).not.toBe('');
    expect(await page.locator('#mfa-enable > .result').getAttribute('class')).toContain('error');
    expect(await visit.inView('#mfa-enable > .result')).toBe(true);
    await enable.getByLabel('Code').fill(totpNow(secret));
    await expect.poll(() => visit.text('#mfa-enable > .result')).toBe('');
    await enable.getByRole('button', { name: 'Turn on' }).click();
    await expect.poll(() => visit.text('#mfa-section > .result')).toBe('Turned on. Keep the recovery codes below somewhere safe: each works once.');
    expect(await visit.inView('#mfa-section > .result')).toBe(true);
    const recoveryCodes = (await visit.text('#mfa-codes')).split('\n').filter(Boolean);
    expect(recoveryCodes.length).toBeGreaterThanOrEqual(8);
    await expect.poll(() => visit.text('#security-events li:first-child')).toMatch(/^Two-factor turned on · /);
    expect(await visit.text('#sign-in-methods [data-method=two-factor]')).toBe(
      'Two-factor authenticationOn: after the first step, a code from your authenticator app or a recovery code.',
    );
    await visit.check('21-two-factor-on', [refused(401), refused(400)]);

    // Signing out leaves nothing of Settings behind: closed, no recovery codes, no secret.
    await logOut(visit);
    expect(await page.locator('#settings').getAttribute('open')).toBeNull();
    expect(await visit.text('#mfa-codes')).toBe('');
    expect(await visit.text('#mfa-secret')).toBe('');
    expect(await visit.everythingShown()).not.toContain(account.username);
    await visit.check('22-signed-out-after-settings');

    // The second step: its own form, no second passkey button (this account has none), spaced, with a way back.
    await logIn(visit, account);
    const step = page.locator('#second-step-form');
    await expect.poll(() => step.isVisible()).toBe(true);
    expect(await page.locator('#login-panel').isVisible()).toBe(false);
    expect(await page.locator('#auth-tabs').isVisible()).toBe(false);
    expect(
      await page
        .getByRole('button', { name: /passkey/i })
        .filter({ visible: true })
        .count(),
    ).toBe(0);
    expect((await visit.box('#second-step-form .actions')).top - (await visit.box('#second-step-form input[name=code]')).bottom).toBeGreaterThanOrEqual(8);
    await visit.check('23-second-step');

    await step.getByRole('button', { name: 'Back to sign-in' }).click();
    await expect.poll(() => page.locator('#login-form').isVisible()).toBe(true);
    expect(await step.isVisible()).toBe(false);
    expect(await page.getByRole('tab', { name: 'Log in' }).getAttribute('aria-selected')).toBe('true');
    await visit.check('24-back-to-sign-in');

    // Again: a wrong code is said beside the field; a recovery code lets the person in.
    await logIn(visit, account);
    await expect.poll(() => step.isVisible()).toBe(true);
    await step.getByLabel(/Code from your authenticator app/).fill('000000');
    await step.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => visit.text('#second-step-form > .result')).not.toBe('');
    expect(await visit.inView('#second-step-form > .result')).toBe(true);
    await visit.check('25-second-step-wrong-code', [refused(401)]);
    await step.getByLabel(/Code from your authenticator app/).fill(recoveryCodes[0] ?? '');
    await expect.poll(() => visit.text('#second-step-form > .result')).toBe('');
    await step.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${account.username}`);
    expect(await step.isVisible()).toBe(false);
    visit.expectQuietConsole('second step');
    await visit.close();
  });
}
