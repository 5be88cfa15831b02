import express from 'express';
import multer from 'multer';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import request from 'supertest';
import { errorHandler, toAppError } from '../src/core/error-handler.js';
import { AppError } from '../src/core/errors.js';
import { silentLogger } from './support/test-app.js';

describe('error mapper', () => {
  it.each([
    [
      'a driver adapter that cannot reach the server',
      Object.assign(new Error('x'), { code: 'P2010', meta: { driverAdapterError: { cause: { kind: 'DatabaseNotReachable' } } } }),
    ],
    ['a statement cancelled by statement_timeout', Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' })],
    ['a connection the server dropped', new Error('Connection terminated unexpectedly')],
    ['a client-side query timeout, as a cause', new Error('query failed', { cause: new Error('Query read timeout') })],
    ['a closed embedded database', new Error('PGlite is closed')],
  ])('when the database fails with %s, then 503 service_unavailable with Retry-After', (_case, err) => {
    const mapped = toAppError(err);
    expect(mapped).toMatchObject({ code: 'service_unavailable', status: 503, headers: { 'Retry-After': '2' } });
    expect(mapped.message).not.toContain(err.message);
  });

  it('when an error merely resembles a database failure in name, then it is still a 500', () => {
    expect(toAppError(Object.assign(new Error('Connection pool configured'), { code: 'P2002x' })).code).toBe('internal_error');
  });

  it('when given an AppError, then it passes through unchanged', () => {
    const error = new AppError('forbidden', 'No.');
    expect(toAppError(error)).toBe(error);
  });

  it('when given a ZodError, then 400 validation_failed with a detail per issue', () => {
    const result = z.object({ name: z.string() }).strict().safeParse({ name: 1, extra: true });
    const mapped = toAppError(result.error);
    expect(mapped.status).toBe(400);
    expect(mapped.code).toBe('validation_failed');
    expect(mapped.details).toEqual([
      { path: 'name', message: expect.any(String) },
      { path: '', message: expect.stringContaining('extra') },
    ]);
  });

  it('when given a Prisma unique violation, then 409 conflict', () => {
    expect(toAppError(Object.assign(new Error('dup'), { code: 'P2002' })).status).toBe(409);
  });

  it('when given a Prisma missing record, then 404 not_found', () => {
    expect(toAppError(Object.assign(new Error('gone'), { code: 'P2025' })).code).toBe('not_found');
  });

  it('when given a multer size error, then 413, and other multer errors 400', () => {
    expect(toAppError(new multer.MulterError('LIMIT_FILE_SIZE')).status).toBe(413);
    expect(toAppError(new multer.MulterError('LIMIT_UNEXPECTED_FILE')).status).toBe(400);
  });

  it('when given body-parser errors, then invalid_json, payload_too_large and unsupported_media_type', () => {
    const typed = (type: string) => Object.assign(new Error(type), { type });
    expect(toAppError(typed('entity.parse.failed')).code).toBe('invalid_json');
    expect(toAppError(typed('entity.too.large')).code).toBe('payload_too_large');
    expect(toAppError(typed('charset.unsupported')).code).toBe('unsupported_media_type');
  });

  it('when a library flags a client error with a 4xx status, then it stays a 4xx', () => {
    const undecodable = Object.assign(new URIError('Failed to decode param'), { status: 400 });
    expect(toAppError(undecodable)).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(toAppError(Object.assign(new Error('x'), { statusCode: 415 })).code).toBe('unsupported_media_type');
    expect(toAppError(Object.assign(new Error('x'), { status: 503 })).status).toBe(500);
  });

  it('when given anything else, then a 500 whose message says nothing of the cause', () => {
    const mapped = toAppError(new Error('connection to 10.0.0.5 refused: password authentication failed'));
    expect(mapped.status).toBe(500);
    expect(mapped.message).not.toMatch(/10\.0\.0\.5|password/);
    expect(mapped.details).toBeUndefined();
  });

  it('when a route throws an unknown error, then the 500 body carries no internals', async () => {
    const app = express();
    app.get('/boom', () => {
      throw new Error('SELECT * FROM users failed at db.internal:5432');
    });
    app.use(errorHandler(silentLogger));
    const res = await request(app).get('/boom');
    expect(res.status).toBe(500);
    expect(JSON.stringify(res.body)).not.toMatch(/SELECT|5432/);
    expect(res.body.error.code).toBe('internal_error');
  });

  it('when library errors are mapped, then each keeps its family code and gains the fine reason', () => {
    const typed = (type: string) => Object.assign(new Error(type), { type });
    expect(toAppError(typed('charset.unsupported'))).toMatchObject({ code: 'unsupported_media_type', reason: 'body_charset_unsupported' });
    expect(toAppError(typed('request.aborted'))).toMatchObject({ code: 'validation_failed', reason: 'body_incomplete' });
    expect(toAppError(new multer.MulterError('LIMIT_FILE_SIZE'))).toMatchObject({ code: 'payload_too_large', reason: 'file_too_large' });
    expect(toAppError(new Error('PGlite is closed'))).toMatchObject({ code: 'service_unavailable', reason: 'database_unavailable' });
    expect(toAppError(Object.assign(new URIError('x'), { status: 400 }))).toMatchObject({ code: 'validation_failed', reason: 'request_malformed' });
    expect(toAppError(Object.assign(new Error('dup'), { code: 'P2002' }))).toMatchObject({ code: 'conflict', reason: 'conflict' });
  });

  it('when a route throws an AppError, then the body says its family code and its reason, with the default message', async () => {
    const app = express();
    app.get('/reused', () => {
      throw new AppError('refresh_token_reused');
    });
    app.use(errorHandler(silentLogger));

    const res = await request(app).get('/reused');

    expect(res.status).toBe(401);
    expect(res.body).toEqual({
      error: {
        code: 'invalid_token',
        reason: 'refresh_token_reused',
        message: 'The refresh token was already used; the session has been ended for safety.',
        requestId: expect.any(String),
      },
    });
  });
});
