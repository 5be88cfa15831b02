// The budgets a newcomer gets (5 a minute per group): a visit as a person makes it never meets a 429, even with the
// lists the page reads again after each change.
import { expect, it } from 'vitest';
import { png } from '../../support/images.js';
import { confirmAddress, type Kit, openSettings, register, Visit } from '../support/page-kit.js';

export function defaultBudgetScreens(kit: Kit): void {
  it('when a person uses the page normally under the default budgets, then no request meets a 429', async () => {
    const visit = await Visit.open(kit.browser, await kit.newcomerServer);
    const { page } = visit;
    const tooMany: string[] = [];
    page.on('response', (response) => {
      if (response.status() === 429) tooMany.push(`${response.request().method()} ${new URL(response.url()).pathname}`);
    });
    const account = await register(visit);

    // The confirmation link (a key needs it), a reload, two uploads, then Settings: an API key, revoked again.
    await confirmAddress(visit, account);
    await page.reload();
    await expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${account.username}`);
    for (const name of ['first.png', 'second.png']) {
      await page.locator('#file').setInputFiles({ name, mimeType: 'image/png', buffer: png() });
      await page.locator('#upload-form').getByRole('button', { name: 'Upload' }).click();
      await expect.poll(() => visit.text('#upload-form > .result')).toBe(`Uploaded ${name}.`);
    }
    await expect.poll(() => page.locator('#gallery li').count()).toBe(2);
    await expect.poll(() => visit.text('#upload-limit')).toBe(', at most 5.0 MB');
    await openSettings(visit);
    expect(await visit.text('#mfa-state')).toBe('Two-factor authentication is off.');
    await page.locator('#key-form').getByLabel('Name').fill('laptop script');
    await page.locator('#key-form').getByRole('button', { name: 'Create key' }).click();
    await expect.poll(() => page.locator('#keys li').count()).toBe(1);
    await expect.poll(() => visit.text('#security-events li:first-child')).toMatch(/^API key created · /);
    await page.getByRole('button', { name: 'Revoke laptop script' }).click();
    await expect.poll(() => page.locator('#keys li').count()).toBe(0);
    await expect.poll(() => visit.text('#security-events li:first-child')).toMatch(/^API key revoked · /);
    await visit.check('60-newcomer-budgets');

    expect(tooMany).toEqual([]);
    await visit.close();
  });
}
