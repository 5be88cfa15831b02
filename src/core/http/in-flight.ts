// Route handlers still running, so a stop can wait for them before it closes what they use.
import type { Express, Request } from 'express';

/**
 * Cutting a connection at the shutdown timeout does not stop its handler: it goes on to the database or the hash
 * pool. A stop therefore waits here for the handlers to finish before closing them, and once it has begun, a
 * handler whose client is already gone is not started at all.
 */
export class InFlightHandlers {
  private running = 0;
  private stopping = false;
  private readonly whenIdle = new Set<() => void>();

  async run(req: Request, handler: () => unknown): Promise<void> {
    if (this.stopping && req.socket.destroyed) return;
    this.running++;
    try {
      await handler();
    } finally {
      if (--this.running === 0) for (const wake of this.whenIdle) wake();
    }
  }

  /** Resolves with how many handlers still run: 0 once all have finished, or the count left after `timeoutMs`. */
  async settle(timeoutMs: number): Promise<number> {
    this.stopping = true;
    if (this.running === 0) return 0;
    let wake = () => {};
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      wake = resolve;
      this.whenIdle.add(wake);
      timer = setTimeout(resolve, timeoutMs);
    });
    this.whenIdle.delete(wake);
    clearTimeout(timer);
    return this.running;
  }
}

const handlersOf = new WeakMap<Express, InFlightHandlers>();

/** The app's tracker, made on first use (every route declared through ApiRouter runs in it). */
export function inFlightHandlers(app: Express): InFlightHandlers {
  let tracker = handlersOf.get(app);
  if (!tracker) {
    tracker = new InFlightHandlers();
    handlersOf.set(app, tracker);
  }
  return tracker;
}
