// The browser page driven in a real headless Chromium against the real server: every screen at a desktop's and a
// phone's width. One browser and one server for the whole run (a second only for the newcomer's budgets); the
// screen groups live in ./screens, one file each.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe } from 'vitest';
import { accountScreens } from './screens/account.js';
import { adminScreens } from './screens/admin.js';
import { defaultBudgetScreens } from './screens/default-budgets.js';
import { imageScreens } from './screens/images.js';
import { passkeyScreens } from './screens/passkeys.js';
import { providerScreens } from './screens/providers.js';
import { oauthProviderScreens } from './screens/oauth-provider.js';
import { organizationScreens } from './screens/organizations.js';
import { settingsScreens } from './screens/settings.js';
import { signedOutScreens } from './screens/signed-out.js';
import { tabScreens } from './screens/tabs.js';
import { twoFactorScreens } from './screens/two-factor.js';
import type { Kit } from './support/page-kit.js';
import { type RunningServer, startServer } from './support/server.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('the browser page', () => {
  // Filled in by beforeAll; the groups read it only inside their tests.
  const kit = {} as Kit;
  const servers: RunningServer[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH`);
    // The newcomer's server is needed by the last group only: it starts while the others run.
    const newcomer = startServer();
    newcomer.then((server) => servers.push(server)).catch(() => undefined);
    kit.newcomerServer = newcomer;
    const server = await startServer({ RATE_LIMIT_MAX: '1000' });
    servers.push(server);
    kit.server = server;
    kit.browser = await chromium.launch({
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
  }, 240_000);

  afterAll(async () => {
    await kit.browser?.close();
    await kit.newcomerServer?.catch(() => undefined);
    await Promise.all(servers.map((server) => server.stop()));
  }, 60_000);

  describe('signed out: register, sign in, email panels, reset, sign out', () => signedOutScreens(kit));
  describe('two tabs: one session, one refresh for both, signed out in both', () => tabScreens(kit));
  describe('two-factor: enrol in settings, the second step, back to sign-in', () => twoFactorScreens(kit));
  describe('settings: profile, email, password, API keys, sessions, activity', () => settingsScreens(kit));
  describe('images: upload, list, viewer, delete', () => imageScreens(kit));
  describe('passkeys: add, sign in, second step, rename, delete', () => passkeyScreens(kit));
  describe('outside providers: continue with, settings, an address that has an account', () => providerScreens(kit));
  describe('signing in to another app: the hand-over, two factors, consent, back to the app', () => oauthProviderScreens(kit));
  describe('organizations: create, act for one, invite by email, accept from the link, change a role, leave', () => organizationScreens(kit));
  describe('the account: sessions, address, password, the ways in, deleting it; the keyboard alone', () => accountScreens(kit));
  describe("the administrators' console: users, audit log, webhooks, keys, identity providers, OAuth clients, organizations", () => adminScreens(kit));
  describe('the budgets a newcomer gets', () => defaultBudgetScreens(kit));
});
