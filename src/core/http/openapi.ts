// Builds the OpenAPI 3.1 document from what the routers registered, and serves it with a local Swagger UI.
import { createRequire } from 'node:module';
import path from 'node:path';
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import express, { type Router } from 'express';
import { z } from 'zod';
import { ERROR_REASONS, ERROR_STATUS, type ErrorCode, type ErrorReason } from '../errors.js';

export const ErrorResponse = z
  .object({
    error: z.object({
      code: z
        .enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]])
        .meta({ description: 'The family: the coarse code, stable since the first release', example: 'invalid_token' }),
      reason: z
        .enum(Object.keys(ERROR_REASONS) as [ErrorReason, ...ErrorReason[]])
        .meta({ description: 'The fine reason, within the family; equal to `code` when there is nothing finer to say', example: 'refresh_token_reused' }),
      message: z.string(),
      details: z.unknown().optional(),
      requestId: z.string(),
    }),
  })
  .meta({ id: 'Error' });

const COMMON_ERRORS: Record<number, string> = {
  400: 'Invalid request: malformed JSON, or missing, extra or mistyped fields',
  401: 'Missing, invalid or revoked credentials',
  429: 'Rate limited; Retry-After says when to try again',
};

/** One response header as the document describes it; `required` ones are checked in tests (response-conformance). */
export type HeaderSpec = {
  description: string;
  schema: { type: 'string' | 'integer' };
  required?: boolean;
};

export const RETRY_AFTER: HeaderSpec = { description: 'Seconds to wait before trying again', schema: { type: 'integer' } };

/** The headers an error status carries: a refusal by a budget says its state (IETF RateLimit draft 8), a 401 its challenge. */
const ERROR_HEADERS: Record<number, Record<string, HeaderSpec>> = {
  401: {
    'WWW-Authenticate': { description: 'The Bearer challenge (RFC 6750), with error="invalid_token" when a token was refused', schema: { type: 'string' } },
  },
  429: {
    'Retry-After': { ...RETRY_AFTER, required: true },
    RateLimit: { description: 'The budget left, e.g. "auth"; r=0; t=42 (absent on a login_throttled answer)', schema: { type: 'string' } },
    'RateLimit-Policy': { description: 'The budget, e.g. "auth"; q=5; w=60', schema: { type: 'string' } },
  },
};

/** Error responses in the one error shape: the common 400, 401 and 429, plus (or replacing) the ones given. */
export function errorResponses(extra: Record<number, string> = {}) {
  const described = { ...COMMON_ERRORS, ...extra };
  return Object.fromEntries(
    Object.entries(described).map(([status, description]) => [
      status,
      { description, schema: ErrorResponse, ...(ERROR_HEADERS[Number(status)] && { headers: ERROR_HEADERS[Number(status)] }) },
    ]),
  );
}

export function createRegistry(): OpenAPIRegistry {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  registry.registerComponent('securitySchemes', 'apiKey', { type: 'apiKey', in: 'header', name: 'X-API-Key' });
  return registry;
}

export function buildOpenApiDocument(registry: OpenAPIRegistry, version: string): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'authkit API',
      version,
      description: 'Accounts, tokens, sessions, roles, API keys and image storage. Every error has the shape of the Error schema.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/', description: 'This server' }],
  });
}

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>authkit API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`;

const DOCS_INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true });\n`;

/** `/openapi.json` and a Swagger UI at `/docs` whose assets come from this server, not a CDN. */
export function docsRouter(document: unknown): Router {
  const require = createRequire(import.meta.url);
  const swaggerDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  const router = express.Router();
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  router.get('/docs', (_req, res) => {
    res.type('html').send(DOCS_PAGE);
  });
  router.get('/docs/init.js', (_req, res) => {
    res.type('application/javascript').send(DOCS_INIT);
  });
  router.use('/docs/assets', express.static(swaggerDir, { index: false, maxAge: '1h' }));
  return router;
}
