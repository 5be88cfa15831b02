// Checks every answer a route gives against what the API document says of that route: its status is one the
// document lists, the headers it marks required are there, and a JSON body matches the schema listed for it. The test suite runs every app with it,
// so a route cannot drift from its documentation unnoticed.
import type { RequestHandler } from 'express';
import type { DocumentedOperation } from './api-router.js';

function problemWith(
  operation: DocumentedOperation,
  status: number,
  contentType: string,
  body: unknown,
  hasHeader: (name: string) => boolean,
): string | undefined {
  const declared = operation.responses[status];
  if (!declared) return `status ${status} is not documented (documented: ${Object.keys(operation.responses).join(', ')})`;
  const missing = Object.entries(declared.headers ?? {}).filter(([name, header]) => header.required && !hasHeader(name));
  if (missing.length > 0) return `the required header ${missing.map(([name]) => name).join(', ')} is missing`;
  if (!declared.schema || !contentType.startsWith('application/json')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : '');
  } catch {
    return 'the body is not the JSON its Content-Type says';
  }
  const checked = declared.schema.safeParse(parsed);
  return checked.success
    ? undefined
    : `the body does not match the documented schema: ${checked.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`).join('; ')}`;
}

/** Reports, through `onViolation`, every response of a documented route that the document does not describe. */
export function responseConformance(onViolation: (message: string) => void): RequestHandler {
  return (req, res, next) => {
    const end = res.end.bind(res) as (...args: unknown[]) => typeof res;
    res.end = ((...args: unknown[]) => {
      const operation = res.locals.operation as DocumentedOperation | undefined;
      if (operation && req.method !== 'HEAD') {
        const chunk = typeof args[0] === 'function' ? undefined : args[0];
        const problem = problemWith(operation, res.statusCode, String(res.getHeader('content-type') ?? ''), chunk, (name) => res.hasHeader(name));
        if (problem) onViolation(`${req.method} ${req.originalUrl} (${operation.method} ${operation.path}) answered ${res.statusCode}: ${problem}`);
      }
      return end(...args);
    }) as typeof res.end;
    next();
  };
}
