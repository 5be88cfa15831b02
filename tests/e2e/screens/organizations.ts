// Organizations in Chromium: an owner creates one (its slug suggested from the name), acts for it through the
// switcher, invites a second person by email; the emailed link, opened in another browser while signed out, is
// accepted once that person signs in; the owner changes their role; they leave. Refusals are said in words.
import { expect, it } from 'vitest';
import { type Kit, logIn, PASSWORD, refused, register, uniqueName, Visit } from '../support/page-kit.js';

/** The #invitation= link from the newest invitation emailed to `to`, as an address on this server. */
async function invitationLink(visit: Visit, to: string): Promise<string> {
  const fragment = /#invitation=[A-Za-z0-9_-]+/.exec(await visit.mail(to, /^You are invited to an organization/))?.[0];
  expect(fragment, 'the message carries an invitation link').toBeDefined();
  return `${visit.url}/${fragment}`;
}

export function organizationScreens(kit: Kit): void {
  it('when an owner creates an organization, acts for it and invites someone by email, then the link is accepted after signing in, the owner changes their role, and they leave', async () => {
    const owner = await Visit.open(kit.browser, kit.server, 1280);
    const { page } = owner;
    const ownerAccount = await register(owner);
    // The invited person has an account already, made elsewhere; nobody is signed in to it.
    const username = uniqueName('member');
    const member = { username, email: `${username}@example.com`, password: PASSWORD };
    const made = await fetch(`${kit.server.url}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(member) });
    expect(made.status).toBe(201);

    // No organization yet: no switcher, and the card says how to get one.
    await expect.poll(() => owner.text('#org-summary')).toMatch(/^You belong to no organization yet\./);
    expect(await page.locator('#org-switch').isVisible()).toBe(false);

    // Create one: the slug follows the name; a slug already taken is refused in words.
    const suffix = Math.random().toString(36).slice(2, 8);
    const orgName = `Ünicorn Labs ${suffix}`;
    const slug = `unicorn-labs-${suffix}`;
    const create = page.locator('#org-create-form');
    await create.getByLabel('Name').fill(orgName);
    expect(await create.getByLabel('Slug').inputValue()).toBe(slug);
    await create.getByRole('button', { name: 'Create organization' }).click();
    await expect
      .poll(() => owner.text('#org-create-form > .result'))
      .toBe(`Created ${orgName} (${slug}), with you as its owner. Choose it in “Acting for” at the top to act for it.`);
    expect(await create.getByLabel('Name').inputValue()).toBe('');
    await create.getByLabel('Name').fill('Copycat');
    await create.getByLabel('Slug').fill(slug);
    await create.getByRole('button', { name: 'Create organization' }).click();
    await expect.poll(() => owner.text('#org-create-form > .result')).toBe('Another organization has that slug already: choose another.');
    await create.getByLabel('Name').fill('');
    await create.getByLabel('Slug').fill('');
    await owner.check('90-org-created', [refused(409)]);

    // Act for it: the shell shows it chosen, the card and the gallery are the organization's.
    const switcher = page.getByLabel('Acting for');
    expect(await page.locator('#org-switcher option').allTextContents()).toEqual(['Personal', `${orgName} (owner)`]);
    await switcher.selectOption({ label: `${orgName} (owner)` });
    await expect.poll(() => owner.text('#status')).toBe(`You are now acting for ${orgName} as owner.`);
    expect(await owner.text('#org-switcher option:checked')).toBe(`${orgName} (owner)`);
    expect(await owner.text('#org-title')).toBe(orgName);
    expect(await owner.text('#gallery-title')).toBe(`Images of ${orgName}`);
    await expect.poll(() => page.locator('#members li').count()).toBe(1);
    expect(await owner.text('#members li')).toContain(ownerAccount.username);
    // Nobody to change or remove but yourself: no picker, no remove button.
    expect(await page.locator('#members select').count()).toBe(0);
    await owner.check('91-org-active');

    // Invite by email (member by default); a second invitation resent, then withdrawn.
    const invite = page.locator('#invite-form');
    expect(await invite.getByLabel('Role').inputValue()).toBe('member');
    await invite.getByLabel('Email').fill(member.email);
    await invite.getByRole('button', { name: 'Send invitation' }).click();
    await expect.poll(() => owner.text('#invite-form > .result')).toMatch(/^Invited .* as member\. The link will arrive within a minute/);
    expect(await owner.text('#invite-form > .result')).toContain(member.email);
    await expect.poll(() => page.locator('#invitations li').count()).toBe(1);
    expect(await owner.text('#invitations li')).toContain(member.email);
    const other = `${uniqueName('other')}@example.com`;
    await invite.getByLabel('Email').fill(other);
    await invite.getByRole('button', { name: 'Send invitation' }).click();
    await expect.poll(() => page.locator('#invitations li').count()).toBe(2);
    await page.getByRole('button', { name: `Resend the invitation to ${other}` }).click();
    await expect.poll(() => owner.text('#invite-section > .result')).toMatch(/^Sent the invitation to .* again: the earlier link no longer works/);
    await page.getByRole('button', { name: `Withdraw the invitation to ${other}` }).click();
    await expect.poll(() => owner.text('#invite-section > .result')).toBe(`Withdrew the invitation to ${other}: its link no longer works.`);
    expect(await page.locator('#invitations li').count()).toBe(1);
    await owner.check('92-org-invited');

    // The link opened by the wrong account (pasted into the owner's open tab): said so, and kept only if wanted.
    const link = await invitationLink(owner, member.email);
    await page.goto(link);
    await expect.poll(() => owner.text('#invitation-message')).toMatch(/^This invitation was sent to another email address than yours/);
    expect(await owner.text('#invitation-message')).toContain(ownerAccount.email);
    expect(new URL(page.url()).hash).toBe('');
    expect(await page.getByRole('button', { name: 'Log out and use the invited address' }).isVisible()).toBe(true);
    await owner.check('93-invitation-other-address', [refused(403)]);
    await page.getByRole('button', { name: 'Forget this invitation' }).click();
    expect(await page.locator('#invitation-banner').isVisible()).toBe(false);

    // The invited person opens the link in another browser, signed out: it waits, and is accepted once they sign in.
    const guest = await Visit.open(kit.browser, kit.server, 390);
    await guest.page.goto('about:blank');
    await guest.page.goto(link);
    await expect.poll(() => guest.page.locator('#invitation-waiting').isVisible()).toBe(true);
    expect(new URL(guest.page.url()).hash).toBe('');
    await guest.check('94-invitation-waiting');
    await logIn(guest, member);
    await expect.poll(() => guest.text('#status')).toBe(`You joined ${orgName} as member.`);
    await expect.poll(() => guest.page.locator('#org-switcher option').allTextContents()).toEqual(['Personal', `${orgName} (member)`]);
    expect(await guest.text('#org-switcher option:checked')).toBe('Personal');
    // Accepting proved the address: no banner asks to confirm it.
    await expect.poll(() => guest.page.locator('#verify-banner').isVisible()).toBe(false);
    await guest.check('95-invitation-accepted');

    // The owner (the page loaded again: refreshing keeps the organization) sees the member and makes them an admin.
    await page.reload();
    await expect.poll(() => page.locator('#members li').count()).toBe(2);
    expect(await owner.text('#org-switcher option:checked')).toBe(`${orgName} (owner)`);
    expect(await page.locator('#invitations li').count()).toBe(0);
    expect(await page.getByRole('button', { name: `Remove ${member.username}` }).isVisible()).toBe(true);
    await page.getByLabel(`Role of ${member.username}`).selectOption('admin');
    await expect.poll(() => owner.text('#members-section > .result')).toBe(`${member.username} is now admin.`);
    await owner.check('96-member-role-changed');

    // The last owner cannot leave: said in words.
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Leave organization' }).click();
    await expect.poll(() => owner.text('#leave-section > .result')).toBe(`You are the only owner of ${orgName}: make another member owner before you leave.`);
    owner.expectQuietConsole('the last owner', [refused(409)]);

    // The member acts for it (their list still said member: the page says what holds now), and leaves.
    await guest.page.getByLabel('Acting for').selectOption({ label: `${orgName} (member)` });
    await expect.poll(() => guest.text('#status')).toBe(`You are now acting for ${orgName} as admin.`);
    await expect.poll(() => guest.page.locator('#members li').count()).toBe(2);
    // An admin changes no owner, and the invite form is theirs.
    expect(await guest.page.locator('#members select').count()).toBe(0);
    expect(await guest.page.locator('#invite-section').isVisible()).toBe(true);
    await guest.check('97-member-acting');
    let asked = '';
    guest.page.once('dialog', (dialog) => {
      asked = dialog.message();
      void dialog.accept();
    });
    await guest.page.getByRole('button', { name: 'Leave organization' }).click();
    await expect.poll(() => guest.text('#status')).toBe(`You left ${orgName}.`);
    expect(asked).toMatch(new RegExp(`^Leave ${orgName}\\?`));
    expect(await guest.page.locator('#org-switch').isVisible()).toBe(false);
    expect(await guest.text('#org-title')).toBe('Organizations');
    expect(await guest.text('#gallery-title')).toBe('Your images');
    expect(await guest.page.locator('#org-detail').isVisible()).toBe(false);
    await guest.check('98-member-left');
    await guest.close();

    await page.reload();
    await expect.poll(() => owner.text('#org-title')).toBe(orgName);
    await expect.poll(() => page.locator('#members li').count()).toBe(1);
    owner.expectQuietConsole('organizations');
    await owner.close();
  }, 120_000);
}
