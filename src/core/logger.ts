// The service's structured logger, which never writes credentials.
import { pino, type Logger as PinoLogger } from 'pino';

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
  const transport = options.pretty && !destination ? { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } : undefined;
  return pino(
    {
      level: options.level,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      transport,
    },
    destination as pino.DestinationStream | undefined,
  );
}
