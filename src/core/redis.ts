// The Redis connection (one server, a primary named by Sentinel, or a Cluster), set up to fail within milliseconds
// while Redis is down instead of queueing.
import { Cluster, Redis, type RedisOptions as ClientOptions } from 'ioredis';
import type { RedisTarget } from './config.js';
import type { Logger } from './logger.js';

export type { Redis };
/** What the stores write through: a server (by URL or by Sentinel) or a cluster, with the same commands. */
export type RedisClient = Redis | Cluster;

export interface RedisOptions {
  /** Longest a single command may take before it fails. */
  commandTimeoutMs?: number;
  /** Longest to wait for the first connection. */
  connectTimeoutMs?: number;
}

/**
 * Commands never wait in an offline queue: while Redis is down they fail at once, and the client keeps reconnecting
 * in the background. Commands issued in the same turn of the event loop travel in one write: a request's revocation
 * check and its rate-limit increment cost one round trip, not two (on a cluster: one per node, in parallel).
 */
function clientOptions(options: RedisOptions): ClientOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? 1_000,
    connectTimeout: options.connectTimeoutMs ?? 2_000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
    lazyConnect: true,
    enableAutoPipelining: true,
  };
}

function createClient(target: RedisTarget | string, options: RedisOptions): RedisClient {
  const common = clientOptions(options);
  if (typeof target === 'string') return new Redis(target, common);
  switch (target.kind) {
    case 'url':
      return new Redis(target.url, common);
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: target.sentinels,
        name: target.name,
        password: target.password,
        sentinelPassword: target.sentinelPassword,
        // Sentinels tell of a promotion as it happens (+switch-master): the client moves to the new primary at once,
        // also when the old one is unreachable rather than dead.
        failoverDetector: true,
        sentinelRetryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
      });
    case 'cluster':
      return new Cluster(target.nodes, {
        enableOfflineQueue: false,
        // Not auto-pipelined: a batch that straddles a slot moving to a promoted replica comes back half MOVED, and
        // ioredis follows MOVED for single commands only. Commands still go out without waiting for each other.
        enableAutoPipelining: false,
        lazyConnect: true,
        clusterRetryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
        redisOptions: { ...common, enableAutoPipelining: false, password: target.password, lazyConnect: undefined },
      });
  }
}

/** Connects (a URL, or a configured deployment) and waits until Redis answers. */
export async function connectRedis(target: string, options: RedisOptions, logger: Logger): Promise<Redis>;
export async function connectRedis(target: RedisTarget | string, options: RedisOptions, logger: Logger): Promise<RedisClient>;
export async function connectRedis(target: RedisTarget | string, options: RedisOptions, logger: Logger): Promise<RedisClient> {
  const redis = createClient(target, options);
  let lastError = '';
  const report = (err: Error) => {
    // One line per distinct failure, not one per reconnect attempt.
    if (err.message !== lastError) logger.warn({ err: err.message }, 'redis connection error');
    lastError = err.message;
  };
  redis.on('error', report);
  redis.on('node error', report);
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

export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}

/**
 * Calls `listener` whenever the client loses a server it was connected to (a restart, a failover to a replica, a
 * cluster node gone): what that server held and had not yet passed on may be lost.
 */
export function onServerLost(redis: RedisClient, listener: () => void): void {
  if (isCluster(redis)) redis.on('-node', listener);
  else redis.on('close', listener);
}

/**
 * Loads a Lua script where it will run: on a cluster, on every primary (a key's slot may live on any of them, and a
 * promoted replica starts without scripts); elsewhere on the one server. Answers the script's SHA1.
 */
export async function loadScript(redis: RedisClient, script: string): Promise<string> {
  if (!isCluster(redis)) return (await redis.script('LOAD', script)) as string;
  const shas = await Promise.all(redis.nodes('master').map((node) => node.script('LOAD', script) as Promise<string>));
  if (shas.length === 0) throw new Error('no Redis primary is connected');
  return shas[0] as string;
}

/** Reads several keys in one round trip: one MGET, or on a cluster (whose keys live in different slots) one GET each, pipelined per node. */
export function readKeys(redis: RedisClient, keys: string[]): Promise<Array<string | null>> {
  return isCluster(redis) ? Promise.all(keys.map((key) => redis.get(key))) : redis.mget(keys);
}
