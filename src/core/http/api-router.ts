// Declares a route once: its zod schemas validate the request and describe it in the OpenAPI document.
import type { OpenAPIRegistry, RouteConfig } from '@asteasolutions/zod-to-openapi';
import type { IncomingMessage } from 'node:http';
import express, { type Express, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { inFlightHandlers } from './in-flight.js';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type AnySchema = z.ZodType;
type ObjectSchema = z.ZodObject;

export interface ResponseSpec {
  description: string;
  schema?: AnySchema;
  /** Defaults to application/json when a schema is given. */
  contentType?: string;
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
  /** A multipart/form-data upload with one file field (parsed by the route's middleware, not validated here). */
  upload?: { field: string; description: string };
  query?: TQuery;
  params?: TParams;
  responses: Record<number, ResponseSpec>;
  /** Runs before validation: authentication, rate limits, uploads. */
  middleware?: RequestHandler[];
  deprecated?: boolean;
  handler: (
    input: { body: z.output<TBody>; query: z.output<TQuery>; params: z.output<TParams> },
    req: Request,
    res: Response,
  ) => unknown;
}

const noInput = z.object({}).strict();

/** `/images/:id` → `/images/{id}` */
export function toOpenApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** Whether the request carries a body at all (most GETs do not, and need no body parser). */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
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
    this.document(spec);
    const bodySchema = spec.body;
    const querySchema = spec.query ?? noInput;
    const paramsSchema = spec.params ?? z.object({}).loose();
    const handle: RequestHandler = async (req, res) => {
      if (bodySchema && hasBody(req) && !req.is('application/json')) {
        throw new AppError('unsupported_media_type', 'Send the request body as application/json.');
      }
      const input = {
        body: bodySchema ? bodySchema.parse(req.body ?? {}) : undefined,
        query: querySchema.parse(req.query),
        params: paramsSchema.parse(req.params),
      } as { body: z.output<TBody>; query: z.output<TQuery>; params: z.output<TParams> };
      await inFlightHandlers(req.app as Express).run(req, () => spec.handler(input, req, res));
    };
    this.router[spec.method](spec.path, ...(spec.middleware ?? []), handle);
    return this;
  }

  private document(spec: RouteSpec<AnySchema, ObjectSchema, ObjectSchema>): void {
    const responses: RouteConfig['responses'] = {};
    for (const [status, response] of Object.entries(spec.responses)) {
      responses[status] = response.schema
        ? { description: response.description, content: { [response.contentType ?? 'application/json']: { schema: response.schema } } }
        : { description: response.description };
    }
    const request: RouteConfig['request'] = {};
    if (spec.body) request.body = { required: true, content: { 'application/json': { schema: spec.body } } };
    if (spec.upload) {
      const form = z.object({ [spec.upload.field]: z.string().meta({ format: 'binary', description: spec.upload.description }) });
      request.body = { required: true, content: { 'multipart/form-data': { schema: form } } };
    }
    if (spec.query) request.query = spec.query;
    if (spec.params) request.params = spec.params;
    this.registry.registerPath({
      method: spec.method,
      path: toOpenApiPath(`${this.options.docPrefix ?? ''}${spec.path}`),
      summary: spec.summary,
      description: spec.description,
      tags: this.options.tags,
      deprecated: spec.deprecated,
      security: spec.security?.map((scheme) => ({ [scheme]: [] })),
      request,
      responses,
    });
  }
}
