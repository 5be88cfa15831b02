import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, isProviderSetting, loadConfig, SETTINGS } from '../src/core/config.js';

const STRONG = 'k3Jx9vQz2Lw8Rt5Yp1Nc7Hb4Fd6Gs0Ma';
const STRONG_KEK = 'Vq8nR2wLz5Tx1Kb7Hc4Md9Pf3Gs6Jy0Ae';
/** Production with a good key-encryption key, so each case is about the JWT secret alone. */
const PRODUCTION = { NODE_ENV: 'production', KEY_ENCRYPTION_KEY: STRONG_KEK, PUBLIC_URL: 'https://auth.example.com' };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('configuration', () => {
  it('when nothing is set, then the embedded defaults apply', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 3000, dataDir: './.data', trustProxy: false, migrateOnStart: true });
    expect(config.databaseUrl).toBeUndefined();
    expect(config.redisUrl).toBeUndefined();
  });

  it('when Redis is named by sentinels or by cluster nodes, then the target says which, and two at once are refused', () => {
    expect(loadConfig({ REDIS_SENTINELS: '10.0.0.5:26379, [::1]:26380', REDIS_SENTINEL_NAME: 'auth', REDIS_PASSWORD: 'p' }).redis).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.5', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'auth',
      password: 'p',
      sentinelPassword: undefined,
    });
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'redis-a:7000,redis-b:7001' }).redis).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'redis-a', port: 7000 },
        { host: 'redis-b', port: 7001 },
      ],
      password: undefined,
    });
    expect(loadConfig({ REDIS_URL: 'redis://cache:6379' }).redis).toEqual({ kind: 'url', url: 'redis://cache:6379' });
    expect(problemsOf({ REDIS_URL: 'redis://cache:6379', REDIS_CLUSTER_NODES: 'a:1' })).toEqual([
      'REDIS_URL, REDIS_CLUSTER_NODES: set one of them (one Redis deployment)',
    ]);
    expect(problemsOf({ REDIS_SENTINELS: 'sentinel-without-port' })).toEqual(['REDIS_SENTINELS: sentinel-without-port is not host:port']);
    expect(problemsOf({ REDIS_CLUSTER_NODES: 'a:70000' })).toEqual(['REDIS_CLUSTER_NODES: a:70000 is not host:port']);
  });

  it('when production has no JWT_SECRET, then startup is refused', () => {
    expect(problemsOf(PRODUCTION)).toEqual(['JWT_SECRET: is required in production']);
  });

  it('when production has a JWT_SECRET under 32 bytes, then startup is refused', () => {
    expect(problemsOf({ ...PRODUCTION, JWT_SECRET: 'short-secret' })).toEqual(['JWT_SECRET: must be at least 32 bytes']);
  });

  it('when production has the example placeholder as JWT_SECRET, then startup is refused', () => {
    const problems = problemsOf({ ...PRODUCTION, JWT_SECRET: 'change-me-to-a-long-random-string-of-64-chars' });
    expect(problems).toEqual(['JWT_SECRET: is a placeholder, not a secret']);
  });

  it('when production has a strong JWT_SECRET, then it is accepted', () => {
    expect(loadConfig({ ...PRODUCTION, JWT_SECRET: STRONG }).jwtSecret).toBe(STRONG);
  });

  it('when production has a missing, short or placeholder KEY_ENCRYPTION_KEY, then startup is refused', () => {
    expect(problemsOf({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', JWT_SECRET: STRONG })).toEqual([
      'KEY_ENCRYPTION_KEY: is required in production',
    ]);
    expect(problemsOf({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', JWT_SECRET: STRONG, KEY_ENCRYPTION_KEY: 'short' })).toEqual([
      'KEY_ENCRYPTION_KEY: must be at least 32 bytes',
    ]);
    expect(
      problemsOf({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', JWT_SECRET: STRONG, KEY_ENCRYPTION_KEY: 'changeme'.repeat(5) }),
    ).toEqual(['KEY_ENCRYPTION_KEY: is a placeholder, not a secret']);
    expect(loadConfig({ ...PRODUCTION, JWT_SECRET: STRONG, JWT_ALGORITHM: 'HS256' }).accessTokenAlgorithm).toBe('HS256');
    expect(problemsOf({ JWT_ALGORITHM: 'RS256' })[0]).toMatch(/^JWT_ALGORITHM/);
  });

  it('when several variables are invalid, then one error lists every one', () => {
    const problems = problemsOf({ PORT: 'eighty', DATABASE_URL: 'mysql://x', TRUST_PROXY: 'true', NODE_ENV: 'production' });
    expect(problems.map((problem) => problem.split(':')[0]).sort()).toEqual(['DATABASE_URL', 'JWT_SECRET', 'KEY_ENCRYPTION_KEY', 'PORT', 'TRUST_PROXY']);
  });

  it('when production has no PUBLIC_URL, then startup is refused (links and jwks_uri would come from request headers)', () => {
    const { PUBLIC_URL: _omitted, ...withoutUrl } = PRODUCTION;
    expect(problemsOf({ ...withoutUrl, JWT_SECRET: STRONG })).toEqual([
      'PUBLIC_URL: required in production (the https:// address clients reach this service at)',
    ]);
  });

  it('when TRUST_PROXY is a hop count or a subnet list, then Express gets the same', () => {
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, loopback' }).trustProxy).toEqual(['10.0.0.0/8', 'loopback']);
    expect(problemsOf({ TRUST_PROXY: 'not-an-ip' })[0]).toMatch(/^TRUST_PROXY/);
  });

  it('when DATABASE_URL is set, then migrations do not run at start unless asked', () => {
    expect(loadConfig({ DATABASE_URL: 'postgresql://localhost/db' }).migrateOnStart).toBe(false);
    expect(loadConfig({ DATABASE_URL: 'postgresql://localhost/db', MIGRATE_ON_START: 'true' }).migrateOnStart).toBe(true);
  });

  describe('passkeys (WebAuthn)', () => {
    it('when nothing is set, then passkeys belong to localhost and the page on PORT', () => {
      expect(loadConfig({ PORT: '4000' }).webauthn).toEqual({ rpId: 'localhost', rpName: 'authkit', origins: ['http://localhost:4000'] });
    });

    it('when only PUBLIC_URL is set, then its host is the RP ID and its origin the one accepted', () => {
      expect(loadConfig({ PUBLIC_URL: 'https://auth.example.com/base/' }).webauthn).toMatchObject({
        rpId: 'auth.example.com',
        origins: ['https://auth.example.com'],
      });
    });

    it('when the RP ID is a parent domain of every origin, then it is accepted', () => {
      const env = { WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://example.com, https://app.example.com' };
      expect(loadConfig(env).webauthn).toMatchObject({ rpId: 'example.com', origins: ['https://example.com', 'https://app.example.com'] });
    });

    it.each([
      [
        { WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://example.org' },
        'WEBAUTHN_ORIGINS: https://example.org is not on the RP ID example.com or a subdomain of it',
      ],
      [
        { WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'http://example.com' },
        'WEBAUTHN_ORIGINS: http://example.com must use https (http only on localhost)',
      ],
      [
        { WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://example.com/login' },
        'WEBAUTHN_ORIGINS: https://example.com/login must be an origin only (https://example.com)',
      ],
      [{ WEBAUTHN_ORIGINS: 'not a url' }, 'WEBAUTHN_ORIGINS: not a url is not a URL'],
    ])('when the origins cannot work with the RP ID (%o), then startup is refused', (env, problem) => {
      expect(problemsOf(env)).toContain(problem);
    });
  });

  it('when production has a short METRICS_TOKEN, then startup is refused; metrics default to a port of their own on loopback', () => {
    expect(problemsOf({ ...PRODUCTION, JWT_SECRET: STRONG, METRICS_TOKEN: 'short' })).toEqual(['METRICS_TOKEN: must be at least 32 bytes']);
    expect(loadConfig({}).metrics).toEqual({ port: 9464, host: '127.0.0.1', token: undefined });
  });

  describe('outside identity providers', () => {
    it('when providers are listed with their settings, then each is read from AUTH_PROVIDER_<ID>_*, presets by their id', () => {
      const config = loadConfig({
        AUTH_PROVIDERS: 'github,corp-sso',
        AUTH_PROVIDER_GITHUB_CLIENT_ID: 'gh',
        AUTH_PROVIDER_GITHUB_CLIENT_SECRET: 'gh-secret',
        AUTH_PROVIDER_CORP_SSO_ISSUER: 'https://login.corp.example',
        AUTH_PROVIDER_CORP_SSO_CLIENT_ID: 'authkit',
        AUTH_PROVIDER_CORP_SSO_CLIENT_SECRET: 'corp-secret',
        AUTH_PROVIDER_CORP_SSO_SCOPES: 'openid email groups',
        AUTH_PROVIDER_CORP_SSO_TRUST_EMAIL: 'false',
      });
      expect(config.providers).toEqual([
        expect.objectContaining({ id: 'github', type: 'github', name: 'GitHub', clientId: 'gh', trustEmail: true }),
        expect.objectContaining({
          id: 'corp-sso',
          type: 'oidc',
          name: 'corp-sso',
          issuer: 'https://login.corp.example',
          scopes: ['openid', 'email', 'groups'],
          trustEmail: false,
        }),
      ]);
    });

    it.each([
      [{ AUTH_PROVIDERS: 'corp', AUTH_PROVIDER_CORP_CLIENT_ID: 'a', AUTH_PROVIDER_CORP_CLIENT_SECRET: 'b' }, 'AUTH_PROVIDER_CORP_ISSUER'],
      [{ AUTH_PROVIDERS: 'google', AUTH_PROVIDER_GOOGLE_CLIENT_SECRET: 'b' }, 'AUTH_PROVIDER_GOOGLE_CLIENT_ID'],
      [{ AUTH_PROVIDERS: 'google', AUTH_PROVIDER_GOOGLE_CLIENT_ID: 'a' }, 'AUTH_PROVIDER_GOOGLE_CLIENT_SECRET'],
      [{ AUTH_PROVIDERS: 'apple', AUTH_PROVIDER_APPLE_CLIENT_ID: 'a' }, 'AUTH_PROVIDER_APPLE_TEAM_ID'],
      [{ AUTH_PROVIDERS: 'x', AUTH_PROVIDER_X_TYPE: 'saml', AUTH_PROVIDER_X_CLIENT_ID: 'a' }, 'AUTH_PROVIDER_X_TYPE'],
      [
        { AUTH_PROVIDERS: 'github', AUTH_PROVIDER_GITHUB_CLIENT_ID: 'a', AUTH_PROVIDER_GITHUB_CLIENT_SECRET: 'b', AUTH_PROVIDER_GITHUB_TRUST_EMAIL: 'yes' },
        'AUTH_PROVIDER_GITHUB_TRUST_EMAIL',
      ],
      [{ AUTH_PROVIDERS: 'Corp!' }, 'AUTH_PROVIDERS'],
      [{ AUTH_REDIRECT_URLS: 'not a url' }, 'AUTH_REDIRECT_URLS'],
    ])('when a provider setting is missing or wrong (%j), then the start refuses, naming %s', (env, named) => {
      expect(problemsOf(env).join('\n')).toContain(named);
    });
  });

  describe('documentation', () => {
    const declared = SETTINGS.map((entry) => entry.env);

    it('when the settings are declared, then each has its own variable name and a one-line doc', () => {
      expect(new Set(declared).size).toBe(declared.length);
      for (const entry of SETTINGS) {
        expect(entry.env, entry.env).toMatch(/^[A-Z][A-Z0-9_]+$/);
        expect(entry.doc.trim(), entry.env).not.toBe('');
        expect(entry.doc, entry.env).not.toContain('\n');
      }
    });

    it('when a setting is declared, then .env.example names it, and names nothing else', () => {
      const example = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
      const named = [...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((match) => match[1] ?? '');
      expect(declared.filter((name) => !named.includes(name))).toEqual([]);
      // Besides the declared settings, only a provider's own (AUTH_PROVIDER_<ID>_*), shown for an example id.
      expect(named.filter((name) => !declared.includes(name) && !isProviderSetting(name))).toEqual([]);
      expect(named.filter(isProviderSetting).length).toBeGreaterThan(0);
    });

    it("when a setting is declared, then docs/configuration.md's settings tables have a row for it, and no row for anything else", () => {
      // The page is the settings tables, one per area: every table row's first cell names the settings it is about.
      const page = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
      const firstColumns = [...page.matchAll(/^\|([^|\n]*)\|/gm)].map((match) => match[1] ?? '');
      expect(firstColumns.length).toBeGreaterThan(declared.length / 2);
      const named = firstColumns.flatMap((cell) => [...cell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((match) => match[1] ?? ''));
      expect(declared.filter((name) => !named.includes(name))).toEqual([]);
      expect(named.filter((name) => !declared.includes(name))).toEqual([]);
    });
  });
});
