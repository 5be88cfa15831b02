// Declares a route once: its zod schemas validate the request and describe it in the OpenAPI document.
import type { OpenAPIRegistry, RouteConfig } from '@asteasolutions/zod-to-openapi';
import type { IncomingMessage } from 'node:http';
import express, { type Express, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { inFlightHandlers } from './in-flight.js';
import { ErrorResponse, type HeaderSpec, RETRY_AFTER } from './openapi.js';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type AnySchema = z.ZodType;
type ObjectSchema = z.ZodObject;

export interface ResponseSpec {
  description: string;
  schema?: AnySchema;
  /** Defaults to application/json when a schema is given. */
  contentType?: string;
  /** Headers the response carries, by name. */
  headers?: Record<string, HeaderSpec>;
}

export interface RouteSpec<TBody extends AnySchema, TQuery extends ObjectSchema, TParams extends ObjectSchema> {
  method: Method;
  /** Express syntax, relative to the router: `/images/:id`. */
  path: string;
  summary: string;
  description?: string;
  /** Which credentials the OpenAPI document says the route takes. */
  security?: Array<'bearer' | 'apiKey'>;
  body?: TBody;
  /** How the body travels: JSON (the default), or an HTML form's fields (a provider's form_post answer). */
  bodyFormat?: 'json' | 'form';
  /** A multipart/form-data upload with one file field (parsed by the route's middleware, not validated here). */
  upload?: { field: string; description: string };
  /** A body of another media type that the handler reads from the request itself (NDJSON), documented here. */
  rawBody?: { contentType: string; description: string };
  query?: TQuery;
  params?: TParams;
  responses: Record<number, ResponseSpec>;
  /** Runs before validation: authentication, rate limits, uploads. */
  middleware?: RequestHandler[];
  deprecated?: boolean;
  handler: (input: { body: z.output<TBody>; query: z.output<TQuery>; params: z.output<TParams> }, req: Request, res: Response) => unknown;
}

const noInput = z.object({}).strict();

const BODY_TYPES = { json: 'application/json', form: 'application/x-www-form-urlencoded' } as const;
/** A form's fields as strings (no nesting), small: a provider's form_post carries a code, a state and an id token. */
const parseFormBody = express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 20 });

/** `/images/:id` → `/images/{id}` */
export function toOpenApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** Whether the request carries a body at all (most GETs do not, and need no body parser). */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** What the document promises about one operation's responses (kept on `res.locals.operation` while it runs). */
export interface DocumentedOperation {
  method: string;
  path: string;
  responses: Record<number, ResponseSpec>;
}

/**
 * The responses a route can give beyond the ones it names, which every route of its kind shares: any request can be
 * malformed (400), and any route can fault (500) or meet an unavailable database or store (503); a JSON body can be
 * too large (413) or not JSON (415), an upload too; a credential can be the wrong kind or lack a scope (403); a path
 * with an id can name nothing (404).
 */
function completeResponses(
  spec: Pick<RouteSpec<AnySchema, ObjectSchema, ObjectSchema>, 'responses' | 'body' | 'upload' | 'rawBody' | 'security' | 'params'>,
): Record<number, ResponseSpec> {
  const shared: Record<number, ResponseSpec> = {
    400: { description: 'Invalid request: malformed JSON, or missing, extra or mistyped fields, path or query', schema: ErrorResponse },
    500: { description: 'A fault on our side (never an answer to anything a client sends); the body says nothing of its cause', schema: ErrorResponse },
    503: {
      description: 'The database or the shared store is unavailable, or the password-hash queue is full; Retry-After says when to try again',
      schema: ErrorResponse,
      headers: { 'Retry-After': RETRY_AFTER },
    },
  };
  if (spec.body || spec.upload || spec.rawBody) {
    shared[413] = { description: 'The body is larger than allowed', schema: ErrorResponse };
    shared[415] = {
      description: spec.upload
        ? 'Not multipart/form-data, or not an accepted image'
        : spec.rawBody
          ? `The body is not ${spec.rawBody.contentType}`
          : 'The body is not application/json',
      schema: ErrorResponse,
    };
  }
  if (spec.security && spec.security.length > 0) {
    const forbidden = spec.security.includes('apiKey')
      ? 'The API key lacks the scope this route needs, or the role is missing'
      : 'Not for this credential: an API key on a route for signed-in users, or a missing role';
    shared[403] = { description: forbidden, schema: ErrorResponse };
  }
  if (spec.params) shared[404] = { description: 'No such resource', schema: ErrorResponse };
  return { ...shared, ...spec.responses };
}

