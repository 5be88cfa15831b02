// The service's structured logger, which never writes credentials.
import { pino, type Logger as PinoLogger } from 'pino';
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';

export type Logger = PinoLogger;

/** Paths pino blanks out wherever they occur in a log line. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.mfa_token',
  '*.secret',
  '*.apiKey',
];

export interface LoggerOptions {
  level: string;
  pretty: boolean;
}

export function createLogger(options: LoggerOptions, destination?: NodeJS.WritableStream): Logger {
  return pino({ level: options.level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination ?? standardOutput(options.pretty));
}

/**
 * JSON lines written asynchronously (a request never waits on a write; pino flushes what is left at exit), or, for
 * a person at a terminal, pino-pretty in this thread: a development server needs no extra thread for its logs.
 */
function standardOutput(pretty: boolean): pino.DestinationStream {
  // pino-pretty is a development dependency, loaded only when asked for: production images write JSON and do not
  // ship it, so there a request for pretty logs falls back to JSON.
  const pinoPretty = pretty ? loadOptional<typeof PinoPretty>('pino-pretty') : undefined;
  if (pinoPretty) return pinoPretty({ translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true, sync: true });
  return pino.destination({ dest: 1, sync: false });
}

function loadOptional<T>(name: string): T | undefined {
  try {
    return createRequire(import.meta.url)(name) as T;
  } catch {
    return undefined;
  }
}
