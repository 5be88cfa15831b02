// The Redis connection, set up to fail within milliseconds while Redis is down instead of queueing.
import { Redis } from 'ioredis';
import type { Logger } from './logger.js';

export type { Redis };

export interface RedisOptions {
  url: string;
  /** Longest a single command may take before it fails. */
  commandTimeoutMs?: number;
  /** Longest to wait for the first connection. */
  connectTimeoutMs?: number;
}

/**
 * Connects and waits until Redis answers.
 * Commands never wait in an offline queue: while Redis is down they fail at once,
 * and the client keeps reconnecting in the background.
 */
export async function connectRedis(options: RedisOptions, logger: Logger): Promise<Redis> {
  const redis = new Redis(options.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? 1_000,
    connectTimeout: options.connectTimeoutMs ?? 2_000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
    lazyConnect: true,
    // Commands issued in the same turn of the event loop travel in one write: a request's revocation check and
    // its rate-limit increment cost one round trip, not two.
    enableAutoPipelining: true,
  });
  let lastError = '';
  redis.on('error', (err: Error) => {
    // One line per distinct failure, not one per reconnect attempt.
    if (err.message !== lastError) logger.warn({ err: err.message }, 'redis connection error');
    lastError = err.message;
  });
  redis.on('ready', () => {
    if (lastError !== '') logger.info('redis connection restored');
    lastError = '';
  });
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  return redis;
}
