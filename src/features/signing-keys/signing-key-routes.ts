// The public half of the signing keys (JWKS and a minimal discovery document) and their administration.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Request } from 'express';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { type AdminGuardDeps, adminOnly } from '../../kernel/authenticate/guards.js';
import { JWKS_MAX_AGE_S, KeyRing, type SigningKeys } from '../../kernel/keys/key-ring.js';
import { KEY_PURPOSES, type PurposeKeys } from '../../kernel/keys/purpose-keys.js';

export const JWKS_PATH = '/.well-known/jwks.json';

const Jwk = z
  .object({ kty: z.literal('EC'), crv: z.literal('P-256'), x: z.string(), y: z.string(), kid: z.string(), alg: z.literal('ES256'), use: z.literal('sig') })
  .meta({ id: 'Jwk' });
const Jwks = z.object({ keys: z.array(Jwk) }).meta({ id: 'Jwks' });
const Discovery = z
  .object({
    issuer: z.string(),
    jwks_uri: z.url(),
    id_token_signing_alg_values_supported: z.array(z.string()).meta({ description: 'The algorithm of the access tokens' }),
  })
  .meta({ id: 'OpenIdConfiguration' });
const KeyInfo = z
  .object({
    kid: z.string(),
    generation: z.number().int(),
    algorithm: z.literal('ES256'),
    createdAt: z.iso.datetime(),
    activatesAt: z.iso.datetime().meta({ description: 'When it starts signing: at least one JWKS cache lifetime after it is published' }),
    retiresAt: z.iso.datetime().nullable().meta({ description: 'When the next key takes over signing' }),
    unpublishedAt: z.iso.datetime().nullable().meta({ description: 'When it leaves the JWKS: its last token has expired' }),
    state: z.enum(['next', 'signing', 'retired']),
  })
  .meta({ id: 'SigningKey' });

const PurposeKeyInfo = z
  .object({
    purpose: z.enum(KEY_PURPOSES),
    generation: z.number().int(),
    createdAt: z.iso.datetime(),
    activatesAt: z.iso.datetime().meta({ description: 'When it starts protecting new data (every instance has loaded it by then)' }),
    state: z.enum(['next', 'current', 'previous']).meta({ description: 'previous: still reads what it protected' }),
  })
  .meta({ id: 'PurposeKey' });
const PurposeParams = z.object({ purpose: z.enum(KEY_PURPOSES) });

export interface SigningKeyRouteDeps extends AdminGuardDeps {
  signingKeys: SigningKeys;
  purposeKeys: PurposeKeys;
  issuer: string;
  /** PUBLIC_URL; else the origin the request came to (under TRUST_PROXY). */
  publicUrl?: string;
}

function keyRing(keys: SigningKeys): KeyRing {
  if (keys instanceof KeyRing) return keys;
  throw new AppError('no_key_ring');
}

export function signingKeyRoutes(registry: OpenAPIRegistry, deps: SigningKeyRouteDeps): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['signing keys'] });
  /**
   * Where the keys are: PUBLIC_URL (required in production). Only without it (development) from the request, and
   * then never from a shared cache, since Host and X-Forwarded-Proto are whatever the client sent.
   */
  const baseUrl = (req: Request) => deps.publicUrl ?? `${req.protocol === 'https' ? 'https' : 'http'}://${req.get('host') ?? 'localhost'}`;
  api.route({
    method: 'get',
    path: JWKS_PATH,
    summary: 'The public keys that verify access tokens (RFC 7517), including the next one and retired ones still needed',
    description: `Cacheable for ${JWKS_MAX_AGE_S} s: a new key appears here at least that long before it signs. Empty with JWT_ALGORITHM=HS256.`,
    responses: { 200: { description: 'The key set', schema: Jwks } },
    handler: (_input, _req, res) => {
      res.set('Cache-Control', `public, max-age=${JWKS_MAX_AGE_S}`).json({ keys: deps.signingKeys.publicJwks() });
    },
  });
  api.route({
    method: 'get',
    path: '/.well-known/openid-configuration',
    summary: 'A minimal discovery document (not a full OpenID provider): the issuer, where its keys are, and the signing algorithm',
    responses: { 200: { description: 'Discovery metadata', schema: Discovery } },
    handler: (_input, req, res) => {
      res.set('Cache-Control', deps.publicUrl ? `public, max-age=${JWKS_MAX_AGE_S}` : 'no-store').json({
        issuer: deps.issuer,
        jwks_uri: `${baseUrl(req)}${JWKS_PATH}`,
        id_token_signing_alg_values_supported: [deps.signingKeys.algorithm],
      });
    },
  });

  const errors = errorResponses({ 403: 'Not an administrator' });
  const hs256 = { 409: { description: 'JWT_ALGORITHM=HS256: no key ring', schema: ErrorResponse } };
  api.route({
    method: 'get',
    path: '/admin/signing-keys',
    summary: 'The signing keys with their lifecycle (never their private halves)',
    security: ['bearer'],
    middleware: adminOnly(deps),
    responses: { 200: { description: 'Oldest first', schema: z.object({ keys: z.array(KeyInfo) }) }, ...hs256, ...errors },
    handler: (_input, _req, res) => {
      res.json({ keys: keyRing(deps.signingKeys).list() });
    },
  });
  api.route({
    method: 'post',
    path: '/admin/signing-keys/rotate',
    summary: 'Add the next signing key: published now, signing after one JWKS cache lifetime, on every instance',
    description: 'Live tokens keep working: the current key stays published until the last token it signed expires. Also `npm run keys:rotate`.',
    security: ['bearer'],
    middleware: adminOnly(deps),
    responses: { 201: { description: 'The new key', schema: KeyInfo }, ...hs256, ...errors },
    handler: async (_input, _req, res) => {
      res.status(201).json(await keyRing(deps.signingKeys).rotate());
    },
  });
  api.route({
    method: 'get',
    path: '/admin/purpose-keys',
    summary: 'The keys of every other purpose (TOTP secrets, recovery codes, MFA tokens, image links), never their material',
    security: ['bearer'],
    middleware: adminOnly(deps),
    responses: { 200: { description: 'By purpose, oldest first', schema: z.object({ keys: z.array(PurposeKeyInfo) }) }, ...errors },
    handler: (_input, _req, res) => {
      res.json({ keys: deps.purposeKeys.list() });
    },
  });
  api.route({
    method: 'post',
    path: '/admin/purpose-keys/:purpose/rotate',
    summary: 'Add the next key of one purpose: new data uses it once every instance has it; what older keys protect stays readable',
    description: 'Also `npm run keys:rotate -- --purpose <purpose>`.',
    security: ['bearer'],
    params: PurposeParams,
    middleware: adminOnly(deps),
    responses: { 201: { description: 'The new key', schema: PurposeKeyInfo }, ...errors },
    handler: async ({ params }, _req, res) => {
      res.status(201).json(await deps.purposeKeys.rotate(params.purpose));
    },
  });
  return api;
}
