// Signing in with an outside provider through the page, in Chromium: "Continue with …", the way back signed in,
// Settings › Ways you sign in (no password of its own, link, unlink, the last way in kept), and an address that has
// an account.
import { expect, it } from 'vitest';
import { startOidcPeer } from '../../support/oidc-peer.js';
import { personChoiceHeader } from '../../support/provider-driver.js';
import { confirmAddress, type Kit, logOut, openSettings, refused, register, uniqueName, Visit } from '../support/page-kit.js';
import { startServer } from '../support/server.js';

const SECRET = 'e2e-corp-client-secret-0123456789abcdef';

export function providerScreens(kit: Kit): void {
  it('when a person continues with a provider, then they come back signed in, see the link in Settings, cannot unlink the last way in, and an address with an account is sent to sign in', async () => {
    const peer = await startOidcPeer();
    const server = await startServer({
      RATE_LIMIT_MAX: '1000',
      AUTH_PROVIDERS: 'corp',
      AUTH_PROVIDER_CORP_NAME: 'Corp',
      AUTH_PROVIDER_CORP_ISSUER: peer.issuer,
      AUTH_PROVIDER_CORP_CLIENT_ID: 'e2e',
      AUTH_PROVIDER_CORP_CLIENT_SECRET: SECRET,
    });
    peer.addClient({
      clientId: 'e2e',
      clientSecret: SECRET,
      redirectUris: [`${server.url}/auth/providers/corp/callback`],
      tokenEndpointAuthMethod: 'client_secret_post',
    });
    try {
      const visit = await Visit.open(kit.browser, server, 390);
      const { page } = visit;
      const handle = uniqueName('grace');
      peer.setUser({ sub: handle, email: `${handle}@corp.example`, email_verified: true, name: 'Grace' });
      await page.setExtraHTTPHeaders({ [personChoiceHeader]: `sign-in ${handle}` });

      const button = page.getByRole('link', { name: 'Continue with Corp' });
      await expect.poll(() => button.isVisible()).toBe(true);
      await visit.check('70-providers-offered');
      await button.click();
      await expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${handle}`);
      // The single-use code left the address bar and the history.
      expect(new URL(page.url()).hash).toBe('');

      await openSettings(visit);
      const identities = page.locator('#sign-in-methods li[data-method=provider]');
      await expect.poll(() => identities.count()).toBe(1);
      expect(await identities.first().textContent()).toContain(`CorpAs ${handle}@corp.example; linked `);
      // No password of its own: the ways in say so, and deleting the account (which needs one) says how to set it.
      await expect.poll(() => visit.text('#sign-in-methods li[data-method=password]')).toMatch(/^PasswordNone yet: you came in through another provider\./);
      expect(await page.locator('#delete-no-password').isVisible()).toBe(true);
      expect(await page.getByRole('button', { name: 'Delete account…' }).isDisabled()).toBe(true);
      await page.getByRole('button', { name: 'Unlink Corp' }).click();
      await expect.poll(() => visit.text('#identities-section > .result')).toMatch(/^This is the last way into the account/);
      expect(await visit.inView('#identities-section > .result')).toBe(true);
      await visit.check('71-providers-settings', [refused(409)]);

      await logOut(visit);
      await visit.close();

      // A password account links Corp from Settings once its address is confirmed, and comes back told so.
      const linker = await Visit.open(kit.browser, server, 1280);
      const linkerAccount = await register(linker);
      await confirmAddress(linker, linkerAccount);
      const linkedSub = uniqueName('linked');
      peer.setUser({ sub: linkedSub, email: `${linkedSub}@corp.example`, email_verified: true });
      await linker.page.setExtraHTTPHeaders({ [personChoiceHeader]: `sign-in ${linkedSub}` });
      await openSettings(linker);
      await linker.page.getByRole('button', { name: 'Link Corp' }).click();
      await expect.poll(() => linker.text('#status')).toBe('Corp is linked: you can sign in with it from now on.');
      await openSettings(linker);
      await expect.poll(() => linker.page.locator('#sign-in-methods li[data-method=provider]').count()).toBe(1);
      await linker.check('73-providers-linked');
      await linker.close();

      // Someone with a password account here, whose address the provider also vouches for: not signed in, told why.
      // (A browser of its own: the provider remembers who signed in there, as a real one does.)
      const other = await Visit.open(kit.browser, server, 1280);
      const owner = await register(other);
      await logOut(other);
      const twin = uniqueName('twin');
      peer.setUser({ sub: twin, email: owner.email, email_verified: true });
      await other.page.setExtraHTTPHeaders({ [personChoiceHeader]: `sign-in ${twin}` });
      await other.page.getByRole('link', { name: 'Continue with Corp' }).click();
      await expect.poll(() => other.text('#status')).toMatch(/^An account with this email address exists\. Sign in to it/);
      expect(await other.page.locator('#login-form').isVisible()).toBe(true);
      await other.check('72-providers-address-taken');
      await other.close();
    } finally {
      await server.stop();
      await peer.close();
    }
  });
}
