// The client library against the real server over HTTP: the package README's example, a second factor, a refresh
// that rotates the pair for two clients sharing storage, and a sign-out the server honours.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { signInExample } from '../../packages/client/examples/sign-in.js';
import { createAuthClient, memoryStorage } from '../../packages/client/src/index.js';
import { ManualClock } from '../../src/core/clock.js';
import { codeAt, STEP_SECONDS } from '../../src/kernel/verifiers/totp.js';
import { bearer, readyToEnrol, registerAndLogin } from '../support/accounts.js';
import { buildApp, testConfig, useBackends } from '../support/test-app.js';
import { processLocks } from './fake-server.js';

describe('the client library against the server', () => {
  const backends = useBackends();
  const clock = new ManualClock();
  let app: ReturnType<typeof buildApp>['app'];
  let server: ReturnType<ReturnType<typeof buildApp>['app']['listen']>;
  let baseUrl: string;

  beforeAll(async () => {
    ({ app } = buildApp(backends, { config: testConfig(), clock }));
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server?.close();
  });

  it('when the README’s example runs, then it signs in, reads /me and signs out, and the README shows exactly that code', async () => {
    const person = await registerAndLogin(app);
    const readme = await readFile(path.join(import.meta.dirname, '../../packages/client/README.md'), 'utf8');
    const example = await readFile(path.join(import.meta.dirname, '../../packages/client/examples/sign-in.ts'), 'utf8');

    const { me, events } = await signInExample(baseUrl, person.username, person.password);

    expect(readme).toContain(example.trim());
    expect(me.username).toBe(person.username);
    expect(events).toEqual(['SIGNED_IN', 'SIGNED_OUT']);
  });

  it('when two factors are on, then the password step asks for the second, and the code finishes the sign-in', async () => {
    const person = await readyToEnrol(app);
    const setup = await request(app)
      .post('/mfa/totp/setup')
      .set(...bearer(person.accessToken));
    await request(app)
      .post('/mfa/totp/enable')
      .set(...bearer(person.accessToken))
      .send({ code: codeAt(setup.body.secret as string, clock.now()) })
      .expect(200);
    clock.advance(STEP_SECONDS * 1000);
    const auth = createAuthClient({ baseUrl });

    const first = await auth.signIn.password({ username: person.username, password: person.password });
    if (first.status !== 'mfa_required') throw new Error('expected the second step');
    const session = await auth.signIn.secondFactor({ mfaToken: first.mfaToken, code: codeAt(setup.body.secret as string, clock.now()) });

    expect(first.methods).toContain('totp');
    expect(session.user.username).toBe(person.username);
    expect((await auth.fetch('/me')).status).toBe(200);
    auth.close();
  });

  it('when two clients share storage and both find the token expired, then one POST /refresh reaches the server and both go on', async () => {
    const person = await registerAndLogin(app);
    let now = Date.now();
    let refreshes = 0;
    const counting: typeof fetch = (input, init) => {
      if ((input instanceof Request ? input.url : input.toString()).endsWith('/refresh')) refreshes++;
      return fetch(input, init);
    };
    const [storage, locks] = [memoryStorage(), processLocks()];
    const tab = () => createAuthClient({ baseUrl, storage, fetch: counting, clock: () => now, crossTab: { locks } });
    const [one, two] = [tab(), tab()];
    await one.signIn.password({ username: person.username, password: person.password });
    const before = await one.getSession();

    now += 15 * 60_000;
    const answers = await Promise.all([one.fetch('/me'), two.fetch('/me'), one.fetch('/sessions'), two.fetch('/sessions')]);

    expect(answers.map((res) => res.status)).toEqual([200, 200, 200, 200]);
    expect(refreshes).toBe(1);
    expect((await two.getSession())?.refreshToken).not.toBe(before?.refreshToken);
    one.close();
    two.close();
  });

  it('when the session is signed out elsewhere, then the next call ends it here too, with SIGNED_OUT', async () => {
    const person = await registerAndLogin(app);
    const auth = createAuthClient({ baseUrl });
    const events: string[] = [];
    auth.onAuthStateChange((event) => events.push(event));
    await auth.signIn.password({ username: person.username, password: person.password });
    const session = await auth.getSession();
    await request(app)
      .post('/logout/all')
      .set(...bearer(session?.accessToken ?? ''))
      .expect(204);

    const res = await auth.fetch('/me');

    expect(res.status).toBe(401);
    expect(await auth.getSession()).toBeNull();
    expect(events).toEqual(['SIGNED_IN', 'SIGNED_OUT']);
  });
});