/** An Express router whose routes are all declared, validated and documented the same way. */
export class ApiRouter {
  readonly router = express.Router();

  constructor(
    private readonly registry: OpenAPIRegistry,
    private readonly options: { tags: string[]; docPrefix?: string },
  ) {}

  route<TBody extends AnySchema = typeof noInput, TQuery extends ObjectSchema = typeof noInput, TParams extends ObjectSchema = typeof noInput>(
    spec: RouteSpec<TBody, TQuery, TParams>,
  ): this {
    const operation: DocumentedOperation = {
      method: spec.method,
      path: toOpenApiPath(`${this.options.docPrefix ?? ''}${spec.path}`),
      responses: completeResponses(spec),
    };
    this.document(spec, operation);
    const bodySchema = spec.body;
    const querySchema = spec.query ?? noInput;
    const paramsSchema = spec.params ?? z.object({}).loose();
    const handle: RequestHandler = async (req, res) => {
      if (bodySchema && hasBody(req) && !req.is(BODY_TYPES[spec.bodyFormat ?? 'json'])) {
        throw new AppError(spec.bodyFormat === 'form' ? 'form_body_required' : 'json_body_required');
      }
      const input = {
        body: bodySchema ? bodySchema.parse(req.body ?? {}) : undefined,
        query: querySchema.parse(req.query),
        params: paramsSchema.parse(req.params),
      } as { body: z.output<TBody>; query: z.output<TQuery>; params: z.output<TParams> };
      await inFlightHandlers(req.app as Express).run(req, () => spec.handler(input, req, res));
    };
    const describe: RequestHandler = (_req, res, next) => {
      res.locals.operation = operation;
      next();
    };
    const parseForm = spec.bodyFormat === 'form' ? [parseFormBody] : [];
    this.router[spec.method](spec.path, describe, ...parseForm, ...(spec.middleware ?? []), handle);
    return this;
  }

  private document(spec: RouteSpec<AnySchema, ObjectSchema, ObjectSchema>, operation: DocumentedOperation): void {
    const responses: RouteConfig['responses'] = {};
    for (const [status, response] of Object.entries(operation.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.schema && { content: { [response.contentType ?? 'application/json']: { schema: response.schema } } }),
        ...(response.headers && { headers: response.headers }),
      };
    }
    const request: RouteConfig['request'] = {};
    if (spec.body) request.body = { required: true, content: { [BODY_TYPES[spec.bodyFormat ?? 'json']]: { schema: spec.body } } };
    if (spec.rawBody)
      request.body = {
        required: true,
        content: { [spec.rawBody.contentType]: { schema: z.string().meta({ description: spec.rawBody.description }) } },
      };
    if (spec.upload) {
      const form = z.object({ [spec.upload.field]: z.string().meta({ format: 'binary', description: spec.upload.description }) });
      request.body = { required: true, content: { 'multipart/form-data': { schema: form } } };
    }
    if (spec.query) request.query = spec.query;
    if (spec.params) request.params = spec.params;
    this.registry.registerPath({
      method: spec.method,
      path: operation.path,
      operationId: operationId(spec.method, operation.path),
      summary: spec.summary,
      description: spec.description,
      tags: this.options.tags,
      deprecated: spec.deprecated,
      // A public route says so (an empty list), rather than leaving a reader to guess.
      security: spec.security?.map((scheme) => ({ [scheme]: [] })) ?? [],
      request,
      responses,
    });
  }
}

/** A stable operationId from the method and the documented path: `post /images/{id}/x` → `postImagesByIdX`. */
export function operationId(method: string, documentedPath: string): string {
  const words = documentedPath
    .split('/')
    .filter(Boolean)
    .flatMap((segment) => (segment.startsWith('{') ? [`by ${segment.slice(1, -1)}`] : segment.split(/[^A-Za-z0-9]+/)))
    .flatMap((word) => word.split(' '))
    .filter(Boolean);
  return method + words.map((word) => word[0]?.toUpperCase() + word.slice(1)).join('');
}
