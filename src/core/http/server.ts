// Starts the HTTP server and stops it gracefully: no new connections, in-flight requests finish, bounded by a timeout.
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { AppError, errorBody } from '../errors.js';

export async function listen(app: Express, port: number, host: string): Promise<Server> {
  const server = http.createServer(app);
  server.on('clientError', answerClientError);
  // Longer than a typical load balancer's idle timeout, so the balancer closes first.
  server.keepAliveTimeout = 65_000;
  server.listen(port, host);
  await once(server, 'listening');
  return server;
}

/**
 * Node answers requests it cannot parse (oversized headers, a broken request line) itself, before Express sees them,
 * with a bare status line. They get the one JSON error shape instead.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const error = err.code === 'HPE_HEADER_OVERFLOW' ? new AppError('headers_too_large') : new AppError('request_malformed');
  const body = JSON.stringify(errorBody(error, randomUUID()));
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

const IDLE_SWEEP_MS = 50;

export function boundPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/**
 * Stops accepting connections and resolves once in-flight requests have finished, or after `timeoutMs`, when the
 * remaining connections are cut. A keep-alive connection ends with its request instead of idling until it is cut:
 * requests that arrive during the stop are answered with `Connection: close`, and connections busy when it began are
 * closed as soon as they go idle. Nothing of this costs a request anything until a stop begins.
 * Resolves `true` when nothing was cut.
 */
export async function closeGracefully(server: Server, timeoutMs: number): Promise<boolean> {
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => res.setHeader('Connection', 'close'));
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const closeWhenIdle = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const drained = await Promise.race([closed.then(() => true as const), timedOut]);
  clearTimeout(timer);
  clearInterval(closeWhenIdle);
  if (!drained) {
    server.closeAllConnections();
    await closed;
  }
  return drained;
}
