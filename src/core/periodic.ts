// Runs housekeeping on a timer that never keeps the process alive and never overlaps itself.
import type { Logger } from './logger.js';

/**
 * Calls `task` every `intervalMs` (first after `firstAfterMs`), logging failures instead of throwing. Returns the
 * function that stops it and waits for a run in progress.
 */
export function every(name: string, intervalMs: number, task: () => Promise<unknown>, logger: Logger, firstAfterMs = intervalMs): () => Promise<void> {
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = () => {
    running = task()
      .then((result) => logger.debug({ task: name, result }, 'housekeeping done'))
      .catch((err: unknown) => logger.warn({ err, task: name }, 'housekeeping failed; it runs again later'))
      .finally(() => {
        running = undefined;
        if (!stopped) schedule(intervalMs);
      });
  };
  const schedule = (ms: number) => {
    timer = setTimeout(run, ms);
    timer.unref();
  };
  schedule(firstAfterMs);
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
