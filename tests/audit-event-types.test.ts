// The security event types and their labels, which the browser page reads instead of keeping its own list.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECURITY_EVENT_LABELS, SECURITY_EVENT_TYPES } from '../src/kernel/events/security-events.js';
import { type Backends, buildApp, openBackends } from './support/test-app.js';

describe('GET /audit/event-types', () => {
  let backends: Backends;
  beforeAll(async () => {
    backends = await openBackends();
  });
  afterAll(async () => {
    await backends.close();
  });

  it('when the labels are read from the code, then every security event type has a non-empty label and no label names an unknown type', () => {
    for (const type of SECURITY_EVENT_TYPES) expect(SECURITY_EVENT_LABELS[type]?.trim(), type).toBeTruthy();
    expect(Object.keys(SECURITY_EVENT_LABELS).sort()).toEqual([...SECURITY_EVENT_TYPES].sort());
  });

  it('when anyone asks, with no credentials, then every type comes back once, in order, with its label', async () => {
    const { app } = buildApp(backends);

    const res = await request(app).get('/audit/event-types');

    expect(res.status).toBe(200);
    const types = res.body.types as Array<{ type: string; label: string }>;
    expect(types.map((entry) => entry.type)).toEqual([...SECURITY_EVENT_TYPES]);
    expect(res.body.types).toContainEqual({ type: 'account.deleted', label: 'Account deleted' });
    expect(res.body.types).toContainEqual({ type: 'rate_limit.reset', label: SECURITY_EVENT_LABELS['rate_limit.reset'] });
    for (const entry of types) expect(entry.label.length).toBeGreaterThan(0);
  });

  it('when the request carries an unknown query field, then 400 in the error shape', async () => {
    const { app } = buildApp(backends);

    const res = await request(app).get('/audit/event-types?type=session.signed_in');

    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: { code: expect.any(String), reason: expect.any(String), message: expect.any(String), details: expect.any(Array), requestId: expect.any(String) },
    });
  });

  it('when a method other than GET is used, then 405 and nothing changes', async () => {
    const { app } = buildApp(backends);

    const res = await request(app).post('/audit/event-types').send({ types: [] });

    expect(res.status).toBe(405);
    expect((await request(app).get('/audit/event-types')).body.types).toHaveLength(SECURITY_EVENT_TYPES.length);
  });
});
